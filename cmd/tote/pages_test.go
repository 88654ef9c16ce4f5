package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"tote/catalog"
)

func TestPagesCountVisits(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)
	pages := []struct {
		path   string
		status int
		visits string
	}{
		{"/", 200, "1 time"},
		{"/products/dune", 200, "2 times"},
		{"/cart", 200, "3 times"},
		{"/no-such-page", 404, "4 times"},
		{"/products/no-such-book", 404, "5 times"},
		{"/", 200, "6 times"},
	}
	for _, p := range pages {
		t.Run(p.path, func(t *testing.T) {
			res, doc := c.page(p.path)
			if res.status != p.status {
				t.Fatalf("status %d, want %d", res.status, p.status)
			}
			if got := text(t, doc, "#visit-count"); got != p.visits {
				t.Errorf("#visit-count %q, want %q", got, p.visits)
			}
			if got := text(t, doc, "footer"); !strings.Contains(got, "You have visited "+p.visits) {
				t.Errorf("footer %q lacks the visit sentence", got)
			}
			if text(t, doc, "#cart-count") != "0" || text(t, doc, "#cart-subtotal") != "$0.00" {
				t.Errorf("header cart: %q items, %q", text(t, doc, "#cart-count"), text(t, doc, "#cart-subtotal"))
			}
			if res.setCookie == nil || !res.setCookie.HttpOnly {
				t.Errorf("a page view must store the session and renew its cookie: %v", res.setCookie)
			}
			for h, want := range map[string]string{
				"Cache-Control": "no-store", "Vary": "Cookie", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
			} {
				if got := res.header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			csp := res.header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
	}

	t.Run("static files and HEAD count nothing", func(t *testing.T) {
		for _, path := range []string{"/static/style.css", "/favicon.ico"} {
			res := c.do(http.MethodGet, path, "")
			if res.status != 200 || len(res.body) == 0 || res.setCookie != nil {
				t.Errorf("GET %s: %d, %d bytes, Set-Cookie %v", path, res.status, len(res.body), res.setCookie)
			}
		}
		if ct := c.do(http.MethodGet, "/static/style.css", "").header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
			t.Errorf("style.css Content-Type %q", ct)
		}
		if res := c.do(http.MethodHead, "/", ""); res.status != 200 || res.setCookie != nil {
			t.Errorf("HEAD /: %d, Set-Cookie %v", res.status, res.setCookie)
		}
		if res := c.do(http.MethodGet, "/static/nope.css", ""); res.status != 404 {
			t.Errorf("missing static file: %d", res.status)
		}
		if v := c.cart().Visits; v != 6 {
			t.Errorf("visits %d after static files and HEAD, want 6", v)
		}
	})
}

func TestFormJourney(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)
	_, doc := c.page("/products/parable-of-the-sower")
	token := csrf(t, doc)
	if max, _ := doc.Find("#quantity").Attr("max"); max != "2" {
		t.Errorf("quantity input max=%q, want the stock, 2", max)
	}

	post := func(t *testing.T, path string, v url.Values) {
		t.Helper()
		v.Set("csrf_token", token)
		res := c.form(path, v)
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/cart" {
			t.Fatalf("POST %s: %d Location %q, want 303 to /cart", path, res.status, res.header.Get("Location"))
		}
	}
	flash := func(t *testing.T, want string, isErr bool) {
		t.Helper()
		_, doc := c.page("/cart")
		got := text(t, doc, "#flash")
		if !strings.Contains(got, want) {
			t.Errorf("flash %q, want it to contain %q", got, want)
		}
		if doc.Find("#flash").HasClass("flash-error") != isErr {
			t.Errorf("flash %q: error style %v, want %v", got, !isErr, isErr)
		}
		if _, again := c.page("/cart"); again.Find("#flash").Length() != 0 {
			t.Errorf("the flash showed twice")
		}
	}

	t.Run("add", func(t *testing.T) {
		post(t, "/cart/add", url.Values{"product_id": {"parable-of-the-sower"}, "quantity": {"2"}})
		flash(t, "Added 2 × Parable of the Sower", false)
		_, doc := c.page("/cart")
		if text(t, doc, "#cart-count") != "2" || text(t, doc, "#cart-subtotal") != "$33.98" {
			t.Errorf("header: %q items, %q", text(t, doc, "#cart-count"), text(t, doc, "#cart-subtotal"))
		}
		if v, _ := doc.Find("#qty-parable-of-the-sower").Attr("value"); v != "2" {
			t.Errorf("quantity field %q, want 2", v)
		}
	})
	t.Run("over stock leaves a message", func(t *testing.T) {
		post(t, "/cart/add", url.Values{"product_id": {"parable-of-the-sower"}})
		flash(t, "Only 2 copies of Parable of the Sower are in stock.", true)
		if q := c.cart().quantity("parable-of-the-sower"); q != 2 {
			t.Errorf("quantity %d after a refused add, want 2", q)
		}
	})
	t.Run("out of stock", func(t *testing.T) {
		post(t, "/cart/add", url.Values{"product_id": {"mrs-dalloway"}})
		flash(t, "Mrs Dalloway is out of stock.", true)
	})
	t.Run("bad quantity", func(t *testing.T) {
		post(t, "/cart/add", url.Values{"product_id": {"dune"}, "quantity": {"two"}})
		flash(t, "whole number", true)
	})
	t.Run("unknown book", func(t *testing.T) {
		post(t, "/cart/add", url.Values{"product_id": {"no-such-book"}})
		flash(t, "no book", true)
	})
	t.Run("default quantity is 1", func(t *testing.T) {
		post(t, "/cart/add", url.Values{"product_id": {"dune"}})
		flash(t, "Added 1 × Dune", false)
	})
	t.Run("update", func(t *testing.T) {
		post(t, "/cart/update", url.Values{"product_id": {"dune"}, "quantity": {"4"}})
		flash(t, "Dune: quantity set to 4", false)
		if got := lines(c.cart()); got != "parable-of-the-sower:2,dune:4" {
			t.Errorf("cart %q", got)
		}
	})
	t.Run("update to 0 removes", func(t *testing.T) {
		post(t, "/cart/update", url.Values{"product_id": {"parable-of-the-sower"}, "quantity": {"0"}})
		flash(t, "Removed Parable of the Sower", false)
		if got := lines(c.cart()); got != "dune:4" {
			t.Errorf("cart %q", got)
		}
	})
	t.Run("remove", func(t *testing.T) {
		post(t, "/cart/add", url.Values{"product_id": {"kindred"}})
		post(t, "/cart/remove", url.Values{"product_id": {"dune"}})
		flash(t, "Removed Dune", false)
		if got := lines(c.cart()); got != "kindred:1" {
			t.Errorf("cart %q", got)
		}
	})
	t.Run("clear", func(t *testing.T) {
		post(t, "/cart/clear", url.Values{})
		flash(t, "Your cart is now empty", false)
		_, doc := c.page("/cart")
		if doc.Find("#cart-empty").Length() != 1 || text(t, doc, "#cart-count") != "0" {
			t.Errorf("the cart page does not show an empty cart")
		}
	})
}

func TestFormsNeedCSRF(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)
	_, doc := c.page("/")
	token := csrf(t, doc)
	c.form("/cart/add", url.Values{"csrf_token": {token}, "product_id": {"dune"}})
	before := c.cart()

	tests := []struct {
		name, path, token string
	}{
		{"add without token", "/cart/add", ""},
		{"add with a wrong token", "/cart/add", strings.Repeat("x", len(token))},
		{"update with a short token", "/cart/update", token[:10]},
		{"remove without token", "/cart/remove", ""},
		{"clear without token", "/cart/clear", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.form(tt.path, url.Values{"csrf_token": {tt.token}, "product_id": {"dune"}, "quantity": {"3"}})
			if res.status != http.StatusForbidden || res.setCookie != nil {
				t.Fatalf("status %d, Set-Cookie %v; want 403 and no cookie", res.status, res.setCookie)
			}
			if after := c.cart(); lines(after) != lines(before) || after.Visits != before.Visits {
				t.Errorf("the session changed: %q -> %q", lines(before), lines(after))
			}
		})
	}
	t.Run("another session's token", func(t *testing.T) {
		other := a.client(t)
		_, doc := other.page("/")
		res := c.form("/cart/clear", url.Values{"csrf_token": {csrf(t, doc)}})
		if res.status != http.StatusForbidden {
			t.Errorf("status %d, want 403", res.status)
		}
	})
	t.Run("no session at all", func(t *testing.T) {
		res := a.client(t).form("/cart/add", url.Values{"csrf_token": {token}, "product_id": {"dune"}})
		if res.status != http.StatusForbidden || res.setCookie != nil || a.store.Len() != 2 {
			t.Errorf("status %d, Set-Cookie %v, %d sessions; want 403, none, 2", res.status, res.setCookie, a.store.Len())
		}
	})
}

func TestTemplatesEscapeCatalogText(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	cat, err := catalog.Load(strings.NewReader(`{"currency":"USD","products":[
		{"id":"evil","title":"` + strings.ReplaceAll(evil, "/", `\/`) + `","author":"<b>Mallory</b>","price":100,"stock":5}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a := newTestApp(t, withCatalog(cat))
	c := a.client(t)
	_, doc := c.page("/")
	c.form("/cart/add", url.Values{"csrf_token": {csrf(t, doc)}, "product_id": {"evil"}})
	for _, path := range []string{"/", "/products/evil", "/cart"} {
		res, doc := c.page(path)
		if strings.Contains(string(res.body), evil) || strings.Contains(string(res.body), "<b>Mallory") {
			t.Errorf("%s: catalog text reached the page unescaped", path)
		}
		if doc.Find("script").Not(`[src="/static/app.js"]`).Length() != 0 {
			t.Errorf("%s: the page has a <script> element besides tote's own", path)
		}
		if !strings.Contains(doc.Find("main").Text(), evil) {
			t.Errorf("%s: the title is not shown as text", path)
		}
	}
}

func TestSecureCookie(t *testing.T) {
	c := newTestApp(t, withSecureCookie()).client(t)
	res, _ := c.page("/")
	if res.setCookie == nil || !res.setCookie.Secure {
		t.Errorf("COOKIE_SECURE=true: cookie %v is not Secure", res.setCookie)
	}
}
