package session

import (
	"encoding/binary"
	"errors"
	"strings"
	"unicode/utf8"

	"tote/cart"
)

// Data is what one session holds: the Django tutorial's num_visits, the cart,
// a one-time flash message and the session's CSRF token.
type Data struct {
	Visits int64     // num_visits: HTML page views
	Cart   cart.Cart // the cart map: product id -> quantity, in first-added order
	Flash  Flash     // shown once, on the next page
	CSRF   string    // the token every form of this session must carry
}

// Flash is a one-time message for the next page.
type Flash struct {
	Message string
	Error   bool // the message reports a refused change
}

// Limits of the encoding: a stored session is never larger than MaxSize.
const (
	MaxSize     = 8 << 10
	maxText     = 1024 // flash message and CSRF token
	formatV1    = 1
	maxIDLength = 64
	maxVisits   = 1 << 62
)

// ErrCorrupt is returned by Decode for a payload that is not a session.
var ErrCorrupt = errors.New("session: corrupt data")

// ErrTooLarge is returned by Append for data that would encode to more than
// MaxSize bytes.
var ErrTooLarge = errors.New("session: data too large")

// IsZero reports whether d holds nothing worth storing.
func (d *Data) IsZero() bool {
	return d.Visits == 0 && d.Cart.Len() == 0 && d.Flash == (Flash{}) && d.CSRF == ""
}

// Append appends the binary encoding of d to b. It stores a flash message
// longer than 1 KiB cut short, and a CSRF token longer than that is
// ErrTooLarge. The format is a version
// byte, then uvarint visits, the CSRF token, the flash (a flag byte and the
// message) and the cart lines (count, then id and quantity of each), strings
// as uvarint length and bytes. It allocates nothing when b has room.
func (d *Data) Append(b []byte) ([]byte, error) {
	if len(d.CSRF) > maxText {
		return b, ErrTooLarge
	}
	start := len(b)
	b = append(b, formatV1)
	b = binary.AppendUvarint(b, uint64(min(max(d.Visits, 0), maxVisits)))
	b = appendString(b, d.CSRF)
	flag := byte(0)
	if d.Flash.Error {
		flag = 1
	}
	b = append(b, flag)
	b = appendString(b, clipText(d.Flash.Message))
	lines := d.Cart.Lines()
	b = binary.AppendUvarint(b, uint64(len(lines)))
	for _, l := range lines {
		b = appendString(b, l.ProductID)
		b = append(b, byte(l.Quantity))
	}
	if len(b)-start > MaxSize {
		return b[:start], ErrTooLarge
	}
	return b, nil
}

// clipText makes a flash message storable: valid UTF-8, at most maxText
// bytes, cut at a character boundary.
func clipText(s string) string {
	if utf8.ValidString(s) && len(s) <= maxText {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > maxText {
		cut := maxText - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Decode parses an encoding made by Append. Any payload that Append could
// not have made, including one that is truncated, oversized or carries
// trailing bytes, is ErrCorrupt; Decode never panics.
//
// It makes at most two allocations, however many lines: the cart's lines,
// and one copy of p that the CSRF token, the flash message and every
// product id are substrings of (so none of them aliases p).
func Decode(p []byte) (Data, error) {
	var d Data
	if len(p) == 0 || len(p) > MaxSize || p[0] != formatV1 {
		return Data{}, ErrCorrupt
	}
	r := reader{p: p[1:], s: string(p[1:])}
	visits := r.uvarint()
	d.CSRF = r.string(maxText)
	flag := r.byte()
	d.Flash.Message = r.string(maxText)
	d.Flash.Error = flag == 1
	n := r.uvarint()
	if r.err || flag > 1 || visits > maxVisits || n > cart.MaxLines {
		return Data{}, ErrCorrupt
	}
	d.Visits = int64(visits)
	if n > 0 {
		lines := make([]cart.Line, n)
		for i := range lines {
			lines[i].ProductID = r.string(maxIDLength)
			lines[i].Quantity = int(r.byte())
		}
		if r.err {
			return Data{}, ErrCorrupt
		}
		c, err := cart.FromLines(lines)
		if err != nil {
			return Data{}, ErrCorrupt
		}
		d.Cart = c
	}
	if len(r.p) != 0 || !utf8.ValidString(d.Flash.Message) {
		return Data{}, ErrCorrupt
	}
	return d, nil
}

// reader reads the encoding; after the first failure it returns zero values
// and err stays set. s is a copy of p, which strings are cut from.
type reader struct {
	p   []byte
	s   string
	err bool
}

func (r *reader) uvarint() uint64 {
	if r.err {
		return 0
	}
	v, n := binary.Uvarint(r.p)
	if n <= 0 || n > 1 && r.p[n-1] == 0 { // malformed, or not the shortest form
		r.err = true
		return 0
	}
	r.skip(n)
	return v
}

// skip advances past n bytes.
func (r *reader) skip(n int) {
	r.p = r.p[n:]
	r.s = r.s[n:]
}

func (r *reader) byte() byte {
	if r.err || len(r.p) == 0 {
		r.err = true
		return 0
	}
	c := r.p[0]
	r.skip(1)
	return c
}

func (r *reader) string(limit int) string {
	n := r.uvarint()
	if r.err || n > uint64(limit) || n > uint64(len(r.p)) {
		r.err = true
		return ""
	}
	s := r.s[:n]
	r.skip(int(n))
	return s
}
