package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"tote/cart"
	"tote/catalog"
	"tote/session"
)

// TestRefusals provokes every shopper's refusal in the classifier's own
// table (refusals), by adding and by setting a line: the API answers its
// status and code, and a form answers 303 to /cart and shows the same
// message as an error flash on the next page. Neither changes the cart.
func TestRefusals(t *testing.T) {
	cat := fullCatalog(t)
	// How to provoke each refusal: a product and a quantity as written
	// (a JSON number, and the text of a form field), in a cart that full
	// fills first. A refusal without an entry fails the test.
	provoke := map[string]struct {
		product, quantity string
		full              bool
	}{
		"product_not_found":  {product: "no-such-book", quantity: "1"},
		"invalid_quantity":   {product: "dune", quantity: "2.5"},
		"insufficient_stock": {product: "mrs-dalloway", quantity: "1"},
		"cart_full":          {product: "dune", quantity: "1", full: true},
	}
	ops := []struct {
		name     string
		api      func(c *client, product, quantity string) *response
		formPath string
	}{
		{"add", func(c *client, product, quantity string) *response {
			return c.json(http.MethodPost, "/api/cart/items", fmt.Sprintf(`{"product_id":%q,"quantity":%s}`, product, quantity))
		}, "/cart/add"},
		{"set", func(c *client, product, quantity string) *response {
			return c.json(http.MethodPut, "/api/cart/items/"+product, fmt.Sprintf(`{"quantity":%s}`, quantity))
		}, "/cart/update"},
	}
	a := newTestApp(t, withCatalog(cat))
	for _, r := range refusals {
		if !r.flash {
			continue // an account form's refusal: the account tests
		}
		for _, op := range ops {
			t.Run(r.code+"/"+op.name, func(t *testing.T) {
				p, ok := provoke[r.code]
				if !ok {
					t.Fatalf("no way to provoke %s in the test: add one", r.code)
				}
				c := a.client(t)
				_, doc := c.page("/")
				token := csrf(t, doc)
				if p.full {
					for i := range cart.MaxLines {
						if res := c.json(http.MethodPost, "/api/cart/items", fmt.Sprintf(`{"product_id":"book-%d"}`, i)); res.status != http.StatusOK {
							t.Fatalf("filling the cart: %d %s", res.status, res.body)
						}
					}
				}
				before := lines(c.cart())

				res := op.api(c, p.product, p.quantity)
				if res.status != r.status {
					t.Fatalf("API: status %d (%s), want %d", res.status, res.body, r.status)
				}
				var e errorBody
				res.decode(t, &e)
				if e.Error.Code != r.code || e.Error.Message == "" {
					t.Fatalf("API: %s, want code %s with a message", res.body, r.code)
				}

				res = c.form(op.formPath, url.Values{"csrf_token": {token}, "product_id": {p.product}, "quantity": {p.quantity}})
				if res.status != http.StatusSeeOther || res.header.Get("Location") != "/cart" {
					t.Fatalf("form: %d Location %q, want 303 to /cart", res.status, res.header.Get("Location"))
				}
				res, doc = c.page("/cart")
				if res.status != http.StatusOK {
					t.Fatalf("the page after the form: %d", res.status)
				}
				flash := doc.Find("#flash")
				if got := strings.TrimSpace(flash.Text()); got != e.Error.Message || !flash.HasClass("flash-error") {
					t.Errorf("flash %q (error style %v), want %q as an error", got, flash.HasClass("flash-error"), e.Error.Message)
				}
				if after := lines(c.cart()); after != before {
					t.Errorf("the cart changed: %q -> %q", before, after)
				}
			})
		}
	}
}

// fullCatalog is the embedded catalog plus cart.MaxLines books "book-N"
// with deep stock, enough to fill a cart.
func fullCatalog(tb testing.TB) *catalog.Catalog {
	tb.Helper()
	products := catalog.Default().Products()
	for i := range cart.MaxLines {
		products = append(products, catalog.Product{ID: fmt.Sprintf("book-%d", i), Title: fmt.Sprintf("Book %d", i), Author: "A", Price: 100, Stock: 500})
	}
	b, err := json.Marshal(map[string]any{"currency": "USD", "products": products})
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := catalog.Load(strings.NewReader(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

// TestClassify checks which errors are a shopper's refusal: those of the
// table, however wrapped, and no others.
func TestClassify(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		status  int
		refusal bool
	}{
		{"unknown product", &catalog.NotFoundError{ID: "x"}, 404, true},
		{"wrapped", fmt.Errorf("adding: %w", cart.InvalidQuantity("no")), 422, true},
		{"conflict", session.ErrConflict, 409, false},
		{"store down", fmt.Errorf("get: %w", session.ErrUnavailable), 503, false},
		{"bad token", errCSRF, 403, false},
		{"bad JSON", badRequest("no"), 400, false},
		{"unexpected", errors.New("disk on fire"), 500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := classify(tt.err)
			if a.status != tt.status || a.refusal != tt.refusal || a.code == "" || a.message == "" {
				t.Errorf("classify(%v) = %+v, want status %d, refusal %v", tt.err, a, tt.status, tt.refusal)
			}
		})
	}
}
