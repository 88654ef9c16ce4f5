package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"tote/catalog"
)

func TestProductsAPI(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)

	res := c.do(http.MethodGet, "/api/products", "")
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/products: %d %s", res.status, res.header.Get("Content-Type"))
	}
	var list struct {
		Products []catalog.Product `json:"products"`
		Currency string            `json:"currency"`
	}
	res.decode(t, &list)
	if len(list.Products) < 20 || list.Currency != "USD" || list.Products[0].Currency != "USD" {
		t.Errorf("got %d products in %q, first %+v; want at least 20 in USD", len(list.Products), list.Currency, list.Products[0])
	}

	res = c.do(http.MethodGet, "/api/products/dune", "")
	var p catalog.Product
	res.decode(t, &p)
	if res.status != http.StatusOK || p.ID != "dune" || p.Price != 1899 || p.Title != "Dune" {
		t.Errorf("GET /api/products/dune: %d %+v", res.status, p)
	}

	res = c.do(http.MethodGet, "/api/products/no-such-book", "")
	if res.status != http.StatusNotFound || res.errorCode(t) != "product_not_found" {
		t.Errorf("GET unknown product: %d %s", res.status, res.body)
	}
	if c.cookie != "" || a.store.Len() != 0 {
		t.Errorf("reading the catalog created a session (cookie %q, %d stored)", c.cookie, a.store.Len())
	}
}

func TestCartReadCreatesNoSession(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)
	res := c.do(http.MethodGet, "/api/cart", "")
	if res.status != http.StatusOK {
		t.Fatalf("GET /api/cart: %d", res.status)
	}
	if string(res.body) != `{"items":[],"item_count":0,"subtotal":0,"currency":"USD","visits":0,"user":null,"expires_at":null}` {
		t.Errorf("empty cart body = %s", res.body)
	}
	if res.setCookie != nil || a.store.Len() != 0 {
		t.Errorf("a new visitor's read set a cookie (%v) or stored a session (%d)", res.setCookie, a.store.Len())
	}
	if res.header.Get("Cache-Control") != "no-store" || res.header.Get("Vary") != "Cookie" {
		t.Errorf("Cache-Control %q, Vary %q; want no-store, Cookie", res.header.Get("Cache-Control"), res.header.Get("Vary"))
	}

	// A forged, well-formed id is never adopted: still nothing stored, and
	// the first change gets a fresh id.
	c.cookie = strings.Repeat("A", 32)
	if res := c.do(http.MethodGet, "/api/cart", ""); res.setCookie != nil || res.status != http.StatusOK {
		t.Errorf("forged id: %d, Set-Cookie %v", res.status, res.setCookie)
	}
	res = c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
	if res.setCookie == nil || res.setCookie.Value == strings.Repeat("A", 32) {
		t.Errorf("forged id adopted: Set-Cookie %v", res.setCookie)
	}
}

func TestCartChanges(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)

	res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
	if res.status != http.StatusOK {
		t.Fatalf("add: %d %s", res.status, res.body)
	}
	ck := res.setCookie
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge != 336*3600 || ck.Secure {
		t.Fatalf("session cookie %+v; want HttpOnly, SameSite=Lax, Path=/, Max-Age=14 days, not Secure", ck)
	}
	if len(ck.Value) < 22 {
		t.Errorf("session id %q is too short for 128 bits", ck.Value)
	}

	steps := []struct {
		name, method, path, body string
		want                     string // product:quantity,... in order
	}{
		{"add default quantity", "", "", "", "dune:1"},
		{"add 2 more", http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":2}`, "dune:3"},
		{"add another book", http.MethodPost, "/api/cart/items", `{"product_id":"kindred","quantity":1}`, "dune:3,kindred:1"},
		{"spaces around the quantity", http.MethodPost, "/api/cart/items", `{"product_id":"beloved", "quantity" : 2 }`, "dune:3,kindred:1,beloved:2"},
		{"set keeps position", http.MethodPut, "/api/cart/items/dune", `{"quantity":5}`, "dune:5,kindred:1,beloved:2"},
		{"set 0 removes", http.MethodPut, "/api/cart/items/kindred", `{"quantity":0}`, "dune:5,beloved:2"},
		{"set a new line", http.MethodPut, "/api/cart/items/kindred", `{"quantity":2}`, "dune:5,beloved:2,kindred:2"},
		{"delete a line", http.MethodDelete, "/api/cart/items/dune", "", "beloved:2,kindred:2"},
		{"delete an absent line", http.MethodDelete, "/api/cart/items/dune", "", "beloved:2,kindred:2"},
		{"charset is fine", http.MethodPost, "/api/cart/items", `{"product_id":"beloved"}`, "beloved:3,kindred:2"},
		{"clear", http.MethodDelete, "/api/cart", "", ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.method != "" {
				ct := "application/json"
				if st.name == "charset is fine" {
					ct = "Application/JSON; charset=utf-8"
				}
				res = c.do(st.method, st.path, st.body, "Content-Type", ct)
				if res.status != http.StatusOK {
					t.Fatalf("%s %s: %d %s", st.method, st.path, res.status, res.body)
				}
			}
			var got cartJSON
			res.decode(t, &got)
			if lines(got) != st.want {
				t.Errorf("response cart = %q, want %q", lines(got), st.want)
			}
			if stored := lines(c.cart()); stored != st.want {
				t.Errorf("stored cart = %q, want %q", stored, st.want)
			}
		})
	}

	t.Run("totals", func(t *testing.T) {
		c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":2}`)
		c.json(http.MethodPost, "/api/cart/items", `{"product_id":"pride-and-prejudice","quantity":3}`)
		got := c.cart()
		if got.ItemCount != 5 || got.Subtotal != 2*1899+3*899 || got.Items[0].LineTotal != 3798 || got.Items[1].UnitPrice != 899 || got.Items[1].Title != "Pride and Prejudice" {
			t.Errorf("cart %+v", got)
		}
	})
}

func TestNoWriteWithoutChange(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)
	for _, req := range []struct{ method, path string }{
		{http.MethodDelete, "/api/cart"},
		{http.MethodDelete, "/api/cart/items/dune"},
	} {
		if res := c.do(req.method, req.path, ""); res.status != http.StatusOK || res.setCookie != nil {
			t.Errorf("new visitor %s %s: %d, Set-Cookie %v; want 200 and no cookie", req.method, req.path, res.status, res.setCookie)
		}
	}
	if a.store.Len() != 0 {
		t.Fatalf("%d sessions stored by requests that changed nothing", a.store.Len())
	}
	c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
	if res := c.do(http.MethodDelete, "/api/cart/items/kindred", ""); res.setCookie != nil {
		t.Errorf("deleting an absent line renewed the cookie: nothing changed, nothing is written")
	}
	if res := c.do(http.MethodGet, "/api/cart", ""); res.setCookie != nil {
		t.Errorf("GET /api/cart set a cookie")
	}
}

func TestAPIErrors(t *testing.T) {
	big := func(n int) string { // a valid JSON body of exactly n bytes
		b := `{"product_id":"dune"}`
		return b + strings.Repeat(" ", n-len(b))
	}
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"4096 bytes pass", "POST", "/api/cart/items", "application/json", big(4096), 200, ""},
		{"4097 bytes", "POST", "/api/cart/items", "application/json", big(4097), 413, "payload_too_large"},
		{"size before content type", "POST", "/api/cart/items", "text/plain", big(5000), 413, "payload_too_large"},
		{"text/plain", "POST", "/api/cart/items", "text/plain", `{"product_id":"dune"}`, 415, "unsupported_media_type"},
		{"no content type", "POST", "/api/cart/items", "", `{"product_id":"dune"}`, 415, "unsupported_media_type"},
		{"form content type", "POST", "/api/cart/items", "application/x-www-form-urlencoded", `product_id=dune`, 415, "unsupported_media_type"},
		{"PUT text/plain", "PUT", "/api/cart/items/dune", "text/plain", `{"quantity":1}`, 415, "unsupported_media_type"},
		{"content type before JSON", "POST", "/api/cart/items", "text/plain", `{nope`, 415, "unsupported_media_type"},
		{"malformed JSON", "POST", "/api/cart/items", "application/json", `{"product_id":`, 400, "invalid_request"},
		{"empty body", "POST", "/api/cart/items", "application/json", ``, 400, "invalid_request"},
		{"not an object", "POST", "/api/cart/items", "application/json", `["dune"]`, 400, "invalid_request"},
		{"two objects", "POST", "/api/cart/items", "application/json", `{"product_id":"dune"}{}`, 400, "invalid_request"},
		{"quantity as string", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":"2"}`, 400, "invalid_request"},
		{"quantity as bool", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":true}`, 400, "invalid_request"},
		{"missing product_id", "POST", "/api/cart/items", "application/json", `{"quantity":1}`, 400, "invalid_request"},
		{"empty product_id", "POST", "/api/cart/items", "application/json", `{"product_id":""}`, 400, "invalid_request"},
		{"product_id as number", "POST", "/api/cart/items", "application/json", `{"product_id":7}`, 400, "invalid_request"},
		{"PUT without quantity", "PUT", "/api/cart/items/dune", "application/json", `{}`, 400, "invalid_request"},
		{"PUT quantity as string", "PUT", "/api/cart/items/dune", "application/json", `{"quantity":"1"}`, 400, "invalid_request"},
		{"JSON shape before product", "POST", "/api/cart/items", "application/json", `{"product_id":"nope","quantity":"x"}`, 400, "invalid_request"},
		{"unknown product", "POST", "/api/cart/items", "application/json", `{"product_id":"no-such-book"}`, 404, "product_not_found"},
		{"product before quantity", "POST", "/api/cart/items", "application/json", `{"product_id":"no-such-book","quantity":2.5}`, 404, "product_not_found"},
		{"PUT unknown product", "PUT", "/api/cart/items/no-such-book", "application/json", `{"quantity":1}`, 404, "product_not_found"},
		{"PUT unknown product, bad quantity", "PUT", "/api/cart/items/no-such-book", "application/json", `{"quantity":-5}`, 404, "product_not_found"},
		{"DELETE unknown product", "DELETE", "/api/cart/items/no-such-book", "", ``, 404, "product_not_found"},
		{"fractional quantity", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":2.5}`, 422, "invalid_quantity"},
		{"quantity 0", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":0}`, 422, "invalid_quantity"},
		{"quantity 100", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":100}`, 422, "invalid_quantity"},
		{"negative quantity", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":-1}`, 422, "invalid_quantity"},
		{"huge quantity", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":1e400}`, 422, "invalid_quantity"},
		{"huge integer", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":99999999999999999999999}`, 422, "invalid_quantity"},
		{"PUT 100", "PUT", "/api/cart/items/dune", "application/json", `{"quantity":100}`, 422, "invalid_quantity"},
		{"PUT -1", "PUT", "/api/cart/items/dune", "application/json", `{"quantity":-1}`, 422, "invalid_quantity"},
		{"PUT 1.5", "PUT", "/api/cart/items/dune", "application/json", `{"quantity":1.5}`, 422, "invalid_quantity"},
		{"integral float quantity", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":2.0}`, 422, "invalid_quantity"},
		{"exponent", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":1e0}`, 422, "invalid_quantity"},
		{"tiny exponent", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":1e-400}`, 422, "invalid_quantity"},
		{"rounds to 1", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":0.99999999999999999999}`, 422, "invalid_quantity"},
		{"PUT 1.0", "PUT", "/api/cart/items/dune", "application/json", `{"quantity":1.0}`, 422, "invalid_quantity"},
		{"PUT huge negative", "PUT", "/api/cart/items/dune", "application/json", `{"quantity":-99999999999999999999999}`, 422, "invalid_quantity"},
		{"quantity as object", "POST", "/api/cart/items", "application/json", `{"product_id":"dune","quantity":{"n":1}}`, 400, "invalid_request"},
		{"quantity as array", "PUT", "/api/cart/items/dune", "application/json", `{"quantity":[1]}`, 400, "invalid_request"},
		{"JSON shape before product, PUT", "PUT", "/api/cart/items/no-such-book", "application/json", `{"quantity":"x"}`, 400, "invalid_request"},
		{"quantity before stock", "POST", "/api/cart/items", "application/json", `{"product_id":"mrs-dalloway","quantity":100}`, 422, "invalid_quantity"},
		{"out of stock", "POST", "/api/cart/items", "application/json", `{"product_id":"mrs-dalloway"}`, 422, "insufficient_stock"},
		{"over stock", "POST", "/api/cart/items", "application/json", `{"product_id":"parable-of-the-sower","quantity":3}`, 422, "insufficient_stock"},
		{"PUT over stock", "PUT", "/api/cart/items/invisible-cities", "application/json", `{"quantity":2}`, 422, "insufficient_stock"},
		{"unknown API route", "GET", "/api/nope", "", ``, 404, "not_found"},
		{"unknown API method", "PATCH", "/api/cart", "application/json", `{}`, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestApp(t)
			c := a.client(t)
			// A session with one line, so that "nothing changed" is visible.
			c.json(http.MethodPost, "/api/cart/items", `{"product_id":"kindred","quantity":2}`)
			before := c.cart()

			var hdr []string
			if tt.ctype != "" {
				hdr = []string{"Content-Type", tt.ctype}
			}
			res := c.do(tt.method, tt.path, tt.body, hdr...)
			if res.status != tt.status {
				t.Fatalf("%s %s: status %d (%s), want %d", tt.method, tt.path, res.status, res.body, tt.status)
			}
			if tt.code == "" {
				return
			}
			if code := res.errorCode(t); code != tt.code {
				t.Errorf("code %q, want %q", code, tt.code)
			}
			if !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
				t.Errorf("error Content-Type %q", res.header.Get("Content-Type"))
			}
			if res.setCookie != nil {
				t.Errorf("a failed request sent Set-Cookie %v", res.setCookie)
			}
			if after := c.cart(); lines(after) != lines(before) || after.Visits != before.Visits {
				t.Errorf("the session changed: %q -> %q", lines(before), lines(after))
			}
		})
	}
}

func TestLineLimits(t *testing.T) {
	// A catalog of 60 books with plenty of stock.
	var b strings.Builder
	b.WriteString(`{"currency":"EUR","products":[`)
	for i := 0; i < 60; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"book-%d","title":"Book %d","author":"A","price":100,"stock":500}`, i, i)
	}
	b.WriteString(`]}`)
	cat, err := catalog.Load(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	a := newTestApp(t, withCatalog(cat))
	c := a.client(t)
	for i := 0; i < 50; i++ {
		if res := c.json(http.MethodPost, "/api/cart/items", fmt.Sprintf(`{"product_id":"book-%d"}`, i)); res.status != 200 {
			t.Fatalf("line %d: %d %s", i+1, res.status, res.body)
		}
	}
	for _, tt := range []struct{ name, method, path, body string }{
		{"51st line by POST", http.MethodPost, "/api/cart/items", `{"product_id":"book-50"}`},
		{"51st line by PUT", http.MethodPut, "/api/cart/items/book-51", `{"quantity":1}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := c.json(tt.method, tt.path, tt.body)
			if res.status != http.StatusUnprocessableEntity || res.errorCode(t) != "cart_full" {
				t.Errorf("%d %s, want 422 cart_full", res.status, res.body)
			}
		})
	}
	t.Run("existing line still grows", func(t *testing.T) {
		c.json(http.MethodPost, "/api/cart/items", `{"product_id":"book-0","quantity":98}`)
		res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"book-0","quantity":1}`)
		if res.status != http.StatusUnprocessableEntity || res.errorCode(t) != "invalid_quantity" {
			t.Errorf("line of 99 + 1: %d %s, want 422 invalid_quantity", res.status, res.body)
		}
		if got := c.cart(); got.quantity("book-0") != 99 || len(got.Items) != 50 || got.Currency != "EUR" {
			t.Errorf("cart: book-0 x%d, %d lines, %s", got.quantity("book-0"), len(got.Items), got.Currency)
		}
	})
}

// lines renders a cart as "id:qty,id:qty" in order.
func lines(c cartJSON) string {
	parts := make([]string, len(c.Items))
	for i, it := range c.Items {
		parts[i] = fmt.Sprintf("%s:%d", it.ProductID, it.Quantity)
	}
	return strings.Join(parts, ",")
}
