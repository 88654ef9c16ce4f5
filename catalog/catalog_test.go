package catalog_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"tote/catalog"
)

const (
	dune       = `{"id": "dune", "title": "Dune", "author": "Frank Herbert", "price": 1899, "stock": 20}`
	foundation = `{"id": "foundation", "title": "Foundation", "author": "Isaac Asimov", "price": 1299, "stock": 9}`
)

// doc returns a USD catalog document holding the given product objects.
func doc(products ...string) string {
	return `{"currency": "USD", "products": [` + strings.Join(products, ", ") + `]}`
}

func mustLoad(tb testing.TB, s string) *catalog.Catalog {
	tb.Helper()
	c, err := catalog.Load(strings.NewReader(s))
	if err != nil {
		tb.Fatalf("Load: %v\n%s", err, s)
	}
	return c
}

func TestDefault(t *testing.T) {
	c := catalog.Default()
	ps := c.Products()
	if len(ps) < 20 {
		t.Errorf("%d products, want at least 20", len(ps))
	}
	if !regexp.MustCompile(`^[A-Z]{3}$`).MatchString(c.Currency()) {
		t.Errorf("Currency() = %q, want an ISO 4217 code", c.Currency())
	}
	idPattern := regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	seen := map[string]bool{}
	var low, out bool
	for _, p := range ps {
		if !idPattern.MatchString(p.ID) {
			t.Errorf("id %q does not match %v", p.ID, idPattern)
		}
		if seen[p.ID] {
			t.Errorf("id %q appears twice", p.ID)
		}
		seen[p.ID] = true
		if p.Currency != c.Currency() {
			t.Errorf("%s: currency %q, catalog's is %q", p.ID, p.Currency, c.Currency())
		}
		if p.Price <= 0 {
			t.Errorf("%s: price %d, want > 0", p.ID, p.Price)
		}
		if p.Stock < 0 {
			t.Errorf("%s: stock %d", p.ID, p.Stock)
		}
		if strings.TrimSpace(p.Title) == "" || strings.TrimSpace(p.Author) == "" {
			t.Errorf("%s: empty title or author: %+v", p.ID, p)
		}
		if p.InStock() != (p.Stock > 0) {
			t.Errorf("%s: InStock() = %v with stock %d", p.ID, p.InStock(), p.Stock)
		}
		low = low || p.Stock == 1 || p.Stock == 2
		out = out || p.Stock == 0
		if got, err := c.Product(p.ID); err != nil || got != p {
			t.Errorf("Product(%q) = %+v, %v; want %+v", p.ID, got, err, p)
		}
	}
	if !low {
		t.Error("no product has stock 1 or 2")
	}
	if !out {
		t.Error("no product has stock 0")
	}
}

func TestProduct(t *testing.T) {
	c := catalog.Default()
	tests := []struct {
		name    string
		id      string
		want    catalog.Product
		wantErr bool
	}{
		{name: "found", id: "left-hand-of-darkness", want: catalog.Product{
			ID: "left-hand-of-darkness", Title: "The Left Hand of Darkness", Author: "Ursula K. Le Guin",
			Price: 1499, Currency: "USD", Stock: 12,
		}},
		{name: "found out of stock", id: "mrs-dalloway", want: catalog.Product{
			ID: "mrs-dalloway", Title: "Mrs Dalloway", Author: "Virginia Woolf", Price: 1099, Currency: "USD", Stock: 0,
		}},
		{name: "unknown", id: "no-such-book", wantErr: true},
		{name: "wrong case", id: "Dune", wantErr: true},
		{name: "prefix", id: "dun", wantErr: true},
		{name: "empty", id: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Product(tt.id)
			if !tt.wantErr {
				if err != nil || got != tt.want {
					t.Fatalf("Product(%q) = %+v, %v; want %+v", tt.id, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("Product(%q) error = %v, want one matching ErrNotFound", tt.id, err)
			}
			if got != (catalog.Product{}) {
				t.Errorf("Product(%q) = %+v with an error, want the zero Product", tt.id, got)
			}
			var nf *catalog.NotFoundError
			if !errors.As(err, &nf) || nf.ID != tt.id {
				t.Errorf("error %T %v is not a *NotFoundError for %q", err, err, tt.id)
			}
			if tt.id != "" && !strings.Contains(err.Error(), tt.id) {
				t.Errorf("message %q does not name %q", err.Error(), tt.id)
			}
			if msg := err.Error(); !strings.HasSuffix(msg, ".") || strings.HasPrefix(msg, "catalog:") {
				t.Errorf("message %q is not a sentence for a person", msg)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	long := strings.Repeat("x", 201)
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error message
		// wantAny, when set, needs one of its substrings too (the product
		// may be named by position or by id).
		wantAny []string
	}{
		{name: "not JSON", in: `not json`, want: []string{"JSON"}},
		{name: "empty input", in: ``, want: []string{"JSON"}},
		{name: "array", in: `[` + dune + `]`, want: []string{"JSON"}},
		{name: "truncated", in: doc(dune)[:30], want: []string{"JSON"}},
		{name: "trailing second value", in: doc(dune) + ` {}`, want: []string{"more than one JSON value"}},
		{name: "trailing second document", in: doc(dune) + "\n" + doc(dune), want: []string{"more than one"}},
		{name: "unknown top-level field", in: `{"currency": "USD", "products": [` + dune + `], "extra": 1}`, want: []string{`"extra"`}},
		{name: "unknown product field", in: doc(foundation, `{"id": "dune", "title": "Dune", "author": "Frank Herbert", "prise": 1899, "price": 1899, "stock": 20}`),
			want: []string{`"prise"`}, wantAny: []string{`"dune"`, "product 2", "products[1]"}},

		{name: "missing currency", in: `{"products": [` + dune + `]}`, want: []string{`"currency"`}},
		{name: "empty currency", in: `{"currency": "", "products": [` + dune + `]}`, want: []string{`"currency"`}},
		{name: "lower-case currency", in: `{"currency": "usd", "products": [` + dune + `]}`, want: []string{`"currency"`, `"usd"`}},
		{name: "two-letter currency", in: `{"currency": "US", "products": [` + dune + `]}`, want: []string{`"currency"`, `"US"`}},
		{name: "symbol currency", in: `{"currency": "$", "products": [` + dune + `]}`, want: []string{`"currency"`}},
		{name: "numeric currency", in: `{"currency": 840, "products": [` + dune + `]}`, want: []string{"currency"}},

		{name: "empty products", in: `{"currency": "USD", "products": []}`, want: []string{`"products"`}},
		{name: "missing products", in: `{"currency": "USD"}`, want: []string{`"products"`}},
		{name: "null products", in: `{"currency": "USD", "products": null}`, want: []string{`"products"`}},

		{name: "missing id", in: doc(dune, `{"title": "T", "author": "A", "price": 1, "stock": 1}`), want: []string{"product 2", `"id"`, "missing"}},
		{name: "null id", in: doc(`{"id": null, "title": "T", "author": "A", "price": 1, "stock": 1}`), want: []string{"product 1", `"id"`}},
		{name: "empty id", in: doc(`{"id": "", "title": "T", "author": "A", "price": 1, "stock": 1}`), want: []string{"product 1", `"id"`}},
		{name: "upper-case id", in: doc(`{"id": "Dune", "title": "Dune", "author": "A", "price": 1, "stock": 1}`), want: []string{`"Dune"`, `"id"`}},
		{name: "id with space", in: doc(dune, `{"id": "a b", "title": "T", "author": "A", "price": 1, "stock": 1}`), want: []string{`"a b"`, "product 2", `"id"`}},
		{name: "id with underscore", in: doc(`{"id": "a_b", "title": "T", "author": "A", "price": 1, "stock": 1}`), want: []string{`"a_b"`, `"id"`}},
		{name: "id with slash", in: doc(`{"id": "a/b", "title": "T", "author": "A", "price": 1, "stock": 1}`), want: []string{`"a/b"`, `"id"`}},
		{name: "id of 65 chars", in: doc(`{"id": "` + strings.Repeat("a", 65) + `", "title": "T", "author": "A", "price": 1, "stock": 1}`),
			want: []string{strings.Repeat("a", 65), `"id"`}},
		{name: "id as number", in: doc(`{"id": 7, "title": "T", "author": "A", "price": 1, "stock": 1}`), want: []string{"id"}},
		{name: "duplicate id", in: doc(dune, foundation, `{"id": "dune", "title": "Dune again", "author": "A", "price": 1, "stock": 1}`),
			want: []string{"product 3", `"dune"`, `"id"`, "twice"}},

		{name: "missing title", in: doc(`{"id": "dune", "author": "A", "price": 1, "stock": 1}`), want: []string{`"dune"`, `"title"`, "missing"}},
		{name: "empty title", in: doc(`{"id": "dune", "title": "", "author": "A", "price": 1, "stock": 1}`), want: []string{`"dune"`, `"title"`, "empty"}},
		{name: "blank title", in: doc(`{"id": "dune", "title": "  \t ", "author": "A", "price": 1, "stock": 1}`), want: []string{`"dune"`, `"title"`}},
		{name: "title over 200 chars", in: doc(`{"id": "dune", "title": "` + long + `", "author": "A", "price": 1, "stock": 1}`),
			want: []string{`"dune"`, `"title"`, "200"}},
		{name: "title over 200 multibyte chars", in: doc(`{"id": "dune", "title": "` + strings.Repeat("é", 201) + `", "author": "A", "price": 1, "stock": 1}`),
			want: []string{`"dune"`, `"title"`, "200"}},
		{name: "missing author", in: doc(`{"id": "dune", "title": "Dune", "price": 1, "stock": 1}`), want: []string{`"dune"`, `"author"`, "missing"}},
		{name: "empty author", in: doc(`{"id": "dune", "title": "Dune", "author": "", "price": 1, "stock": 1}`), want: []string{`"dune"`, `"author"`}},
		{name: "author over 200 chars", in: doc(`{"id": "dune", "title": "Dune", "author": "` + long + `", "price": 1, "stock": 1}`),
			want: []string{`"dune"`, `"author"`}},

		{name: "missing price", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "stock": 1}`), want: []string{`"dune"`, `"price"`, "missing"}},
		{name: "null price", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": null, "stock": 1}`), want: []string{`"dune"`, `"price"`}},
		{name: "float price", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 14.99, "stock": 1}`), want: []string{`"dune"`, `"price"`, "14.99"}},
		{name: "whole float price", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 1499.0, "stock": 1}`), want: []string{`"dune"`, `"price"`}},
		{name: "exponent price", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 1e3, "stock": 1}`), want: []string{`"dune"`, `"price"`}},
		{name: "string price", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": "1499", "stock": 1}`), want: []string{`"dune"`, `"price"`, `"1499"`}},
		{name: "negative price", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": -1, "stock": 1}`), want: []string{`"dune"`, `"price"`, "-1"}},
		{name: "huge price", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 1000001, "stock": 1}`), want: []string{`"dune"`, `"price"`}},
		{name: "price beyond int64", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 99999999999999999999, "stock": 1}`), want: []string{`"dune"`, `"price"`}},

		{name: "missing stock", in: doc(dune, `{"id": "kindred", "title": "Kindred", "author": "A", "price": 1}`), want: []string{`"kindred"`, "product 2", `"stock"`, "missing"}},
		{name: "null stock", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 1, "stock": null}`), want: []string{`"dune"`, `"stock"`}},
		{name: "negative stock", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 1, "stock": -1}`), want: []string{`"dune"`, `"stock"`, "-1"}},
		{name: "float stock", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 1, "stock": 2.5}`), want: []string{`"dune"`, `"stock"`}},
		{name: "string stock", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 1, "stock": "2"}`), want: []string{`"dune"`, `"stock"`}},

		{name: "product currency differs", in: doc(dune, `{"id": "kindred", "title": "Kindred", "author": "A", "price": 1, "currency": "EUR", "stock": 1}`),
			want: []string{`"kindred"`, `"currency"`, `"EUR"`, `"USD"`}},
		{name: "product currency lower case", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 1, "currency": "usd", "stock": 1}`),
			want: []string{`"dune"`, `"currency"`, `"usd"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := catalog.Load(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Load accepted %s: %d products", tt.in, len(c.Products()))
			}
			if c != nil {
				t.Errorf("Load returned a catalog with its error %v", err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if len(tt.wantAny) > 0 && !containsAny(msg, tt.wantAny) {
				t.Errorf("error %q names the product by none of %q", msg, tt.wantAny)
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestLoadAccepts(t *testing.T) {
	title200 := strings.Repeat("é", 200)
	tests := []struct {
		name string
		in   string
		want []catalog.Product
	}{
		{name: "one product", in: doc(dune), want: []catalog.Product{
			{ID: "dune", Title: "Dune", Author: "Frank Herbert", Price: 1899, Currency: "USD", Stock: 20},
		}},
		{name: "catalog order kept", in: doc(foundation, dune), want: []catalog.Product{
			{ID: "foundation", Title: "Foundation", Author: "Isaac Asimov", Price: 1299, Currency: "USD", Stock: 9},
			{ID: "dune", Title: "Dune", Author: "Frank Herbert", Price: 1899, Currency: "USD", Stock: 20},
		}},
		{name: "product repeats the catalog currency", in: doc(`{"id": "dune", "title": "Dune", "author": "A", "price": 1, "currency": "USD", "stock": 1}`),
			want: []catalog.Product{{ID: "dune", Title: "Dune", Author: "A", Price: 1, Currency: "USD", Stock: 1}}},
		{name: "markup in a title is kept as text", in: doc(`{"id": "x", "title": "<script>alert(1)</script>", "author": "A & B", "price": 1, "stock": 1}`),
			want: []catalog.Product{{ID: "x", Title: "<script>alert(1)</script>", Author: "A & B", Price: 1, Currency: "USD", Stock: 1}}},
		{name: "title of 200 multibyte chars", in: doc(`{"id": "x", "title": "` + title200 + `", "author": "A", "price": 1, "stock": 1}`),
			want: []catalog.Product{{ID: "x", Title: title200, Author: "A", Price: 1, Currency: "USD", Stock: 1}}},
		{name: "id of 64 chars and digits and hyphens", in: doc(`{"id": "` + strings.Repeat("a-1", 21) + `b", "title": "T", "author": "A", "price": 1, "stock": 0}`),
			want: []catalog.Product{{ID: strings.Repeat("a-1", 21) + "b", Title: "T", Author: "A", Price: 1, Currency: "USD", Stock: 0}}},
		{name: "limits", in: doc(`{"id": "x", "title": "T", "author": "A", "price": 1000000, "stock": 1000000}`),
			want: []catalog.Product{{ID: "x", Title: "T", Author: "A", Price: 1_000_000, Currency: "USD", Stock: 1_000_000}}},
		{name: "other currency", in: `{"currency": "EUR", "products": [{"id": "x", "title": "T", "author": "A", "price": 5, "currency": "EUR", "stock": 3}]}`,
			want: []catalog.Product{{ID: "x", Title: "T", Author: "A", Price: 5, Currency: "EUR", Stock: 3}}},
		{name: "trailing white space", in: doc(dune) + "\n\n  ", want: []catalog.Product{
			{ID: "dune", Title: "Dune", Author: "Frank Herbert", Price: 1899, Currency: "USD", Stock: 20},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.in)
			got := c.Products()
			if len(got) != len(tt.want) {
				t.Fatalf("%d products, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				if got[i] != w {
					t.Errorf("product %d = %+v, want %+v", i, got[i], w)
				}
				if p, err := c.Product(w.ID); err != nil || p != w {
					t.Errorf("Product(%q) = %+v, %v; want %+v", w.ID, p, err, w)
				}
			}
			if c.Currency() != tt.want[0].Currency {
				t.Errorf("Currency() = %q, want %q", c.Currency(), tt.want[0].Currency)
			}
		})
	}
}
