package views

import (
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"strings"
	"sync"
	"unsafe"

	"tote/catalog"
)

//go:embed partials/book.html
var bookTemplate string

// book is what partials/book.html is executed with: one book of the
// catalog page.
type book struct {
	Product catalog.Product
	Full    bool   // every copy that may be added is in the cart
	CSRF    string // the token of the add form
}

// Book renders one book of the catalog page, as the page shows it with data
// d, through html/template: the reference that Shelf caches.
func Book(p catalog.Product, d Data) (template.HTML, error) {
	s, err := renderBook(book{Product: p, Full: d.MaxAdd(p) == 0, CSRF: d.CSRF})
	return template.HTML(s), err
}

func renderBook(v book) (string, error) {
	var b strings.Builder
	if err := bookTmpl.Execute(&b, v); err != nil {
		return "", fmt.Errorf("views: book %s: %w", v.Product.ID, err)
	}
	return b.String(), nil
}

var bookTmpl = template.Must(template.New("partials/book").Funcs(Funcs()).Parse(bookTemplate))

// Shelf is the catalog page's list of books, rendered once for a catalog
// and put together for each page view: a book shows one of three things
// (out of stock; every copy in the cart; an add form carrying the session's
// CSRF token), and the catalog does not change while tote runs, so each
// book's three renderings are made at start by html/template (escaping
// included) and a page view only chooses among them and inserts the
// token. Executing the template for every book on every view cost about
// 2,000 allocations and 200 to 400 µs, most of a catalog page view's CPU.
type Shelf struct {
	books []shelved
	size  int // bytes of the longest shelf, without tokens
	forms int // books that can show an add form, each with a token
}

// shelved is one book's renderings. add is the add form split where the
// CSRF token goes: add[0] + token + add[1].
type shelved struct {
	product catalog.Product
	out     string // out of stock
	full    string
	add     [2]string
}

// NewShelf renders the books of products.
func NewShelf(products []catalog.Product) (*Shelf, error) {
	// The token is rendered as a marker that catalog text cannot contain
	// by chance: 128 random bits.
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("views: shelf: %w", err)
	}
	marker := "csrf-" + hex.EncodeToString(nonce[:])
	s := &Shelf{books: make([]shelved, len(products))}
	for i, p := range products {
		b := shelved{product: p}
		var err error
		if !p.InStock() {
			if b.out, err = renderBook(book{Product: p}); err != nil {
				return nil, err
			}
			s.size += len(b.out)
			s.books[i] = b
			continue
		}
		if b.full, err = renderBook(book{Product: p, Full: true}); err != nil {
			return nil, err
		}
		h, err := renderBook(book{Product: p, CSRF: marker})
		if err != nil {
			return nil, err
		}
		head, tail, ok := strings.Cut(h, marker)
		if !ok || strings.Contains(tail, marker) {
			return nil, fmt.Errorf("views: book %s: the form's CSRF token is not in one place", p.ID)
		}
		b.add = [2]string{head, tail}
		s.size += max(len(b.full), len(head)+len(tail))
		s.forms++
		s.books[i] = b
	}
	return s, nil
}

// HTML returns the shelf as the catalog page shows it with data d (its
// cart and CSRF token): what Book makes of each product, put together.
func (s *Shelf) HTML(d Data) template.HTML {
	return template.HTML(s.appendTo(nil, d))
}

// With runs render with d.Books set to the shelf as HTML shows it, built in
// a buffer lent from a pool and given back when render returns: d.Books is
// valid only during render, which must not keep it (a template execution
// copies it into the page). This saves a new string of about 16 KB on every
// catalog page view: 28–35% of the memory store's GET / and what keeps
// Redis's GET / above its target (docs/performance.md, row "shelf").
func (s *Shelf) With(d Data, render func(Data) error) error {
	bp := shelfBufs.Get().(*[]byte)
	defer shelfBufs.Put(bp)
	*bp = s.appendTo((*bp)[:0], d)
	d.Books = template.HTML(unsafe.String(unsafe.SliceData(*bp), len(*bp)))
	return render(d)
}

var shelfBufs = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// appendTo appends the shelf as HTML shows it to b.
func (s *Shelf) appendTo(b []byte, d Data) []byte {
	// What html/template writes for a token of the base64url alphabet
	// (tote's); any other text is escaped for the attribute.
	token := template.HTMLEscapeString(d.CSRF)
	if need := s.size + s.forms*len(token); cap(b)-len(b) < need {
		b = append(make([]byte, 0, len(b)+need), b...)
	}
	for i := range s.books {
		x := &s.books[i]
		switch {
		case x.out != "":
			b = append(b, x.out...)
		case d.MaxAdd(x.product) == 0:
			b = append(b, x.full...)
		default:
			b = append(b, x.add[0]...)
			b = append(b, token...)
			b = append(b, x.add[1]...)
		}
	}
	return b
}
