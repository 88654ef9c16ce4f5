package main

import (
	"bufio"
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"tote/session"
)

// Cross-site requests, CSRF tokens, and several session cookies in one
// request.

// TestCSRFTokenNeverFromQuery: a form's CSRF token counts only in the form
// body or the X-CSRF-Token header; in the query string it is ignored.
func TestCSRFTokenNeverFromQuery(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)
	_, doc := c.page("/")
	token := csrf(t, doc)
	form := func(path string, body url.Values, headers ...string) *response {
		return c.do(http.MethodPost, path, body.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
	}
	before := c.cart()

	for _, path := range []string{"/cart/add?csrf_token=" + url.QueryEscape(token), "/cart/add?product_id=kindred&csrf_token=" + url.QueryEscape(token)} {
		res := form(path, url.Values{"product_id": {"dune"}})
		if res.status != http.StatusForbidden || res.setCookie != nil {
			t.Errorf("POST %s with the token in the query only: %d, Set-Cookie %v; want 403, none", path, res.status, res.setCookie)
		}
	}
	// A wrong token in the body is not made good by the right one in the
	// query.
	if res := form("/cart/add?csrf_token="+url.QueryEscape(token), url.Values{"product_id": {"dune"}, "csrf_token": {"wrong"}}); res.status != http.StatusForbidden {
		t.Errorf("a wrong token in the body, the right one in the query: %d, want 403", res.status)
	}
	if after := c.cart(); lines(after) != lines(before) || after.Visits != before.Visits {
		t.Fatalf("refused forms changed the session: %q, %d visits -> %q, %d visits", lines(before), before.Visits, lines(after), after.Visits)
	}

	// The token in X-CSRF-Token is taken.
	if res := form("/cart/add", url.Values{"product_id": {"dune"}}, "X-CSRF-Token", token); res.status != http.StatusSeeOther {
		t.Fatalf("the token in X-CSRF-Token: %d, want 303", res.status)
	}
	// The product is read from the body, never the query either.
	if res := form("/cart/add?product_id=kindred", url.Values{"product_id": {"dune"}, "csrf_token": {token}}); res.status != http.StatusSeeOther {
		t.Fatalf("the token in the body: %d, want 303", res.status)
	}
	// A multipart form carries it too.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf_token", token)
	mw.WriteField("product_id", "kindred")
	mw.Close()
	if res := c.do(http.MethodPost, "/cart/add?product_id=dune", body.String(), "Content-Type", mw.FormDataContentType()); res.status != http.StatusSeeOther {
		t.Fatalf("a multipart form with its token: %d, want 303", res.status)
	}
	if got := lines(c.cart()); got != "dune:2,kindred:1" {
		t.Errorf("after the accepted forms the cart is %q, want dune:2,kindred:1", got)
	}
}

// TestCrossSiteAPI: a POST, PUT or DELETE of the API from another site is
// 403 cross_site and changes nothing; same-origin requests, and requests
// with neither Sec-Fetch-Site nor Origin, pass; GET is never refused.
func TestCrossSiteAPI(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)
	host := strings.TrimPrefix(a.base, "http://")
	if res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":2}`); res.status != 200 {
		t.Fatal(res.status)
	}
	read := func() []byte { return c.do(http.MethodGet, "/api/cart", "").body }
	changes := []struct{ method, path, body string }{
		{http.MethodPost, "/api/cart/items", `{"product_id":"kindred"}`},
		{http.MethodPut, "/api/cart/items/dune", `{"quantity":5}`},
		{http.MethodDelete, "/api/cart/items/dune", ""},
		{http.MethodDelete, "/api/cart", ""},
	}
	otherPort := "http://127.0.0.1:1"
	if strings.HasSuffix(host, ":1") {
		otherPort = "http://127.0.0.1:2"
	}
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Sec-Fetch-Site", "cross-site", "Origin", "http://" + host},
		{"Origin", otherPort},
		{"Origin", "http://evil.example"},
		{"Origin", "https://localhost" + host[strings.LastIndex(host, ":"):]},
		{"Origin", "null"},
	} {
		for _, ch := range changes {
			before := read()
			res := c.do(ch.method, ch.path, ch.body, append([]string{"Content-Type", "application/json"}, h...)...)
			if res.status != http.StatusForbidden || res.errorCode(t) != "cross_site" {
				t.Errorf("%s %s with %q: %d %s; want 403 cross_site", ch.method, ch.path, h, res.status, res.body)
			}
			if after := read(); !bytes.Equal(before, after) {
				t.Errorf("%s %s with %q changed the cart", ch.method, ch.path, h)
			}
		}
	}
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "same-origin"},
		{"Sec-Fetch-Site", "none"},
		{"Origin", "http://" + host},
		{"Sec-Fetch-Site", "same-origin", "Origin", "http://evil.example"}, // Sec-Fetch-Site decides
		nil,
	} {
		if res := c.do(http.MethodPost, "/api/cart/items", `{"product_id":"kindred"}`, append([]string{"Content-Type", "application/json"}, h...)...); res.status != 200 {
			t.Errorf("POST with %q: %d %s; want 200", h, res.status, res.body)
		}
		if res := c.do(http.MethodDelete, "/api/cart/items/kindred", "", h...); res.status != 200 {
			t.Errorf("DELETE with %q: %d %s; want 200", h, res.status, res.body)
		}
	}
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "http://evil.example"}} {
		for _, path := range []string{"/api/cart", "/api/products", "/api/products/dune"} {
			if res := c.do(http.MethodGet, path, "", h...); res.status != 200 {
				t.Errorf("GET %s with %q: %d; want 200", path, h, res.status)
			}
		}
	}
}

// TestSeveralSessionCookies: of several session_id cookies, the first
// well-formed one is the session: a malformed one before it never hides
// it.
func TestSeveralSessionCookies(t *testing.T) {
	a := newTestApp(t)
	one, two := a.client(t), a.client(t)
	one.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
	two.json(http.MethodPost, "/api/cart/items", `{"product_id":"kindred"}`)
	cartWith := func(t *testing.T, cookie string) string {
		t.Helper()
		res := a.client(t).do(http.MethodGet, "/api/cart", "", "Cookie", cookie)
		var got cartJSON
		res.decode(t, &got)
		return lines(got)
	}
	unknown := session.NewID()
	live := one.cookie

	t.Run("a malformed cookie never hides the live one", func(t *testing.T) {
		for _, junk := range []string{
			"session_id=junk", "session_id=", `session_id="` + live[:10] + `"`, "session_id=" + live + "x",
			"session_id=" + strings.Repeat("!", len(live)), "session_id=" + live[:len(live)-1] + ".",
			`session_id=a"b`, `session_id=\` + live,
		} {
			for _, cookie := range []string{junk + "; session_id=" + live, "other=1; " + junk + "; session_id=" + live + "; x=y"} {
				if got := cartWith(t, cookie); got != "dune:1" {
					t.Errorf("Cookie: %s: cart %q, want the live session's dune:1", cookie, got)
				}
			}
		}
	})
	t.Run("of two well-formed cookies the first wins, even an unknown one", func(t *testing.T) {
		for cookie, want := range map[string]string{
			"session_id=" + one.cookie + "; session_id=" + two.cookie:                  "dune:1",
			"session_id=" + two.cookie + "; session_id=" + one.cookie:                  "kindred:1",
			"session_id=junk; session_id=" + two.cookie + "; session_id=" + one.cookie: "kindred:1",
			"session_id=" + unknown + "; session_id=" + one.cookie:                     "",
		} {
			if got := cartWith(t, cookie); got != want {
				t.Errorf("Cookie: %s: cart %q, want %q", cookie, got, want)
			}
		}
	})
	t.Run("a change goes to the live session", func(t *testing.T) {
		res := a.client(t).do(http.MethodPost, "/api/cart/items", `{"product_id":"beloved"}`, "Content-Type", "application/json", "Cookie", "session_id=junk; session_id="+live)
		if res.status != 200 || res.setCookie == nil || res.setCookie.Value != live {
			t.Fatalf("an add with a junk cookie before the live one: %d, Set-Cookie %v; want 200 renewing the live id", res.status, res.setCookie)
		}
		if got := lines(one.cart()); got != "dune:1,beloved:1" {
			t.Errorf("the live session's cart is %q, want dune:1,beloved:1", got)
		}
		if n := a.store.Len(); n != 2 {
			t.Errorf("the store holds %d sessions, want the 2 it had", n)
		}
	})
}

// cookieRequest parses a GET with the given Cookie headers as the server
// does, and returns it in a Fiber context; ok is false when the headers
// are not a valid request.
func cookieRequest(app *fiber.App, cookies ...string) (*fiber.Ctx, bool) {
	var raw strings.Builder
	raw.WriteString("GET / HTTP/1.1\r\nHost: tote\r\n")
	for _, v := range cookies {
		raw.WriteString("Cookie: " + v + "\r\n")
	}
	raw.WriteString("\r\n")
	fctx := &fasthttp.RequestCtx{}
	if err := fctx.Request.Header.Read(bufio.NewReader(strings.NewReader(raw.String()))); err != nil {
		return nil, false
	}
	return app.AcquireCtx(fctx), true
}

// firstSessionCookie is the rule of sessionID, written out: the first
// cookie, across the Cookie headers in order, named session_id whose
// value (without the spaces and tabs around it, and without a pair of
// double quotes around it) is a well-formed id.
func firstSessionCookie(headers []string) string {
	for _, h := range headers {
		h = strings.Trim(h, " \t")
		for _, part := range strings.Split(h, ";") {
			k, v, ok := strings.Cut(part, "=")
			if !ok || strings.Trim(k, " \t") != cookieName {
				continue
			}
			v = strings.Trim(v, " \t")
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if session.ValidID(v) {
				return v
			}
		}
	}
	return ""
}

// FuzzSessionCookie: over arbitrary Cookie headers, sessionID returns ""
// or a well-formed id that appears in them, and it is the first
// well-formed session_id cookie.
func FuzzSessionCookie(f *testing.F) {
	id1, id2 := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-"
	for _, s := range [][2]string{
		{"session_id=" + id1, ""},
		{"session_id=junk; session_id=" + id1, ""},
		{"session_id=" + id1 + "; session_id=" + id2, ""},
		{"session_id=junk", "session_id=" + id2},
		{` session_id = "` + id1 + `" ; a=b`, ""},
		{"session_id=" + id1 + "x;session_id=" + id2, ""},
		{`session_id="` + id1, `session_id=a"b; session_id=` + id2},
		{"SESSION_ID=" + id1, "session_id"},
		{"a=b;;; =session_id=" + id1 + ";session_id\t=\t" + id2, ""},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	app := fiber.New()
	f.Fuzz(func(t *testing.T, a, b string) {
		headers := []string{a}
		if b != "" {
			headers = append(headers, b)
		}
		c, ok := cookieRequest(app, headers...)
		if !ok {
			return
		}
		defer app.ReleaseCtx(c)
		got := sessionID(c)
		if got != "" && (!session.ValidID(got) || !strings.Contains(a+"\n"+b, got)) {
			t.Fatalf("sessionID(%q) = %q: not a well-formed id of the header", headers, got)
		}
		if want := firstSessionCookie(headers); got != want {
			t.Fatalf("sessionID(%q) = %q, want the first well-formed session_id %q", headers, got, want)
		}
	})
}
