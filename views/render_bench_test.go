package views

import (
	"bytes"
	"testing"
)

// BenchmarkRender measures the catalog page (the embedded catalog, a cart
// of 3 lines) in the layout, rendered on every core at once.
func BenchmarkRender(b *testing.B) {
	r, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	data := pageData(b, 3)["pages/catalog"]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			buf.Reset()
			if err := r.Render(&buf, "pages/catalog", data, Layout); err != nil {
				b.Fatal(err)
			}
		}
	})
}
