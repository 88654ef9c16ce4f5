package views

import (
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"tote/cart"
	"tote/catalog"
)

// flashText is a flash that needs escaping.
const flashText = `Added 1 × "Dune" <b>`

// pageData returns the data of each page as tote renders them, for a
// visitor whose cart holds one copy of each of the first lines in-stock
// books.
func pageData(tb testing.TB, lines int) map[string]Data {
	tb.Helper()
	cat := catalog.Default()
	var ct cart.Cart
	for _, p := range cat.Products() {
		if p.InStock() && ct.Len() < lines {
			if err := ct.Add(p, 1); err != nil {
				tb.Fatal(err)
			}
		}
	}
	shelf, err := NewShelf(cat.Products())
	if err != nil {
		tb.Fatal(err)
	}
	page := func(fill func(*Data)) Data {
		d := Context(ct.Price(cat), 7, Flash{Message: flashText}, "b5H3qX0v1s0mE-t0K3n_0f-f0rty-thr33-ch4r4ct3r", "")
		fill(&d)
		return d
	}
	product := cat.Products()[0]
	return map[string]Data{
		"pages/catalog": page(func(d *Data) { d.Title, d.Books = "Books", shelf.HTML(*d) }),
		"pages/product": page(func(d *Data) { d.Title, d.Product = product.Title, product }),
		"pages/cart":    page(func(d *Data) { d.Title = "Your cart" }),
		"pages/error":   {Unavailable: true, Title: "Temporarily unavailable", Status: 503, Message: "The cart is <unavailable> right now."},
		"pages/signup": page(func(d *Data) {
			d.Title, d.Form = "Sign up", Form{Username: "<al>", Errors: map[string]string{"username": "taken <b>"}}
		}),
		"pages/login": page(func(d *Data) {
			d.Title, d.Form = "Log in", Form{Username: "al", Remember: true, Next: "/cart", Alert: "bad <b>"}
		}),
		"pages/account": page(func(d *Data) {
			d.Title, d.User, d.Member = "Your account", "alice", time.Date(2026, 12, 4, 20, 31, 7, 0, time.UTC)
		}),
	}
}

// render renders page with data, in layout if one is given, and parses it.
func render(tb testing.TB, r *Renderer, page string, data Data, layout ...string) *goquery.Document {
	tb.Helper()
	var b bytes.Buffer
	if err := r.Render(&b, page, data, layout...); err != nil {
		tb.Fatalf("%s: %v", page, err)
	}
	doc, err := goquery.NewDocumentFromReader(&b)
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// TestPagesRender renders every page in pages/ in the layout, concurrently,
// and checks what the layout shows from the context and what the page
// shows of its own.
func TestPagesRender(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(Templates(), "pages/*.html")
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]string{ // what only that page shows
		"pages/catalog": "ul.books li.book",
		"pages/product": "article.product form.add",
		"pages/cart":    "table#cart tbody tr",
		"pages/error":   "section#error h1",
		"pages/signup":  "#signup form[action='/signup'] #username-error",
		"pages/login":   "#login form[action='/login'] input[name=next][value='/cart']",
		"pages/account": "#account #member-since time[datetime='2026-12-04T20:31:07Z']",
	}
	for _, lines := range []int{0, 3} {
		data := pageData(t, lines)
		for _, file := range files {
			page := strings.TrimSuffix(file, ".html")
			if page == "pages/apidocs" {
				continue // a page of its own, without the layout (cmd/tote's TestAPIDocs)
			}
			t.Run(fmt.Sprintf("%s, %d lines", page, lines), func(t *testing.T) {
				t.Parallel()
				d, ok := data[page]
				if !ok {
					t.Fatalf("no data for %s: add it to pageData", page)
				}
				doc := render(t, r, page, d, Layout)
				if got := doc.Find("title").Text(); got != d.Title+" · tote books" {
					t.Errorf("title %q", got)
				}
				wantCount, wantVisits := "–", 0
				if !d.Unavailable {
					wantCount, wantVisits = strconv.Itoa(d.Cart.ItemCount), 1
				}
				if got := doc.Find("header #cart-count").Text(); got != wantCount {
					t.Errorf("#cart-count %q, want %q", got, wantCount)
				}
				if got := doc.Find("footer #visit-count"); got.Length() != wantVisits || wantVisits == 1 && got.Text() != "7 times" {
					t.Errorf("%d #visit-count %q, want %d saying 7 times", got.Length(), got.Text(), wantVisits)
				}
				switch n := doc.Find("main " + own[page]).Length(); {
				case page == "pages/cart" && lines == 0:
					if n != 0 || doc.Find("main #cart-empty").Length() != 1 {
						t.Error("an empty cart does not say so")
					}
				case n == 0:
					t.Errorf("no %q in the page", own[page])
				}
				flash := doc.Find("main #flash")
				switch {
				case d.Flash.Message == "" && flash.Length() != 0:
					t.Error("a flash without a message")
				case d.Flash.Message != "" && (flash.Text() != flashText || flash.Find("b").Length() != 0):
					t.Errorf("flash %q: want %q as text", flash.Text(), flashText)
				}
			})
		}
	}
}

// TestRenderAlone renders a page without the layout: its content only.
func TestRenderAlone(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	d := pageData(t, 0)["pages/error"]
	doc := render(t, r, "pages/error", d)
	if doc.Find("header, footer, title").Length() != 0 {
		t.Error("a page rendered alone has parts of the layout")
	}
	if got := doc.Find("#error p").First().Text(); got != d.Message {
		t.Errorf("message %q, want %q", got, d.Message)
	}
}

// TestRenderErrors checks that an unknown page or layout is an error.
func TestRenderErrors(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, page string
		layout     []string
	}{
		{"unknown page", "pages/nope", []string{Layout}},
		{"unknown page alone", "pages/nope", nil},
		{"a layout that is a page", "pages/cart", []string{"pages/error"}},
		{"unknown layout", "pages/cart", []string{"layouts/nope"}},
		{"two layouts", "pages/cart", []string{Layout, Layout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.Render(&b, tt.page, Data{}, tt.layout...); err == nil {
				t.Errorf("Render(%s, %q) succeeded", tt.page, tt.layout)
			}
		})
	}
}
