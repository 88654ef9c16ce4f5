package session_test

import (
	"errors"
	"testing"
	"unicode/utf8"

	"tote/cart"
	"tote/session"
)

// FuzzDecode checks that Decode never panics, refuses with ErrCorrupt only,
// and that whatever it accepts is a valid session whose encoding is the
// payload it came from and decodes back to itself.
func FuzzDecode(f *testing.F) {
	for _, d := range []session.Data{
		{},
		{Visits: 3},
		{Visits: 1 << 62},
		{Visits: 9, CSRF: "Jq3v0bX9_aZ-Yk2mT7wQeR4uI8oP1sDf", Cart: dataCart(f, 3, 12)},
		{Flash: session.Flash{Message: "Only 1 copy of Solaris — Stanisław Lem is in stock.", Error: true}},
		{Visits: 1, Cart: dataCart(f, cart.MaxLines, 3), Flash: session.Flash{Message: "Added."}}, // small ids: large seeds make the fuzzer spend its time minimizing
		{Visits: 2, User: "alice", Generation: 3, Transient: true, CSRF: "t"},
		{Replays: session.Replays{{Key: session.Hash("k"), Status: 200, Body: []byte("{}")}}},
	} {
		f.Add(mustAppendData(f, d))
	}
	for _, garbage := range [][]byte{
		nil,
		{1},
		{0, 0, 0, 0, 0},
		{1, 0, 0, 2, 0, 0},
		{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		[]byte("\x01\x00\x00\x00\x00\x33"),
		[]byte("\x01\x00\x00\x00\x02\xff\xfe\x00"),
		[]byte("\x01\x00\x00\x00\x00\x02\x01a\x01\x01a\x02"),
		[]byte("not a session at all"),
	} {
		f.Add(garbage)
	}

	f.Fuzz(func(t *testing.T, p []byte) {
		d, err := session.Decode(p)
		if err != nil {
			if !errors.Is(err, session.ErrCorrupt) {
				t.Fatalf("Decode error %v, want ErrCorrupt", err)
			}
			if !d.IsZero() {
				t.Fatalf("Decode returned %+v with its error", d)
			}
			return
		}
		if len(p) > session.MaxSize {
			t.Fatalf("Decode accepted %d bytes, more than MaxSize", len(p))
		}
		lines := d.Cart.Lines()
		if len(lines) > cart.MaxLines {
			t.Fatalf("decoded cart of %d lines", len(lines))
		}
		seen := make(map[string]bool, len(lines))
		for _, l := range lines {
			if l.Quantity < 1 || l.Quantity > cart.MaxQuantity {
				t.Fatalf("decoded line %+v: quantity outside 1..%d", l, cart.MaxQuantity)
			}
			if l.ProductID == "" || len(l.ProductID) > 64 || seen[l.ProductID] {
				t.Fatalf("decoded line %+v: empty, long or repeated id", l)
			}
			seen[l.ProductID] = true
		}
		if d.Visits < 0 {
			t.Fatalf("decoded negative visits %d", d.Visits)
		}
		if !utf8.ValidString(d.Flash.Message) {
			t.Fatalf("decoded flash %q is not UTF-8", d.Flash.Message)
		}

		enc, err := d.Append(nil)
		if err != nil {
			t.Fatalf("Append of decoded data: %v", err)
		}
		// Decode accepts only what Append makes (or made in the first
		// format), so the encoding of an accepted payload is the payload
		// itself.
		if p[0] != 1 && string(enc) != string(p) {
			t.Fatalf("Append(Decode(p)) = %x, want p = %x", enc, p)
		}
		again, err := session.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Append(Decode(p))): %v", err)
		}
		checkSameData(t, again, d)
		if enc2, err := again.Append(nil); err != nil || string(enc2) != string(enc) {
			t.Fatalf("encoding is not stable: %x, %v; want %x", enc2, err, enc)
		}
	})
}
