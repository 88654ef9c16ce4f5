// Package catalog is tote's book catalog: the products a shopper can put in a
// cart, with their prices in integer minor units and their stock. A catalog is
// loaded once at start, from the JSON file embedded in the binary or from a
// file of the operator's, and is read-only afterwards, so it is safe for
// concurrent use.
package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ErrNotFound is the error a lookup of an unknown product id matches.
var ErrNotFound = errors.New("catalog: product not found")

// NotFoundError says which id was not found. It matches ErrNotFound.
type NotFoundError struct{ ID string }

// Error returns a message that can be shown to a person.
func (e *NotFoundError) Error() string {
	if e.ID == "" {
		return "No book was named."
	}
	return fmt.Sprintf("There is no book with id %q in the catalog.", e.ID)
}

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Product is one book. Price is in minor units of Currency (cents for USD).
type Product struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Author   string `json:"author"`
	Price    int64  `json:"price"`
	Currency string `json:"currency"`
	Stock    int    `json:"stock"`
}

// InStock reports whether at least one copy can be sold.
func (p Product) InStock() bool { return p.Stock > 0 }

// Catalog is a loaded, validated, read-only list of products.
type Catalog struct {
	currency string
	products []Product
	byID     map[string]int
}

// Limits on what a catalog file may hold.
const (
	maxTextLen = 200       // title and author, in characters
	maxPrice   = 1_000_000 // minor units per copy
	maxStock   = 1_000_000
)

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

//go:embed books.json
var embedded []byte

// Default returns the catalog embedded in the binary.
func Default() *Catalog {
	c, err := Load(bytes.NewReader(embedded))
	if err != nil {
		panic("catalog: embedded books.json is invalid: " + err.Error())
	}
	return c
}

// file is the JSON form of a catalog: the same shape as GET /api/products.
type file struct {
	Currency string            `json:"currency"`
	Products []json.RawMessage `json:"products"`
}

// fileProduct is one product of a file; pointers tell missing from zero.
type fileProduct struct {
	ID       *string          `json:"id"`
	Title    *string          `json:"title"`
	Author   *string          `json:"author"`
	Price    *json.RawMessage `json:"price"`
	Currency string           `json:"currency"`
	Stock    *json.RawMessage `json:"stock"`
}

// Load reads and validates a catalog in JSON:
//
//	{"currency": "USD", "products": [{"id": "dune", "title": "Dune",
//	  "author": "Frank Herbert", "price": 1899, "stock": 20}, ...]}
//
// A product may repeat the currency, which must then be the catalog's. The
// error of an invalid catalog names the product and the field at fault.
func Load(r io.Reader) (*Catalog, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a catalog JSON document: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a catalog JSON document: more than one JSON value")
	}
	if !currencyPattern.MatchString(f.Currency) {
		return nil, fmt.Errorf(`"currency" must be a three-letter ISO 4217 code such as "USD", got %q`, f.Currency)
	}
	if len(f.Products) == 0 {
		return nil, errors.New(`"products" is missing or empty`)
	}
	c := &Catalog{currency: f.Currency, products: make([]Product, 0, len(f.Products)), byID: make(map[string]int, len(f.Products))}
	for i, raw := range f.Products {
		var fp fileProduct
		pdec := json.NewDecoder(bytes.NewReader(raw))
		pdec.DisallowUnknownFields()
		perr := pdec.Decode(&fp)
		where := fmt.Sprintf("product %d", i+1)
		if fp.ID != nil {
			where = fmt.Sprintf("product %d (%q)", i+1, *fp.ID)
		} else if perr != nil { // name it by its id, even if decoding stopped before it
			var named struct{ ID string }
			if json.Unmarshal(raw, &named) == nil && named.ID != "" {
				where = fmt.Sprintf("product %d (%q)", i+1, named.ID)
			}
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
		}
		if perr != nil {
			return nil, fail("%s", strings.TrimPrefix(perr.Error(), "json: "))
		}
		switch {
		case fp.ID == nil:
			return nil, fail(`"id" is missing`)
		case !idPattern.MatchString(*fp.ID):
			return nil, fail(`"id" must be 1 to 64 of a-z, 0-9 and "-"`)
		case c.has(*fp.ID):
			return nil, fail(`"id" is used twice`)
		}
		title, err := text(fp.Title, "title")
		if err != nil {
			return nil, fail("%v", err)
		}
		author, err := text(fp.Author, "author")
		if err != nil {
			return nil, fail("%v", err)
		}
		price, err := integer(fp.Price, "price", maxPrice)
		if err != nil {
			return nil, fail("%v (prices are integer minor units: 1499 for 14.99)", err)
		}
		stock, err := integer(fp.Stock, "stock", maxStock)
		if err != nil {
			return nil, fail("%v", err)
		}
		if fp.Currency != "" && fp.Currency != f.Currency {
			return nil, fail(`"currency" is %q but the catalog's is %q: one currency per catalog`, fp.Currency, f.Currency)
		}
		c.byID[*fp.ID] = len(c.products)
		c.products = append(c.products, Product{
			ID: *fp.ID, Title: title, Author: author, Price: price, Currency: f.Currency, Stock: int(stock),
		})
	}
	return c, nil
}

func (c *Catalog) has(id string) bool { _, ok := c.byID[id]; return ok }

func text(s *string, field string) (string, error) {
	switch {
	case s == nil:
		return "", fmt.Errorf("%q is missing", field)
	case strings.TrimSpace(*s) == "":
		return "", fmt.Errorf("%q is empty", field)
	case !utf8.ValidString(*s):
		return "", fmt.Errorf("%q is not valid UTF-8", field)
	case utf8.RuneCountInString(*s) > maxTextLen:
		return "", fmt.Errorf("%q is longer than %d characters", field, maxTextLen)
	}
	return strings.TrimSpace(*s), nil
}

func integer(raw *json.RawMessage, field string, max int64) (int64, error) {
	if raw == nil {
		return 0, fmt.Errorf("%q is missing", field)
	}
	var n int64
	if err := json.Unmarshal(*raw, &n); err != nil {
		return 0, fmt.Errorf("%q must be a whole number, got %s", field, *raw)
	}
	if n < 0 || n > max {
		return 0, fmt.Errorf("%q must be between 0 and %d, got %d", field, max, n)
	}
	return n, nil
}

// Currency returns the ISO 4217 code all prices are in.
func (c *Catalog) Currency() string { return c.currency }

// Products returns every product in catalog order. The slice is shared: do
// not modify it.
func (c *Catalog) Products() []Product { return c.products }

// Product returns the product with the given id, or a *NotFoundError.
func (c *Catalog) Product(id string) (Product, error) {
	i, ok := c.byID[id]
	if !ok {
		return Product{}, &NotFoundError{ID: id}
	}
	return c.products[i], nil
}
