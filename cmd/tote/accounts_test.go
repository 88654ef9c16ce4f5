package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"tote/account"
	"tote/catalog"
	"tote/session"
	"tote/session/redisstore/redistest"
)

// The passwords of the tests: long enough, not common, and distinctive
// enough to be found if they leak into an answer, a page, the log or the
// store.
const (
	alicePassword = "tote-Sesame-2468"
	newPassword   = "tote-Sesame-1357"
)

// creds is the body of a sign-up or login.
func creds(user, password string) string {
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	return string(b)
}

// signUp signs c up through the API and fails tb on anything but 201.
func signUp(tb testing.TB, c *client, user, password string) *response {
	tb.Helper()
	res := c.json(http.MethodPost, "/api/account", creds(user, password))
	if res.status != http.StatusCreated {
		tb.Fatalf("sign-up of %s: %d %s", user, res.status, res.body)
	}
	return res
}

// logIn logs c in through the API, fails tb on anything but 200, and
// returns the Cart it answered.
func logIn(tb testing.TB, c *client, user, password string) cartJSON {
	tb.Helper()
	res := c.json(http.MethodPost, "/api/login", creds(user, password))
	if res.status != http.StatusOK {
		tb.Fatalf("login of %s: %d %s", user, res.status, res.body)
	}
	var out cartJSON
	res.decode(tb, &out)
	return out
}

// userOf returns a Cart's user, "" for a guest (null).
func userOf(c cartJSON) string {
	if c.User == nil {
		return ""
	}
	return *c.User
}

// wantGuest fails tb unless c is an empty guest cart with visits.
func wantGuest(tb testing.TB, c cartJSON, visits int64) {
	tb.Helper()
	if c.User != nil || len(c.Items) != 0 || c.Visits != visits {
		tb.Errorf("cart %q of user %q with %d visits; want an empty guest cart with %d visits", lines(c), userOf(c), c.Visits, visits)
	}
}

// add adds quantity copies of product to c's cart through the API.
func add(tb testing.TB, c *client, product string, quantity int) cartJSON {
	tb.Helper()
	res := c.json(http.MethodPost, "/api/cart/items", fmt.Sprintf(`{"product_id":%q,"quantity":%d}`, product, quantity))
	if res.status != http.StatusOK {
		tb.Fatalf("adding %d × %s: %d %s", quantity, product, res.status, res.body)
	}
	var out cartJSON
	res.decode(tb, &out)
	return out
}

// asOf returns a copy of c with another session cookie: the same browser
// before a change gave it a new id.
func asOf(c *client, cookie string) *client {
	cc := *c
	cc.cookie = cookie
	return &cc
}

// persistent reports whether a cookie outlives the browser.
func persistent(ck *http.Cookie) bool { return ck != nil && ck.MaxAge > 0 }

// browserSession reports whether a cookie ends with the browser: neither
// Max-Age nor Expires.
func browserSession(ck *http.Cookie) bool { return ck != nil && ck.MaxAge == 0 && ck.RawExpires == "" }

// clearedCookie reports whether a Set-Cookie tells the browser to drop
// the session cookie.
func clearedCookie(ck *http.Cookie) bool {
	return ck != nil && ck.Value == "" && (ck.MaxAge < 0 || !ck.Expires.IsZero() && ck.Expires.Before(time.Now()))
}

// metric returns the value of a series of GET /metrics, such as
// `tote_logins_total{result="success"}`.
func metric(tb testing.TB, base, series string) float64 {
	tb.Helper()
	res := (&client{tb: tb, base: base}).do(http.MethodGet, "/metrics", "")
	for _, line := range strings.Split(string(res.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	tb.Fatalf("/metrics has no series %s", series)
	return 0
}

// wantNoStore checks the cache headers of an answer that reads or writes
// the session.
func wantNoStore(tb testing.TB, what string, res *response) {
	tb.Helper()
	if cc, vary := res.header.Get("Cache-Control"), res.header.Values("Vary"); cc != "no-store" || !strings.Contains(strings.Join(vary, ","), "Cookie") {
		tb.Errorf("%s: Cache-Control %q, Vary %q; want no-store and Cookie", what, cc, vary)
	}
}

// stockedCatalog is the catalog of deepStock: books for bursts of adds.
func stockedCatalog(tb testing.TB) *catalog.Catalog {
	tb.Helper()
	f, err := os.Open(deepStock(tb))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cat, err := catalog.Load(f)
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

func TestSignUpAPI(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)

	t.Run("a guest is not logged in", func(t *testing.T) {
		c := a.client(t)
		res := c.do(http.MethodGet, "/api/account", "")
		wantCode(t, res, http.StatusUnauthorized, "not_logged_in")
		if res.setCookie != nil {
			t.Errorf("GET /api/account of a guest set a cookie: %v", res.setCookie)
		}
	})

	t.Run("201 Account, logged in under a new id", func(t *testing.T) {
		c := a.client(t)
		add(t, c, "dune", 2)
		guestID := c.cookie
		before := time.Now().Add(-time.Second)
		res := signUp(t, c, "Alice", alicePassword)
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		wantNoStore(t, "the sign-up", res)
		var got accountJSON
		res.decode(t, &got)
		created, err := time.Parse(time.RFC3339, got.CreatedAt)
		if got.Username != "alice" || err != nil || !strings.HasSuffix(got.CreatedAt, "Z") || created.Before(before.Truncate(time.Second)) || created.After(time.Now()) {
			t.Errorf("Account %s; want username alice (lower-cased) and created_at now, RFC 3339 UTC", res.body)
		}
		if res.setCookie == nil || res.setCookie.Value == "" || res.setCookie.Value == guestID || !session.ValidID(res.setCookie.Value) {
			t.Fatalf("Set-Cookie %v; want a new session id (the guest's was %s)", res.setCookie, guestID)
		}
		if !persistent(res.setCookie) || !res.setCookie.HttpOnly || res.setCookie.Path != "/" || res.setCookie.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %v; want HttpOnly, SameSite=Lax, Path=/ and a Max-Age", res.setCookie)
		}
		me := c.do(http.MethodGet, "/api/account", "")
		if me.status != http.StatusOK || !bytes.Equal(me.body, res.body) {
			t.Errorf("GET /api/account: %d %s; want 200 %s", me.status, me.body, res.body)
		}
		if got := c.cart(); userOf(got) != "alice" || lines(got) != "dune:2" {
			t.Errorf("after the sign-up the cart is %q of %q; want the guest's dune:2, alice's", lines(got), userOf(got))
		}
		wantGuest(t, asOf(c, guestID).cart(), 0)
	})
}

// TestAccountAPIErrors checks each refusal of the account routes, and
// which one wins when a request has several faults.
func TestAccountAPIErrors(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	signUp(t, a.client(t), "alice", alicePassword)
	const json = "application/json"
	big := `{"username":"bob","password":"` + strings.Repeat("x", 4096) + `"}`
	tests := []struct {
		name         string
		method, path string
		body         string
		headers      []string // besides Content-Type: application/json
		status       int
		code         string
	}{
		{"malformed JSON", "POST", "/api/account", `{"username":"bob",`, nil, 400, "invalid_request"},
		{"an array", "POST", "/api/login", `["bob","secret"]`, nil, 400, "invalid_request"},
		{"no body", "POST", "/api/login", ``, nil, 400, "invalid_request"},
		{"username a number", "POST", "/api/account", `{"username":7,"password":"long enough pw"}`, nil, 400, "invalid_request"},
		{"password missing", "POST", "/api/account", `{"username":"bob"}`, nil, 400, "invalid_request"},
		{"password null", "POST", "/api/login", `{"username":"alice","password":null}`, nil, 400, "invalid_request"},
		{"key in the wrong case", "POST", "/api/login", `{"username":"alice","Password":"` + alicePassword + `"}`, nil, 400, "invalid_request"},
		{"duplicate key", "POST", "/api/login", `{"username":"alice","password":"x","password":"` + alicePassword + `"}`, nil, 400, "invalid_request"},
		{"remember a string", "POST", "/api/login", `{"username":"alice","password":"` + alicePassword + `","remember":"yes"}`, nil, 400, "invalid_request"},
		{"everywhere a string", "POST", "/api/logout", `{"everywhere":"yes"}`, nil, 400, "invalid_request"},
		{"username too short", "POST", "/api/account", creds("al", "long enough pw"), nil, 422, "invalid_username"},
		{"username too long", "POST", "/api/account", creds(strings.Repeat("a", 31), "long enough pw"), nil, 422, "invalid_username"},
		{"username with a space", "POST", "/api/account", creds("al ice", "long enough pw"), nil, 422, "invalid_username"},
		{"username with !", "POST", "/api/account", creds("alice!", "long enough pw"), nil, 422, "invalid_username"},
		{"username not ASCII", "POST", "/api/account", creds("ålice", "long enough pw"), nil, 422, "invalid_username"},
		{"password of 7", "POST", "/api/account", creds("bob", "7 chars"), nil, 422, "weak_password"},
		{"password of 129", "POST", "/api/account", creds("bob", strings.Repeat("p", 129)), nil, 422, "weak_password"},
		{"password = username", "POST", "/api/account", creds("bobbybobby", "BobbyBobby"), nil, 422, "weak_password"},
		{"common password", "POST", "/api/account", creds("bob", "baseball"), nil, 422, "weak_password"},
		{"common password, other case", "POST", "/api/account", creds("bob", "FOOTBALL"), nil, 422, "weak_password"},
		{"username taken", "POST", "/api/account", creds("alice", "another long pw"), nil, 409, "username_taken"},
		{"username taken, other case", "POST", "/api/account", creds("Alice", "another long pw"), nil, 409, "username_taken"},
		{"unknown username", "POST", "/api/login", creds("nobody", alicePassword), nil, 401, "invalid_credentials"},
		{"malformed username", "POST", "/api/login", creds("a!", alicePassword), nil, 401, "invalid_credentials"},
		{"wrong password", "POST", "/api/login", creds("alice", "not the password"), nil, 401, "invalid_credentials"},
		{"login Sec-Fetch-Site cross-site", "POST", "/api/login", creds("alice", alicePassword), []string{"Sec-Fetch-Site", "cross-site"}, 403, "cross_site"},
		{"login Sec-Fetch-Site same-site", "POST", "/api/login", creds("alice", alicePassword), []string{"Sec-Fetch-Site", "same-site"}, 403, "cross_site"},
		{"login Origin of another host", "POST", "/api/login", creds("alice", alicePassword), []string{"Origin", "http://evil.example"}, 403, "cross_site"},
		{"sign-up cross-site", "POST", "/api/account", creds("mallory", alicePassword), []string{"Sec-Fetch-Site", "cross-site"}, 403, "cross_site"},
		{"logout cross-site", "POST", "/api/logout", ``, []string{"Sec-Fetch-Site", "cross-site"}, 403, "cross_site"},
		{"password change cross-site", "PUT", "/api/account/password", `{}`, []string{"Sec-Fetch-Site", "cross-site"}, 403, "cross_site"},
		{"deletion cross-site", "DELETE", "/api/account", `{}`, []string{"Origin", "http://evil.example"}, 403, "cross_site"},
		{"login as text/plain", "POST", "/api/login", creds("alice", alicePassword), []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"sign-up as a form", "POST", "/api/account", "username=bob&password=long+enough+pw", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"sign-up of 4097 bytes", "POST", "/api/account", big[:4097-2] + `"}`, nil, 413, "payload_too_large"},
		{"password change of a guest", "PUT", "/api/account/password", `{"current_password":"` + alicePassword + `","new_password":"` + newPassword + `"}`, nil, 401, "not_logged_in"},
		{"deletion by a guest", "DELETE", "/api/account", `{"password":"` + alicePassword + `"}`, nil, 401, "not_logged_in"},

		// Precedence: the first failure of cross-site, size, type, shape,
		// username, password, uniqueness wins.
		{"size before type", "POST", "/api/account", big, []string{"Content-Type", "text/plain"}, 413, "payload_too_large"},
		{"type before shape", "POST", "/api/login", `{"username":`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"shape before username", "POST", "/api/account", `{"username":"a!","password":8}`, nil, 400, "invalid_request"},
		{"username before password", "POST", "/api/account", creds("a!", "short"), nil, 422, "invalid_username"},
		{"password before taken", "POST", "/api/account", creds("alice", "short"), nil, 422, "weak_password"},
		{"shape before credentials", "POST", "/api/login", `{"username":"alice","password":"wrong password","remember":1}`, nil, 400, "invalid_request"},
	}
	var messages sync.Map // code -> message, for the one-message check
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := a.client(t)
			headers := append([]string{"Content-Type", json}, tt.headers...)
			res := c.do(tt.method, tt.path, tt.body, headers...)
			wantCode(t, res, tt.status, tt.code)
			if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if res.setCookie != nil {
				t.Errorf("a refused request set a cookie: %v", res.setCookie)
			}
			if tt.code == "invalid_credentials" {
				var e errorBody
				res.decode(t, &e)
				if m, loaded := messages.LoadOrStore(tt.code, e.Error.Message); loaded && m != e.Error.Message {
					t.Errorf("message %q; another refused login said %q: one message for an unknown username and a wrong password", e.Error.Message, m)
				}
			}
		})
	}

	t.Run("cross-site before size", func(t *testing.T) {
		res := a.client(t).do(http.MethodPost, "/api/account", big, "Content-Type", json, "Sec-Fetch-Site", "cross-site")
		wantCode(t, res, http.StatusForbidden, "cross_site")
	})
	t.Run("nothing refused made an account", func(t *testing.T) {
		for _, name := range []string{"bob", "mallory", "bobbybobby", "al ice"} {
			res := a.client(t).json(http.MethodPost, "/api/login", creds(name, "long enough pw"))
			wantCode(t, res, http.StatusUnauthorized, "invalid_credentials")
		}
	})
	t.Run("same-origin requests pass", func(t *testing.T) {
		c := a.client(t)
		host := strings.TrimPrefix(a.base, "http://")
		for _, h := range [][]string{{"Sec-Fetch-Site", "same-origin"}, {"Origin", "http://" + host}, {"Sec-Fetch-Site", "none"}} {
			res := c.do(http.MethodPost, "/api/login", creds("alice", alicePassword), "Content-Type", json, h[0], h[1])
			if res.status != http.StatusOK {
				t.Errorf("login with %s: %s: %d %s", h[0], h[1], res.status, res.body)
			}
		}
	})
}

// TestLoginAPI: 200 Cart with "user", the guest's cart merged in, the
// visits carried over.
func TestLoginAPI(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	signUp(t, a.client(t), "alice", alicePassword)
	c := a.client(t)
	c.page("/")
	c.page("/cart")
	add(t, c, "kindred", 1)
	res := c.json(http.MethodPost, "/api/login", creds("ALICE", alicePassword))
	if res.status != http.StatusOK {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	var raw map[string]any
	res.decode(t, &raw)
	for _, k := range []string{"items", "item_count", "subtotal", "currency", "visits", "user", "expires_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("the login's Cart lacks %q: %s", k, res.body)
		}
	}
	if n, ok := raw["notices"]; ok && len(n.([]any)) != 0 {
		t.Errorf("notices %v for a merge that cut nothing", n)
	}
	var got cartJSON
	res.decode(t, &got)
	if userOf(got) != "alice" || lines(got) != "kindred:1" || got.Visits != 2 || got.ItemCount != 1 || got.Subtotal != 1599 {
		t.Errorf("login answered %s; want alice's cart with kindred:1 and 2 visits", res.body)
	}
	if res.header.Get("ETag") == "" {
		t.Error("the login's Cart has no ETag")
	}
	wantNoStore(t, "the login", res)
}

// TestLoginRotatesSession: a login and a sign-up give the browser a new
// session id; the old one then loads nothing, the CSRF token is new and
// the visits carry over.
func TestLoginRotatesSession(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	signUp(t, a.client(t), "alice", alicePassword)
	for _, tt := range []struct {
		name  string
		enter func(t *testing.T, c *client) *response
	}{
		{"login", func(t *testing.T, c *client) *response {
			return c.json(http.MethodPost, "/api/login", creds("alice", alicePassword))
		}},
		{"sign-up", func(t *testing.T, c *client) *response { return signUp(t, c, "bob", alicePassword) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := a.client(t)
			c.page("/cart")
			_, doc := c.page("/")
			before := csrf(t, doc)
			add(t, c, "beloved", 1)
			old := c.cookie
			res := tt.enter(t, c)
			if res.status >= 300 || res.setCookie == nil || res.setCookie.Value == old || !session.ValidID(c.cookie) {
				t.Fatalf("%d, Set-Cookie %v; want a new session id in place of %s", res.status, res.setCookie, old)
			}
			if _, found, err := a.store.Get(context.Background(), session.Key(old)); err != nil || found {
				t.Errorf("the store still holds the old session (found %v, %v)", found, err)
			}
			wantGuest(t, asOf(c, old).cart(), 0)
			if res := asOf(c, old).do(http.MethodGet, "/api/account", ""); res.status != http.StatusUnauthorized {
				t.Errorf("GET /api/account with the old id: %d, want 401", res.status)
			}
			_, doc = c.page("/")
			if after := csrf(t, doc); after == before {
				t.Errorf("the CSRF token %s did not change at the %s", after, tt.name)
			}
			if got := text(t, doc, "#visit-count"); got != "3 times" {
				t.Errorf("#visit-count %q after 2 visits as a guest and 1 logged in; want 3 times", got)
			}
			if got := c.cart(); userOf(got) == "" || got.quantity("beloved") != 1 {
				t.Errorf("cart %q of %q", lines(got), userOf(got))
			}
		})
	}
}

// TestRememberMe: remember:false gives a cookie without Max-Age/Expires,
// on the login and on every later save; true or absent gives a Max-Age.
func TestRememberMe(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	for _, tt := range []struct {
		name, remember string // the JSON member, or "" for none
		persistent     bool
	}{
		{"absent", "", true},
		{"true", `,"remember":true`, true},
		{"null", `,"remember":null`, true},
		{"false", `,"remember":false`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := a.client(t)
			check := func(what string, ck *http.Cookie) {
				t.Helper()
				if ck == nil {
					t.Fatalf("%s set no cookie", what)
				}
				if tt.persistent && (!persistent(ck) || ck.MaxAge < 336*3600-5) {
					t.Errorf("%s: cookie Max-Age %d Expires %q; want the session's lifetime (336h)", what, ck.MaxAge, ck.RawExpires)
				}
				if !tt.persistent && !browserSession(ck) {
					t.Errorf("%s: cookie Max-Age %d Expires %q; want neither: it ends with the browser", what, ck.MaxAge, ck.RawExpires)
				}
			}
			user := "remember-" + tt.name
			signUp(t, a.client(t), user, alicePassword)
			res := c.json(http.MethodPost, "/api/login", `{"username":"`+user+`","password":"`+alicePassword+`"`+tt.remember+`}`)
			if res.status != http.StatusOK {
				t.Fatalf("login: %d %s", res.status, res.body)
			}
			check("the login", res.setCookie)
			page, _ := c.page("/")
			check("a page view", page.setCookie)
			add(t, c, "dune", 1) // changes the account, not the session: no cookie
			page, _ = c.page("/cart")
			check("a second page view", page.setCookie)
			res = c.json(http.MethodPut, "/api/account/password", `{"current_password":"`+alicePassword+`","new_password":"`+newPassword+`"}`)
			if res.status != http.StatusNoContent {
				t.Fatalf("password change: %d %s", res.status, res.body)
			}
			check("a password change (a new id)", res.setCookie)
			page, _ = c.page("/")
			check("a page view after it", page.setCookie)
			if got := c.cart(); got.ExpiresAt == nil {
				t.Error("expires_at is null: on the server the session lives SESSION_TTL all the same")
			}
		})
	}
}

// TestLogoutAPI: the session is deleted, the cookie cleared, the browser
// a guest with fresh visits, and the account keeps its cart.
func TestLogoutAPI(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	c := a.client(t)
	c.page("/")
	signUp(t, c, "alice", alicePassword)
	add(t, c, "dune", 2)
	old := c.cookie
	logouts := metric(t, a.base, "tote_logouts_total")

	res := c.do(http.MethodPost, "/api/logout", "")
	if res.status != http.StatusNoContent || len(res.body) != 0 {
		t.Fatalf("logout: %d %q, want 204 without a body", res.status, res.body)
	}
	if !clearedCookie(res.setCookie) {
		t.Errorf("Set-Cookie %v; want the cookie cleared (Max-Age=0, or Expires in the past)", res.setCookie)
	}
	wantNoStore(t, "the logout", res)
	if _, found, _ := a.store.Get(context.Background(), session.Key(old)); found {
		t.Error("the store still holds the session after the logout")
	}
	wantGuest(t, asOf(c, old).cart(), 0)
	if res := asOf(c, old).do(http.MethodGet, "/api/account", ""); res.status != http.StatusUnauthorized {
		t.Errorf("GET /api/account with the old id: %d", res.status)
	}
	if got := metric(t, a.base, "tote_logouts_total"); got != logouts+1 {
		t.Errorf("tote_logouts_total %v, want %v", got, logouts+1)
	}
	if _, doc := c.page("/"); text(t, doc, "#visit-count") != "1 time" {
		t.Errorf("after the logout: %q, want a fresh count of 1", text(t, doc, "#visit-count"))
	}
	if got := logIn(t, c, "alice", alicePassword); lines(got) != "dune:2" {
		t.Errorf("logged in again: %q, want the account's dune:2", lines(got))
	}

	t.Run("a guest's logout", func(t *testing.T) {
		g := a.client(t)
		add(t, g, "dune", 1)
		old := g.cookie
		before := metric(t, a.base, "tote_logouts_total")
		res := g.json(http.MethodPost, "/api/logout", `{}`)
		if res.status != http.StatusNoContent || !clearedCookie(res.setCookie) {
			t.Errorf("%d, Set-Cookie %v", res.status, res.setCookie)
		}
		wantGuest(t, asOf(g, old).cart(), 0)
		if got := metric(t, a.base, "tote_logouts_total"); got != before {
			t.Errorf("a guest's logout counted as a logout: %v -> %v", before, got)
		}
	})
}

// TestLoginThrottle: 10 failed logins for a username within the window
// make the next ones 429 with Retry-After, even with the right password;
// other usernames are not affected.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	signUp(t, a.client(t), "alice", alicePassword)
	signUp(t, a.client(t), "bob", alicePassword)
	throttled := metric(t, a.base, `tote_logins_total{result="throttled"}`)
	for i := range account.MaxFailures {
		res := a.client(t).json(http.MethodPost, "/api/login", creds("alice", fmt.Sprintf("wrong password %d", i)))
		wantCode(t, res, http.StatusUnauthorized, "invalid_credentials")
	}
	for _, tt := range []struct{ name, body string }{
		{"right password", creds("alice", alicePassword)},
		{"other case", creds("ALICE", alicePassword)},
		{"wrong password", creds("alice", "wrong again")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := a.client(t).json(http.MethodPost, "/api/login", tt.body)
			wantCode(t, res, http.StatusTooManyRequests, "too_many_attempts")
			ra, err := strconv.Atoi(res.header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > int(account.FailureWindow/time.Second)+1 {
				t.Errorf("Retry-After %q; want seconds until the 15-minute window passes", res.header.Get("Retry-After"))
			}
			if res.setCookie != nil {
				t.Errorf("a throttled login set a cookie")
			}
		})
	}
	if got := metric(t, a.base, `tote_logins_total{result="throttled"}`); got != throttled+3 {
		t.Errorf(`tote_logins_total{result="throttled"} %v, want %v`, got, throttled+3)
	}
	t.Run("other usernames log in", func(t *testing.T) {
		logIn(t, a.client(t), "bob", alicePassword)
	})
	t.Run("unknown usernames count too", func(t *testing.T) {
		for range account.MaxFailures {
			a.client(t).json(http.MethodPost, "/api/login", creds("nobody", alicePassword))
		}
		wantCode(t, a.client(t).json(http.MethodPost, "/api/login", creds("nobody", alicePassword)), http.StatusTooManyRequests, "too_many_attempts")
	})
}

// TestLoginMerge: at login the account's lines come first, in order, then
// the guest's new lines; a product in both gets the sum; what the limits
// cut is in "notices"; the guest session's cart is gone.
func TestLoginMerge(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withCatalog(fullCatalog(t)))
	type line struct {
		id  string
		qty int
	}
	var fortyNine []line
	for i := range 49 {
		fortyNine = append(fortyNine, line{fmt.Sprintf("book-%d", i), 1})
	}
	want49 := ""
	for _, l := range fortyNine {
		want49 += l.id + ":1,"
	}
	tests := []struct {
		name           string
		account, guest []line
		want           string
		notices        []string // each a notice's text
	}{
		{"order and sums", []line{{"dune", 1}, {"kindred", 2}}, []line{{"beloved", 1}, {"dune", 2}, {"jane-eyre", 1}},
			"dune:3,kindred:2,beloved:1,jane-eyre:1", nil},
		{"empty guest cart", []line{{"dune", 1}}, nil, "dune:1", nil},
		{"empty account cart", nil, []line{{"kindred", 1}, {"dune", 1}}, "kindred:1,dune:1", nil},
		{"stock", []line{{"parable-of-the-sower", 1}, {"invisible-cities", 1}}, []line{{"parable-of-the-sower", 2}, {"invisible-cities", 1}},
			"parable-of-the-sower:2,invisible-cities:1", []string{
				"Only 2 copies of Parable of the Sower are in stock; your cart has 2.",
				"Only 1 copy of Invisible Cities is in stock; your cart has 1.",
			}},
		{"99 per line", []line{{"book-0", 60}}, []line{{"book-0", 60}}, "book-0:99",
			[]string{"A cart can hold at most 99 copies of Book 0; your cart has 99."}},
		{"50 lines", fortyNine, []line{{"book-49", 1}, {"dune", 1}, {"book-0", 1}, {"kindred", 1}},
			strings.Replace(want49, "book-0:1,", "book-0:2,", 1) + "book-49:1",
			[]string{"A cart can hold at most 50 different books, so these were not added: Dune, Kindred."}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := fmt.Sprintf("merger-%d", i)
			owner := a.client(t)
			signUp(t, owner, user, alicePassword)
			for _, l := range tt.account {
				add(t, owner, l.id, l.qty)
			}
			g := a.client(t)
			for _, l := range tt.guest {
				add(t, g, l.id, l.qty)
			}
			guestID := g.cookie
			got := logIn(t, g, user, alicePassword)
			if lines(got) != tt.want {
				t.Errorf("merged cart %q, want %q", lines(got), tt.want)
			}
			if strings.Join(got.Notices, "\n") != strings.Join(tt.notices, "\n") {
				t.Errorf("notices %q, want %q", got.Notices, tt.notices)
			}
			if o := owner.cart(); lines(o) != tt.want {
				t.Errorf("the account's other session sees %q, want %q", lines(o), tt.want)
			}
			if guestID != "" {
				wantGuest(t, asOf(g, guestID).cart(), 0)
				if _, found, _ := a.store.Get(context.Background(), session.Key(guestID)); found {
					t.Error("the guest session is still stored")
				}
			}
			if c := g.cart(); c.Notices != nil {
				t.Errorf("notices %q outside a login's answer", c.Notices)
			}
		})
	}
}

// TestLogoutNoResurrection: requests of a session in flight while it is
// logged out never write it back.
func TestLogoutNoResurrection(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name  string
		start func(t *testing.T) (base string, holds func(id string) bool)
	}{
		{"memory", func(t *testing.T) (string, func(string) bool) {
			a := newTestApp(t, withCatalog(stockedCatalog(t)))
			return a.base, func(id string) bool {
				_, found, err := a.store.Get(context.Background(), session.Key(id))
				if err != nil {
					t.Fatal(err)
				}
				return found
			}
		}},
		{"file", func(t *testing.T) (string, func(string) bool) {
			in := startTote(t, map[string]string{"DATA_DIR": t.TempDir(), "CATALOG_FILE": deepStock(t), "NEW_SESSIONS_PER_IP": "0"})
			return in.base, nil
		}},
	}
	for _, st := range stores {
		for _, loggedIn := range []bool{true, false} {
			name := st.name + map[bool]string{true: ", logged in", false: ", guest"}[loggedIn]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				base, holds := st.start(t)
				c := &client{tb: t, base: base}
				if loggedIn {
					signUp(t, c, "alice", alicePassword)
				}
				_, doc := c.page("/")
				token := csrf(t, doc)
				add(t, c, "dune", 1)
				id := c.cookie

				var wg sync.WaitGroup
				stop := make(chan struct{})
				var answered [4]atomic.Int64
				requests := []func() *http.Request{
					func() *http.Request { r, _ := http.NewRequest(http.MethodGet, base+"/", nil); return r },
					func() *http.Request { r, _ := http.NewRequest(http.MethodGet, base+"/cart", nil); return r },
					func() *http.Request {
						r, _ := http.NewRequest(http.MethodPost, base+"/cart/add", strings.NewReader("product_id=dune&csrf_token="+token))
						r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
						return r
					},
					func() *http.Request {
						r, _ := http.NewRequest(http.MethodPost, base+"/api/cart/items", strings.NewReader(`{"product_id":"pride-and-prejudice"}`))
						r.Header.Set("Content-Type", "application/json")
						return r
					},
				}
				for i := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							select {
							case <-stop:
								return
							default:
							}
							req := requests[i%len(requests)]()
							req.AddCookie(&http.Cookie{Name: cookieName, Value: id})
							res, err := httpClient.Do(req)
							if err != nil {
								t.Error(err)
								return
							}
							io.Copy(io.Discard, res.Body)
							res.Body.Close()
							answered[i%len(requests)].Add(1)
						}
					}()
				}
				time.Sleep(150 * time.Millisecond)
				res := c.do(http.MethodPost, "/api/logout", "")
				time.Sleep(250 * time.Millisecond)
				close(stop)
				wg.Wait()
				if res.status != http.StatusNoContent {
					t.Fatalf("logout: %d %s", res.status, res.body)
				}
				if holds != nil && holds(id) {
					t.Error("the store holds the logged-out session again: a request in flight wrote it back")
				}
				wantGuest(t, asOf(c, id).cart(), 0)
				t.Logf("requests of the session around its logout: %d pages, %d carts, %d form adds, %d API adds",
					answered[0].Load(), answered[1].Load(), answered[2].Load(), answered[3].Load())
			})
		}
	}
}

// burstSessions sends n concurrent requests spread over the sessions
// (cookies) and the instances (bases), and returns how many got each
// status.
func burstSessions(t *testing.T, cookies, bases []string, n int, method, path, body string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(method, bases[i%len(bases)]+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.AddCookie(&http.Cookie{Name: cookieName, Value: cookies[(i/len(bases))%len(cookies)]})
			<-start
			res, err := httpClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			mu.Lock()
			statuses[res.StatusCode]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}

// deployment is tote on one store: one instance, or several sharing it.
type deployment struct {
	name  string
	start func(t *testing.T) []string // the instances' base URLs
}

func deployments() []deployment {
	env := func(t *testing.T, kv ...string) map[string]string {
		m := map[string]string{"CATALOG_FILE": deepStock(t), "NEW_SESSIONS_PER_IP": "0"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []deployment{
		{"memory", func(t *testing.T) []string {
			return []string{startTote(t, env(t, "SESSION_STORE", "memory")).base}
		}},
		{"file", func(t *testing.T) []string {
			return []string{startTote(t, env(t, "DATA_DIR", t.TempDir())).base}
		}},
		{"redis", func(t *testing.T) []string {
			return []string{startTote(t, env(t, "REDIS_URL", redistest.Start(t).URL())).base}
		}},
		{"two instances on one redis", func(t *testing.T) []string {
			url := redistest.Start(t).URL()
			return []string{startTote(t, env(t, "REDIS_URL", url)).base, startTote(t, env(t, "REDIS_URL", url)).base}
		}},
	}
}

// TestAccountsOnEveryStore runs the rules of accounts that involve
// several sessions on each store, and across two instances on one Redis:
// the shared cart, the ends of sessions, the sign-up race, the throttle.
func TestAccountsOnEveryStore(t *testing.T) {
	t.Parallel()
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			bases := d.start(t)
			// first and last are new browsers, on two instances when
			// there are two.
			first := func(t *testing.T) *client { return &client{tb: t, base: bases[0]} }
			last := func(t *testing.T) *client { return &client{tb: t, base: bases[len(bases)-1]} }

			t.Run("the cart follows the account", func(t *testing.T) {
				a, b := first(t), last(t)
				signUp(t, a, "sharer", alicePassword)
				logIn(t, b, "sharer", alicePassword)
				add(t, a, "dune", 2)
				if got := b.cart(); lines(got) != "dune:2" || userOf(got) != "sharer" {
					t.Errorf("the other session sees %q of %q, want dune:2 of sharer", lines(got), userOf(got))
				}
				add(t, b, "pride-and-prejudice", 1)
				if res := b.json(http.MethodPut, "/api/cart/items/dune", `{"quantity":1}`); res.status != 200 {
					t.Fatalf("PUT: %d %s", res.status, res.body)
				}
				if got := a.cart(); lines(got) != "dune:1,pride-and-prejudice:1" {
					t.Errorf("the first session sees %q, want dune:1,pride-and-prejudice:1", lines(got))
				}
				b.do(http.MethodDelete, "/api/cart/items/pride-and-prejudice", "")

				for _, tt := range []struct {
					name string
					n    int
					all  bool
				}{{"10 adds", 10, true}, {"40 adds", 40, false}} {
					t.Run(tt.name, func(t *testing.T) {
						before := a.cart().quantity("dune")
						got := burstSessions(t, []string{a.cookie, b.cookie}, bases, tt.n, http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
						ok := got[200]
						if ok+got[409] != tt.n || tt.all && ok != tt.n {
							t.Errorf("statuses %v; want %s", got, map[bool]string{true: "all 200", false: "200 and 409 only"}[tt.all])
						}
						after := b.cart().quantity("dune")
						if after != before+ok {
							t.Errorf("%d adds answered 200 but dune went from %d to %d: updates were lost", ok, before, after)
						}
						t.Logf("%d concurrent adds from two sessions: %v", tt.n, got)
					})
				}
			})

			t.Run("a password change ends the other sessions", func(t *testing.T) {
				a, b, c := first(t), last(t), first(t)
				signUp(t, a, "changer", alicePassword)
				logIn(t, b, "changer", alicePassword)
				logIn(t, c, "changer", alicePassword)
				add(t, a, "dune", 1)
				wantCode(t, a.json(http.MethodPut, "/api/account/password", `{"current_password":"wrong password","new_password":"`+newPassword+`"}`), 401, "invalid_credentials")
				wantCode(t, a.json(http.MethodPut, "/api/account/password", `{"current_password":"`+alicePassword+`","new_password":"changer"}`), 422, "weak_password")
				wantCode(t, a.json(http.MethodPut, "/api/account/password", `{"current_password":"`+alicePassword+`"}`), 400, "invalid_request")
				old := a.cookie
				res := a.json(http.MethodPut, "/api/account/password", `{"current_password":"`+alicePassword+`","new_password":"`+newPassword+`"}`)
				if res.status != http.StatusNoContent {
					t.Fatalf("password change: %d %s", res.status, res.body)
				}
				if res.setCookie == nil || res.setCookie.Value == old || !persistent(res.setCookie) {
					t.Errorf("Set-Cookie %v; want a new id for the current session", res.setCookie)
				}
				wantNoStore(t, "the password change", res)
				if got := a.cart(); userOf(got) != "changer" || lines(got) != "dune:1" {
					t.Errorf("the current session: %q of %q", lines(got), userOf(got))
				}
				wantGuest(t, asOf(a, old).cart(), 0)
				wantGuest(t, b.cart(), 0)
				wantCode(t, c.do(http.MethodGet, "/api/account", ""), 401, "not_logged_in")
				// The ended session's change is a guest's: the account's
				// cart does not see it.
				add(t, b, "pride-and-prejudice", 1)
				wantCode(t, last(t).json(http.MethodPost, "/api/login", creds("changer", alicePassword)), 401, "invalid_credentials")
				if got := logIn(t, last(t), "changer", newPassword); lines(got) != "dune:1" {
					t.Errorf("logged in with the new password: %q, want dune:1", lines(got))
				}
			})

			t.Run("log out everywhere", func(t *testing.T) {
				a, b := first(t), last(t)
				signUp(t, a, "everywhere", alicePassword)
				logIn(t, b, "everywhere", alicePassword)
				add(t, b, "dune", 3)
				old := a.cookie
				res := a.json(http.MethodPost, "/api/logout", `{"everywhere":true}`)
				if res.status != http.StatusNoContent || !clearedCookie(res.setCookie) {
					t.Fatalf("logout everywhere: %d %s, Set-Cookie %v", res.status, res.body, res.setCookie)
				}
				wantGuest(t, asOf(a, old).cart(), 0)
				wantGuest(t, b.cart(), 0)
				if got := logIn(t, first(t), "everywhere", alicePassword); lines(got) != "dune:3" {
					t.Errorf("logged in again: %q, want the account's dune:3", lines(got))
				}
			})

			t.Run("deleting the account", func(t *testing.T) {
				a, b := first(t), last(t)
				signUp(t, a, "deleter", alicePassword)
				logIn(t, b, "deleter", alicePassword)
				add(t, a, "dune", 1)
				wantCode(t, a.json(http.MethodDelete, "/api/account", `{"password":"wrong password"}`), 401, "invalid_credentials")
				wantCode(t, a.json(http.MethodDelete, "/api/account", `{}`), 400, "invalid_request")
				if got := a.cart(); userOf(got) != "deleter" {
					t.Fatalf("a refused deletion logged the session out")
				}
				res := a.json(http.MethodDelete, "/api/account", `{"password":"`+alicePassword+`"}`)
				if res.status != http.StatusNoContent || !clearedCookie(res.setCookie) {
					t.Fatalf("deletion: %d %s, Set-Cookie %v", res.status, res.body, res.setCookie)
				}
				wantNoStore(t, "the deletion", res)
				wantCode(t, last(t).json(http.MethodPost, "/api/login", creds("deleter", alicePassword)), 401, "invalid_credentials")
				// A new account of the name is not the old one: the old
				// account's sessions are not logged in to it.
				again := first(t)
				signUp(t, again, "deleter", newPassword)
				if got := again.cart(); len(got.Items) != 0 {
					t.Errorf("a new account of the deleted name has the old cart %q", lines(got))
				}
				wantGuest(t, b.cart(), 0)
			})

			t.Run("sign-ups race for one name", func(t *testing.T) {
				for round := range 6 {
					name := fmt.Sprintf("racer-%d", round)
					var wg sync.WaitGroup
					statuses := make([]int, 2)
					start := make(chan struct{})
					for i := range 2 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							req, _ := http.NewRequest(http.MethodPost, bases[i%len(bases)]+"/api/account", strings.NewReader(creds(name, fmt.Sprintf("password of racer %d", i))))
							req.Header.Set("Content-Type", "application/json")
							<-start
							res, err := httpClient.Do(req)
							if err != nil {
								t.Error(err)
								return
							}
							res.Body.Close()
							statuses[i] = res.StatusCode
						}()
					}
					close(start)
					wg.Wait()
					if !(statuses[0] == 201 && statuses[1] == 409 || statuses[0] == 409 && statuses[1] == 201) {
						t.Errorf("two sign-ups of %s at once: %v, want one 201 and one 409", name, statuses)
					}
				}
			})

			t.Run("a double-clicked login merges once", func(t *testing.T) {
				signUp(t, first(t), "clicker", alicePassword)
				for round := range 3 {
					g := first(t)
					add(t, g, "dune", 2)
					var wg sync.WaitGroup
					answers := make([]*response, 2)
					for i := range 2 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							answers[i] = (&client{tb: t, base: bases[i%len(bases)], cookie: g.cookie}).json(http.MethodPost, "/api/login", creds("clicker", alicePassword))
						}()
					}
					wg.Wait()
					for _, r := range answers {
						if r.status != http.StatusOK && r.status != http.StatusConflict {
							t.Errorf("a login of a double click: %d %s", r.status, r.body)
						}
					}
					if got := logIn(t, last(t), "clicker", alicePassword).quantity("dune"); got != 2*(round+1) {
						t.Errorf("round %d: the account has %d × dune, want %d: the guest cart of 2 was merged more than once, or lost", round, got, 2*(round+1))
					}
				}
			})

			t.Run("a password change races the other session", func(t *testing.T) {
				passwordRace(t, bases)
			})

			if len(bases) > 1 {
				t.Run("failures count across instances", func(t *testing.T) {
					signUp(t, first(t), "guessed", alicePassword)
					for i := range account.MaxFailures {
						c := &client{tb: t, base: bases[i%len(bases)]}
						wantCode(t, c.json(http.MethodPost, "/api/login", creds("guessed", "wrong password")), 401, "invalid_credentials")
					}
					for _, base := range bases {
						c := &client{tb: t, base: base}
						wantCode(t, c.json(http.MethodPost, "/api/login", creds("guessed", alicePassword)), 429, "too_many_attempts")
					}
				})
			}
		})
	}
}

// passwordRace changes the password of an account in one session while
// another session of it adds to the cart, from several connections: each
// of the other session's adds is either applied to the account (answered
// as logged in, before the change) or a guest's (after it), never applied
// to the account by the ended session. Then two sessions change the
// password at once: the second to arrive is a session the first ended.
func passwordRace(t *testing.T, bases []string) {
	t.Helper()
	a := &client{tb: t, base: bases[0]}
	b := &client{tb: t, base: bases[len(bases)-1]}
	signUp(t, a, "raced", alicePassword)
	logIn(t, b, "raced", alicePassword)
	var inAccount, asGuest, refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Two books, and a pause between adds, so that no line reaches 99.
	products := []string{"dune", "pride-and-prejudice"}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				add := fmt.Sprintf(`{"product_id":%q}`, products[(i+n)%len(products)])
				req, _ := http.NewRequest(http.MethodPost, bases[i%len(bases)]+"/api/cart/items", strings.NewReader(add))
				req.Header.Set("Content-Type", "application/json")
				req.AddCookie(&http.Cookie{Name: cookieName, Value: b.cookie})
				res, err := httpClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusOK:
					var c cartJSON
					if err := json.Unmarshal(body, &c); err != nil {
						t.Error(err)
						return
					}
					if userOf(c) == "raced" {
						inAccount.Add(1)
					} else {
						asGuest.Add(1)
					}
				case http.StatusConflict:
					refused.Add(1)
				default:
					t.Errorf("an add of the other session: %d %s", res.StatusCode, body)
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	res := a.json(http.MethodPut, "/api/account/password", `{"current_password":"`+alicePassword+`","new_password":"`+newPassword+`"}`)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if res.status != http.StatusNoContent {
		t.Fatalf("password change: %d %s", res.status, res.body)
	}
	if got := a.cart().ItemCount; int64(got) != inAccount.Load() {
		t.Errorf("the account's cart has %d items, but %d adds were answered as the account's: an ended session changed it, or an add was lost", got, inAccount.Load())
	}
	if inAccount.Load() == 0 || asGuest.Load() == 0 {
		t.Errorf("%d adds as the account's, %d as a guest's: the race did not happen", inAccount.Load(), asGuest.Load())
	}
	t.Logf("adds of the other session: %d as logged in, %d as a guest after the change, %d × 409", inAccount.Load(), asGuest.Load(), refused.Load())

	for round := range 5 {
		user := fmt.Sprintf("twice-%d", round)
		one, two := &client{tb: t, base: bases[0]}, &client{tb: t, base: bases[len(bases)-1]}
		signUp(t, one, user, alicePassword)
		logIn(t, two, user, alicePassword)
		var wg sync.WaitGroup
		answers := make([]*response, 2)
		for i, c := range []*client{one, two} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = c.json(http.MethodPut, "/api/account/password", fmt.Sprintf(`{"current_password":%q,"new_password":"new password %d"}`, alicePassword, i))
			}()
		}
		wg.Wait()
		changed := 0
		for _, r := range answers {
			switch r.status {
			case http.StatusNoContent:
				changed++
			case http.StatusUnauthorized, http.StatusConflict:
			default:
				t.Errorf("a password change: %d %s", r.status, r.body)
			}
		}
		if changed != 1 {
			t.Errorf("two sessions changed the password at once: %d and %d; want one 204 and the other refused (its session ended with the first change)", answers[0].status, answers[1].status)
		}
	}

	// A password change racing "log out everywhere" or a deletion in
	// another session: whichever comes second finds its session ended and
	// changes nothing.
	for _, other := range []struct {
		name, method, path, body string
	}{
		{"log out everywhere", http.MethodPost, "/api/logout", `{"everywhere":true}`},
		{"deletion", http.MethodDelete, "/api/account", `{"password":"` + alicePassword + `"}`},
	} {
		// The other request starts later each round, so that some
		// round has it read the account before the change and write
		// after.
		for round := range 12 {
			user := fmt.Sprintf("versus-%d-%d", len(other.name), round)
			changer, ender := &client{tb: t, base: bases[0]}, &client{tb: t, base: bases[len(bases)-1]}
			signUp(t, changer, user, alicePassword)
			logIn(t, ender, user, alicePassword)
			var wg sync.WaitGroup
			var changed, ended *response
			wg.Add(2)
			go func() {
				defer wg.Done()
				changed = changer.json(http.MethodPut, "/api/account/password", `{"current_password":"`+alicePassword+`","new_password":"`+newPassword+`"}`)
			}()
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(round) * time.Millisecond)
				ended = ender.json(other.method, other.path, other.body)
			}()
			wg.Wait()
			if changed.status != http.StatusNoContent {
				continue // the other came first: nothing more to check
			}
			if ended.status == http.StatusNoContent && other.method == http.MethodDelete {
				t.Errorf("%s: a password change and a deletion of the session it ended both answered 204", other.name)
			}
			if res := changer.do(http.MethodGet, "/api/account", ""); res.status != http.StatusOK {
				t.Errorf("%s: the password change answered 204, but then its session is logged out (%d): the %s of a session it ended applied after it", other.name, res.status, other.name)
			}
		}
	}
}

// TestAccountSurvivesRestart: with the file store an account survives a
// restart and a SIGKILL right after its 201.
func TestAccountSurvivesRestart(t *testing.T) {
	t.Parallel()
	t.Run("restart", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		first := startTote(t, map[string]string{"DATA_DIR": dir})
		c := first.client(t)
		signUp(t, c, "alice", alicePassword)
		add(t, c, "kindred", 2)
		first.shutdown(t)
		second := startTote(t, map[string]string{"DATA_DIR": dir})
		c.base = second.base
		if got := c.cart(); userOf(got) != "alice" {
			t.Errorf("after the restart the session is %q's, want alice's", userOf(got))
		}
		if got := logIn(t, second.client(t), "alice", alicePassword); lines(got) != "kindred:2" {
			t.Errorf("after the restart: %q, want kindred:2", lines(got))
		}
	})
	t.Run("SIGKILL after the 201", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		first := startChild(t, nil, "DATA_DIR="+dir)
		c := &client{tb: t, base: first.base}
		signUp(t, c, "alice", alicePassword)
		first.kill()
		base := startChild(t, nil, "DATA_DIR="+dir).base
		again := &client{tb: t, base: base}
		if got := logIn(t, again, "alice", alicePassword); userOf(got) != "alice" {
			t.Errorf("login after SIGKILL: user %q", userOf(got))
		}
		wantCode(t, (&client{tb: t, base: base}).json(http.MethodPost, "/api/account", creds("alice", newPassword)), 409, "username_taken")
	})
	t.Run("redis keeps accounts without expiry", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		in := startTote(t, map[string]string{"REDIS_URL": srv.URL()})
		signUp(t, in.client(t), "alice", alicePassword)
		ttl, err := srv.Client(t).TTL(context.Background(), "tote:account:alice").Result()
		if err != nil || ttl != -1 {
			t.Errorf("TTL of the account's key: %v %v; want -1 (never expires)", ttl, err)
		}
	})
}

// TestPasswordHashingBounded: a flood of logins past the queue of password
// checks gets 503 overloaded with Retry-After, while the pages keep
// answering.
func TestPasswordHashingBounded(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withHasher(6, 0)) // the default queue of 16
	signUp(t, a.client(t), "alice", alicePassword)
	overloaded := metric(t, a.base, `tote_logins_total{result="overloaded"}`)

	const logins = 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	retryAfter := true
	done := make(chan struct{})
	start := make(chan struct{})
	for range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, a.base+"/api/login", strings.NewReader(creds("alice", alicePassword)))
			req.Header.Set("Content-Type", "application/json")
			<-start
			res, err := httpClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			statuses[res.StatusCode]++
			if res.StatusCode == http.StatusServiceUnavailable {
				var e errorBody
				if json.Unmarshal(body, &e) != nil || e.Error.Code != "overloaded" {
					t.Errorf("503 %s, want overloaded", body)
				}
				retryAfter = retryAfter && res.Header.Get("Retry-After") != ""
			}
		}()
	}
	// Page views while the logins run.
	var pages, slowest atomic.Int64
	pagesDone := make(chan struct{})
	go func() {
		defer close(pagesDone)
		c := a.client(t)
		for {
			select {
			case <-done:
				return
			default:
			}
			began := time.Now()
			req, _ := http.NewRequest(http.MethodGet, a.base+"/", nil)
			if c.cookie != "" {
				req.AddCookie(&http.Cookie{Name: cookieName, Value: c.cookie})
			}
			res, err := httpClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			for _, ck := range res.Cookies() {
				if ck.Name == cookieName {
					c.cookie = ck.Value
				}
			}
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET / during the flood of logins: %d", res.StatusCode)
			}
			pages.Add(1)
			if took := time.Since(began).Milliseconds(); took > slowest.Load() {
				slowest.Store(took)
			}
		}
	}()
	close(start)
	floodStart := time.Now()
	wg.Wait()
	flood := time.Since(floodStart)
	close(done)
	<-pagesDone
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Errorf("%d logins at once: %v; want some refused with 503 overloaded", logins, statuses)
	}
	if !retryAfter {
		t.Error("a 503 overloaded without Retry-After")
	}
	if statuses[http.StatusOK] == 0 {
		t.Errorf("no login got through: %v", statuses)
	}
	for s := range statuses {
		if s != 200 && s != 401 && s != 503 {
			t.Errorf("statuses %v: only 200, 401 and 503 expected", statuses)
		}
	}
	if pages.Load() < 2 {
		t.Errorf("%d page views answered during %v of logins", pages.Load(), flood)
	}
	if got := metric(t, a.base, `tote_logins_total{result="overloaded"}`); got != overloaded+float64(statuses[503]) {
		t.Errorf(`tote_logins_total{result="overloaded"} %v, want %v`, got, overloaded+float64(statuses[503]))
	}
	t.Logf("%d logins in %v: %v; %d page views meanwhile, the slowest %d ms", logins, flood, statuses, pages.Load(), slowest.Load())
}

// TestPasswordsNeverShown: no password appears in an answer, a page, the
// log, or the store, where only a bcrypt hash is kept.
func TestPasswordsNeverShown(t *testing.T) {
	t.Parallel()
	log := &teeLog{}
	a := newLoggedTestApp(t, log)
	var mu sync.Mutex
	var answers []*response
	keep := func(r *response) *response {
		mu.Lock()
		defer mu.Unlock()
		answers = append(answers, r)
		return r
	}
	const (
		first  = "Unseen-Password-One"
		second = "Unseen-Password-Two"
		wrong  = "Unseen-Password-Wrong"
		weak   = "unseen"
		form   = "Unseen-Password-Form"
	)
	passwords := []string{first, second, wrong, weak, form}
	c := a.client(t)
	keep(c.json(http.MethodPost, "/api/account", creds("alice", weak)))
	keep(c.json(http.MethodPost, "/api/account", creds("alice", first)))
	keep(c.do(http.MethodGet, "/api/account", ""))
	keep(a.client(t).json(http.MethodPost, "/api/login", creds("alice", wrong)))
	keep(a.client(t).json(http.MethodPost, "/api/login", creds("nobody", wrong)))
	keep(a.client(t).json(http.MethodPost, "/api/login", `{"username":"alice","password":"`+first+`","remember":"x"}`))
	keep(a.client(t).json(http.MethodPost, "/api/login", creds("alice", first)))
	keep(c.json(http.MethodPut, "/api/account/password", `{"current_password":"`+wrong+`","new_password":"`+second+`"}`))
	keep(c.json(http.MethodPut, "/api/account/password", `{"current_password":"`+first+`","new_password":"`+weak+`"}`))
	keep(c.json(http.MethodPut, "/api/account/password", `{"current_password":"`+first+`","new_password":"`+second+`"}`))
	keep(c.json(http.MethodDelete, "/api/account", `{"password":"`+wrong+`"}`))
	// The forms: refused ones answer the form again.
	f := a.client(t)
	_, doc := f.page("/signup")
	token := csrf(t, doc)
	keep(f.form("/signup", formValues("csrf_token", token, "username", "bob", "password", form, "password2", wrong)))
	keep(f.form("/signup", formValues("csrf_token", token, "username", "b!", "password", form, "password2", form)))
	keep(f.form("/signup", formValues("csrf_token", token, "username", "bob", "password", weak, "password2", weak)))
	keep(f.form("/signup", formValues("csrf_token", token, "username", "bob", "password", form, "password2", form)))
	_, doc = f.page("/account")
	token = csrf(t, doc)
	keep(f.form("/account/password", formValues("csrf_token", token, "current_password", wrong, "new_password", second, "new_password2", second)))
	keep(f.form("/account/password", formValues("csrf_token", token, "current_password", form, "new_password", second, "new_password2", first)))
	keep(f.form("/account/delete", formValues("csrf_token", token, "password", wrong)))
	g := a.client(t)
	_, doc = g.page("/login")
	keep(g.form("/login", formValues("csrf_token", csrf(t, doc), "username", "bob", "password", wrong)))
	for _, p := range []string{"/", "/cart", "/account", "/login"} {
		res, _ := f.page(p)
		keep(res)
	}
	keep(f.form("/account/delete", formValues("csrf_token", token, "password", form)))

	leaks := func(what, s string) {
		t.Helper()
		for _, p := range passwords {
			if strings.Contains(s, p) {
				t.Errorf("%s shows the password %q", what, p)
			}
		}
	}
	for _, r := range answers {
		leaks(fmt.Sprintf("an answer (%d)", r.status), string(r.body))
		for k, v := range r.header {
			leaks("the header "+k, strings.Join(v, " "))
		}
	}
	if !strings.Contains(log.String(), "signed up") {
		t.Fatalf("the log was not captured: %q", log.String())
	}
	leaks("the log", log.String())

	rec, found, err := a.store.Get(context.Background(), account.Key("alice"))
	if err != nil || !found {
		t.Fatalf("the account is not in the store: %v %v", found, err)
	}
	leaks("the stored account", string(rec.Data))
	for _, p := range passwords {
		if bytes.Contains(rec.Data, []byte(base64.StdEncoding.EncodeToString([]byte(p)))) {
			t.Errorf("the stored account holds the password %q in base64", p)
		}
	}
	var stored struct {
		Hash []byte `json:"hash"`
	}
	if err := json.Unmarshal(rec.Data, &stored); err != nil {
		t.Fatalf("the stored account: %v", err)
	}
	if cost, err := bcrypt.Cost(stored.Hash); err != nil || cost != bcrypt.MinCost {
		t.Errorf("the stored hash %q is not bcrypt's at the configured cost: %d %v", stored.Hash, cost, err)
	}
	for _, id := range []string{c.cookie, f.cookie, g.cookie} {
		if rec, found, _ := a.store.Get(context.Background(), session.Key(id)); found {
			leaks("a stored session", string(rec.Data))
		}
	}
	if rec, found, _ := a.store.Get(context.Background(), "login-failures:alice"); found {
		leaks("the stored failures", string(rec.Data))
	}
}

// TestAccountMetrics: tote_logins_total{result}, tote_signups_total and
// tote_logouts_total move with the API and the forms.
func TestAccountMetrics(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	series := []string{
		`tote_logins_total{result="success"}`, `tote_logins_total{result="failure"}`,
		`tote_logins_total{result="throttled"}`, `tote_signups_total`, `tote_logouts_total`,
	}
	read := func() map[string]float64 {
		m := map[string]float64{}
		for _, s := range series {
			m[s] = metric(t, a.base, s)
		}
		return m
	}
	c := a.client(t)
	steps := []struct {
		name string
		do   func(t *testing.T)
		want map[string]float64 // the change of each series
	}{
		{"API sign-up", func(t *testing.T) { signUp(t, c, "alice", alicePassword) }, map[string]float64{"tote_signups_total": 1}},
		{"refused sign-up", func(t *testing.T) { a.client(t).json(http.MethodPost, "/api/account", creds("alice", alicePassword)) }, nil},
		{"API logout", func(t *testing.T) { c.do(http.MethodPost, "/api/logout", "") }, map[string]float64{"tote_logouts_total": 1}},
		{"guest logout", func(t *testing.T) { a.client(t).do(http.MethodPost, "/api/logout", "") }, nil},
		{"API login", func(t *testing.T) { logIn(t, c, "alice", alicePassword) }, map[string]float64{`tote_logins_total{result="success"}`: 1}},
		{"failed logins", func(t *testing.T) {
			for range account.MaxFailures {
				a.client(t).json(http.MethodPost, "/api/login", creds("alice", "wrong password"))
			}
		}, map[string]float64{`tote_logins_total{result="failure"}`: account.MaxFailures}},
		{"throttled login", func(t *testing.T) { a.client(t).json(http.MethodPost, "/api/login", creds("alice", alicePassword)) },
			map[string]float64{`tote_logins_total{result="throttled"}`: 1}},
		{"form sign-up", func(t *testing.T) { signUpForm(t, a.client(t), "bob", alicePassword) }, map[string]float64{"tote_signups_total": 1}},
		{"form login and logout", func(t *testing.T) {
			f := a.client(t)
			logInForm(t, f, "bob", alicePassword, true)
			_, doc := f.page("/")
			f.form("/logout", formValues("csrf_token", csrf(t, doc)))
		}, map[string]float64{`tote_logins_total{result="success"}`: 1, "tote_logouts_total": 1}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := read()
			st.do(t)
			after := read()
			for _, s := range series {
				if d := after[s] - before[s]; d != st.want[s] {
					t.Errorf("%s moved by %v, want %v", s, d, st.want[s])
				}
			}
		})
	}
}
