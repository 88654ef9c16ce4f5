package views

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/gofiber/template/html/v2"

	"tote/catalog"
	"tote/session"
)

// pageData returns the data of each page as tote renders them, for a
// session whose cart holds lines of the first in-stock books.
func pageData(tb testing.TB, lines int) map[string]Data {
	tb.Helper()
	cat := catalog.Default()
	var d session.Data
	for _, p := range cat.Products() {
		if p.Stock > 0 && d.Cart.Len() < lines {
			if err := d.Cart.Add(p, 1); err != nil {
				tb.Fatal(err)
			}
		}
	}
	shelf, err := NewShelf(cat.Products())
	if err != nil {
		tb.Fatal(err)
	}
	d.Visits, d.CSRF = 7, "b5H3qX0v1s0mE-t0K3n_0f-f0rty-thr33-ch4r4ct3r"
	d.Flash = session.Flash{Message: `Added 1 × "Dune" <b>`, Error: false}
	withData := func(fill func(*Data)) Data {
		v := Context(cat, &d)
		fill(&v)
		return v
	}
	return map[string]Data{
		"pages/catalog": withData(func(v *Data) { v.Title, v.Books = "Books", shelf.HTML(*v) }),
		"pages/product": withData(func(v *Data) { v.Title, v.Product = cat.Products()[0].Title, cat.Products()[0] }),
		"pages/cart":    withData(func(v *Data) { v.Title = "Your cart" }),
		"pages/error":   {Unavailable: true, Title: "Temporarily unavailable", Status: 503, Message: "The cart is unavailable right now."},
	}
}

// TestRendererMatchesGofiberHTML checks that Renderer writes, byte for byte,
// what gofiber/template/html (the engine it replaced) writes, for every
// page, in the layout and alone.
func TestRendererMatchesGofiberHTML(t *testing.T) {
	old := html.NewFileSystem(http.FS(templates), ".html")
	old.AddFuncMap(Funcs())
	if err := old.Load(); err != nil {
		t.Fatal(err)
	}
	r := Engine()
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	for _, lines := range []int{0, 3} {
		for page, data := range pageData(t, lines) {
			for _, layout := range []string{Layout, ""} {
				var want, got bytes.Buffer
				if err := old.Render(&want, page, data, layout); err != nil {
					t.Fatalf("gofiber html, %s in %q: %v", page, layout, err)
				}
				if err := r.Render(&got, page, data, layout); err != nil {
					t.Fatalf("Renderer, %s in %q: %v", page, layout, err)
				}
				if got.String() != want.String() {
					t.Errorf("%s in %q, %d lines: Renderer wrote\n%s\nwant\n%s", page, layout, lines, got.String(), want.String())
				}
			}
		}
	}
	var sink bytes.Buffer
	if err := r.Render(&sink, "pages/nope", Data{}, Layout); err == nil {
		t.Error("rendering an unknown page succeeded")
	}
	if err := r.Render(&sink, "pages/nope", Data{}); err == nil {
		t.Error("rendering an unknown page without a layout succeeded")
	}
}

// BenchmarkRenderer measures the catalog page (the embedded catalog, a
// cart of 3 lines) in the layout, rendered on every core at once, with
// Renderer and with gofiber/template/html, which it replaced: that engine
// holds an exclusive lock for every render in a layout.
func BenchmarkRenderer(b *testing.B) {
	data := pageData(b, 3)["pages/catalog"]
	old := html.NewFileSystem(http.FS(templates), ".html")
	old.AddFuncMap(Funcs())
	engines := []struct {
		name   string
		engine interface {
			Load() error
			Render(w io.Writer, name string, binding any, layout ...string) error
		}
	}{
		{"tote", Engine()},
		{"gofiber-html", old},
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			if err := e.engine.Load(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var buf bytes.Buffer
				for pb.Next() {
					buf.Reset()
					if err := e.engine.Render(&buf, "pages/catalog", data, Layout); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
