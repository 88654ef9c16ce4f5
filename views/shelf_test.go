package views

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"tote/cart"
	"tote/catalog"
)

// shelfCatalog is the embedded catalog plus books whose text needs
// escaping in every context the card uses, and stocks of 1, 2 and 0.
func shelfCatalog(tb testing.TB) *catalog.Catalog {
	tb.Helper()
	products := append([]catalog.Product{
		{ID: "xss", Title: `<script>alert(1)</script> & "quotes" 'too'`, Author: `Ann <b>Bold</b>`, Price: 1999, Stock: 2},
		{ID: "one", Title: "The Only Copy", Author: "A. Single", Price: 500, Stock: 1},
		{ID: "none", Title: "Gone & Sold", Author: "B. Empty", Price: 700, Stock: 0},
		{ID: "deep", Title: "Deep Stock", Author: "C. Plenty", Price: 100, Stock: 1000},
	}, catalog.Default().Products()...)
	data, err := json.Marshal(map[string]any{"currency": "USD", "products": products})
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := catalog.Load(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

// TestShelfMatchesBook checks that the cached shelf is, byte for byte, what
// executing the book template for every product makes, in every state a
// book can be in.
func TestShelfMatchesBook(t *testing.T) {
	cat := shelfCatalog(t)
	shelf, err := NewShelf(cat.Products())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		csrf  string
		lines map[string]int
	}{
		{"new visitor, no token", "", nil},
		{"empty cart", "b5H3qX0v1s0mE-t0K3n_0f-f0rty", nil},
		{"some lines", "tok", map[string]int{"xss": 1, "deep": 3}},
		{"every copy in the cart", "tok", map[string]int{"xss": 2, "one": 1, "deep": 99}},
		{"a token that needs escaping", `tok"><script>x</script>&`, map[string]int{"deep": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Context(cartOf(t, cat, tt.lines).Price(cat), 1, Flash{}, tt.csrf, "")
			var want strings.Builder
			for _, p := range cat.Products() {
				h, err := Book(p, d)
				if err != nil {
					t.Fatal(err)
				}
				want.WriteString(string(h))
			}
			if got := shelf.HTML(d); string(got) != want.String() {
				t.Errorf("shelf differs from the template's rendering\n got: %.600s\nwant: %.600s", got, want.String())
			}
		})
	}
}

// cartOf returns a cart with qty copies of each product id in lines.
func cartOf(tb testing.TB, cat *catalog.Catalog, lines map[string]int) *cart.Cart {
	tb.Helper()
	var ct cart.Cart
	for id, qty := range lines {
		p, err := cat.Product(id)
		if err != nil {
			tb.Fatal(err)
		}
		if err := ct.Add(p, qty); err != nil {
			tb.Fatal(err)
		}
	}
	return &ct
}

// TestShelfStates checks what each book offers, by selector: an add form
// with the token, "in your cart" when every copy is, "Out of stock", and
// catalog text as text.
func TestShelfStates(t *testing.T) {
	cat := shelfCatalog(t)
	shelf, err := NewShelf(cat.Products())
	if err != nil {
		t.Fatal(err)
	}
	token := `tok"><script>x</script>`
	doc := shelfDoc(t, shelf.HTML(Context(cartOf(t, cat, map[string]int{"one": 1}).Price(cat), 1, Flash{}, token, "")))

	if n := doc.Find("li.book").Length(); n != len(cat.Products()) {
		t.Errorf("%d books on the shelf, want %d", n, len(cat.Products()))
	}
	if doc.Find("script").Length() != 0 {
		t.Error("a <script> element came from catalog text or the token")
	}
	xss := doc.Find("#book-xss")
	if got, want := xss.Find("h2 a").Text(), `<script>alert(1)</script> & "quotes" 'too'`; got != want {
		t.Errorf("xss title shows %q, want %q", got, want)
	}
	if got, _ := xss.Find(`input[name="csrf_token"]`).Attr("value"); got != token {
		t.Errorf("token in the form is %q, want %q", got, token)
	}
	if got := doc.Find("#book-one form").Length(); got != 0 {
		t.Error("the only copy is in the cart, yet the book offers an add form")
	}
	if got := doc.Find("#book-one .stock").Text(); !strings.Contains(got, "The only copy is in your cart") {
		t.Errorf("#book-one says %q", got)
	}
	if got := doc.Find("#book-none .stock.out").Text(); got != "Out of stock" {
		t.Errorf("#book-none says %q, want Out of stock", got)
	}
	if doc.Find("#book-none form").Length() != 0 {
		t.Error("an out-of-stock book offers an add form")
	}
}

func shelfDoc(tb testing.TB, h template.HTML) *goquery.Document {
	tb.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader("<ul>" + string(h) + "</ul>"))
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// BenchmarkShelf compares the cached shelf with executing the book
// template for every product.
func BenchmarkShelf(b *testing.B) {
	cat := catalog.Default()
	shelf, err := NewShelf(cat.Products())
	if err != nil {
		b.Fatal(err)
	}
	d := Context(cart.Summary{}, 1, Flash{}, "b5H3qX0v1s0mE-t0K3n_0f-f0rty-thr33-ch4r4ct3r", "")
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = shelf.HTML(d)
		}
	})
	b.Run("template", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, p := range cat.Products() {
				if _, err := Book(p, d); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// TestShelfWith checks that the shelf lent to a render is the shelf HTML
// makes, also while other renders borrow and give back their buffers.
func TestShelfWith(t *testing.T) {
	cat := catalog.Default()
	shelf, err := NewShelf(cat.Products())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := Data{CSRF: fmt.Sprintf("token-%d", i)}
			want := shelf.HTML(d)
			for range 50 {
				err := shelf.With(d, func(d Data) error {
					if d.Books != want {
						return fmt.Errorf("With lent %d bytes unlike HTML's %d", len(d.Books), len(want))
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
