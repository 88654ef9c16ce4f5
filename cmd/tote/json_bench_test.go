package main

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"tote/catalog"
	"tote/session"
)

// TestAppendJSONStringMatchesEncodingJSON checks the hand-written string
// escaping of the cart JSON against encoding/json, on awkward strings and
// on random bytes.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{"", "plain", `q"uote\back`, "<script>&amp;</script>", "tab\tnl\ncr\rbs\bff\f\x00\x01\x1f\x7f",
		"ünïcødé ✓ 🙂", "line\u2028para\u2029", "bad\xffutf8\xc3", "\xed\xa0\x80 surrogate"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = byte(rng.IntN(256))
			if rng.IntN(3) == 0 {
				b[i] = "<>&\"\\\n\u2028"[rng.IntN(9)]
			}
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s (valid UTF-8: %v)", s, got, want, utf8.ValidString(s))
		}
	}
}

// TestSendCartMatchesEncodingJSON checks the whole cart body against what
// c.JSON made of cartJSON before sendCart appended it by hand.
func TestSendCartMatchesEncodingJSON(t *testing.T) {
	srv, err := newServer(benchCatalog(t), nil, config{}, nil, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	for _, n := range []int{0, 1, 3, 20} {
		var d session.Data
		d.Visits = int64(n * 7)
		for _, p := range inStock(srv.cat, n) {
			if err := d.Cart.Add(p, 2); err != nil {
				t.Fatal(err)
			}
		}
		c := app.AcquireCtx(&fasthttp.RequestCtx{})
		if err := srv.sendCart(c, &d); err != nil {
			t.Fatal(err)
		}
		got, ctype := string(c.Response().Body()), string(c.Response().Header.ContentType())
		app.ReleaseCtx(c)

		sum := d.Cart.Price(srv.cat)
		out := cartJSON{Items: make([]itemJSON, len(sum.Lines)), ItemCount: sum.ItemCount, Subtotal: sum.Subtotal, Currency: sum.Currency, Visits: d.Visits}
		for i, l := range sum.Lines {
			out.Items[i] = itemJSON{ProductID: l.Product.ID, Title: l.Product.Title, UnitPrice: l.Product.Price, Quantity: l.Quantity, LineTotal: l.LineTotal}
		}
		want, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) || ctype != fiber.MIMEApplicationJSON {
			t.Errorf("%d lines: sendCart wrote %s (%s)\nwant %s (%s)", n, got, ctype, want, fiber.MIMEApplicationJSON)
		}
	}
	// A title that needs escaping.
	p := catalog.Product{ID: "x", Title: `"Quoted" <b>&</b>`, Price: 5}
	if got, want := string(appendItemHead(nil, p)), `{"product_id":"x","title":"\"Quoted\" \u003cb\u003e\u0026\u003c/b\u003e","unit_price":5,"quantity":`; got != want {
		t.Errorf("appendItemHead = %s, want %s", got, want)
	}
}
