package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"tote/account"
	"tote/session"
	"tote/session/memstore"
)

// formValues makes a form body from name, value pairs.
func formValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// formToken opens the page at path and returns the CSRF token of the form
// whose action is action.
func formToken(tb testing.TB, c *client, path, action string) string {
	tb.Helper()
	res, doc := c.page(path)
	if res.status != http.StatusOK {
		tb.Fatalf("GET %s: %d", path, res.status)
	}
	v, ok := doc.Find(`form[action="` + action + `"] input[name="csrf_token"]`).First().Attr("value")
	if !ok || v == "" {
		tb.Fatalf("GET %s: no form to %s with a CSRF token", path, action)
	}
	return v
}

// signUpForm signs c up with the sign-up form and fails tb on anything
// but 303 to /.
func signUpForm(tb testing.TB, c *client, user, password string) *response {
	tb.Helper()
	token := formToken(tb, c, "/signup", "/signup")
	res := c.form("/signup", formValues("csrf_token", token, "username", user, "password", password, "password2", password))
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
		tb.Fatalf("POST /signup: %d Location %q", res.status, res.header.Get("Location"))
	}
	return res
}

// logInForm logs c in with the login form and fails tb on anything but
// 303 to /.
func logInForm(tb testing.TB, c *client, user, password string, remember bool) *response {
	tb.Helper()
	token := formToken(tb, c, "/login", "/login")
	v := formValues("csrf_token", token, "username", user, "password", password, "next", "/")
	if remember {
		v.Set("remember", "1")
	}
	res := c.form("/login", v)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
		tb.Fatalf("POST /login: %d Location %q", res.status, res.header.Get("Location"))
	}
	return res
}

// flashSet returns the value of the tote_flash cookie an answer set.
func flashSet(res *response) string {
	for _, ck := range (&http.Response{Header: res.header}).Cookies() {
		if ck.Name == "tote_flash" {
			return ck.Value
		}
	}
	return ""
}

// wantLoggedIn checks the header of a logged-in visitor's page.
func wantLoggedIn(tb testing.TB, doc *goquery.Document, user string) {
	tb.Helper()
	if got := text(tb, doc, "header .greeting"); got != "Hello, "+user {
		tb.Errorf("greeting %q, want Hello, %s", got, user)
	}
	if got := text(tb, doc, "header #user"); got != user {
		tb.Errorf("#user %q, want %q", got, user)
	}
	if v, ok := doc.Find(`header form[method="post"][action="/logout"] input[name="csrf_token"]`).Attr("value"); !ok || v == "" {
		tb.Error("the header has no log-out form with a CSRF token")
	}
	if doc.Find("#login-link, #signup-link").Length() != 0 {
		tb.Error("a logged-in visitor is offered to log in or sign up")
	}
}

// wantGuestHeader checks the header of a guest's page.
func wantGuestHeader(tb testing.TB, doc *goquery.Document) {
	tb.Helper()
	if doc.Find("#user").Length() != 0 {
		tb.Errorf("a guest's page has #user %q", doc.Find("#user").Text())
	}
	for sel, href := range map[string]string{"header #login-link": "/login", "header #signup-link": "/signup"} {
		if got, _ := doc.Find(sel).Attr("href"); got != href {
			tb.Errorf("%s links to %q, want %s", sel, got, href)
		}
	}
	if doc.Find(`header form[action="/logout"]`).Length() != 0 {
		tb.Error("a guest's header has a log-out form")
	}
}

// wantRefused checks a form answered again: the status, the message next
// to field (or, for field "", above the form in role=alert), the typed
// username kept (when the form has the field), and no password echoed.
func wantRefused(tb testing.TB, res *response, status int, field, username string, passwords ...string) *goquery.Document {
	tb.Helper()
	if res.status != status {
		tb.Fatalf("status %d, want %d", res.status, status)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		tb.Errorf("Content-Type %q, want the form again as HTML", ct)
	}
	doc := res.doc(tb)
	if field == "" {
		alert := doc.Find(`#form-alert[role="alert"]`)
		if alert.Length() != 1 || strings.TrimSpace(alert.Text()) == "" || alert.NextAllFiltered("form").Length() == 0 {
			tb.Error("no message above the form in a role=alert region")
		}
		if doc.Find(".field-error").Length() != 0 {
			tb.Errorf("a message about both fields is next to one: %q", doc.Find(".field-error").Text())
		}
	} else {
		msg := doc.Find("#" + field + "-error")
		if strings.TrimSpace(msg.Text()) == "" {
			tb.Errorf("no message next to the field %s", field)
		}
		if v, _ := doc.Find("input#" + field).Attr("aria-invalid"); v != "true" {
			tb.Errorf("input #%s is not marked aria-invalid", field)
		}
		if desc, _ := doc.Find("[aria-describedby~=\"" + field + "-error\"]").Attr("aria-describedby"); desc == "" {
			tb.Errorf("no input is described by #%s-error", field)
		}
	}
	if in := doc.Find(`input#username`); in.Length() > 0 {
		if v, _ := in.Attr("value"); v != username {
			tb.Errorf("username field %q, want the typed %q kept", v, username)
		}
	}
	doc.Find(`input[type="password"]`).Each(func(_ int, s *goquery.Selection) {
		if v, ok := s.Attr("value"); ok {
			tb.Errorf("password input %s has a value %q", s.AttrOr("name", "?"), v)
		}
	})
	for _, p := range passwords {
		if strings.Contains(string(res.body), p) {
			tb.Errorf("the page shows the password %q", p)
		}
	}
	if _, ok := doc.Find(`form input[name="csrf_token"]`).Attr("value"); !ok {
		tb.Error("the form answered again has no CSRF token")
	}
	return doc
}

func TestAccountFormsForGuest(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	for _, tt := range []struct {
		path, action string
		fields       []string
	}{
		{"/signup", "/signup", []string{"username", "password", "password2"}},
		{"/login", "/login", []string{"username", "password", "remember", "next"}},
		{"/login?next=/cart", "/login", []string{"username", "password", "remember", "next"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			c := a.client(t)
			res, doc := c.page(tt.path)
			if res.status != http.StatusOK {
				t.Fatalf("%d", res.status)
			}
			form := doc.Find(`form[method="post"][action="` + tt.action + `"]`)
			if form.Length() != 1 {
				t.Fatalf("no POST form to %s", tt.action)
			}
			if v, _ := form.Find(`input[name="csrf_token"]`).Attr("value"); v == "" {
				t.Error("the form has no CSRF token")
			}
			for _, f := range tt.fields {
				if form.Find(`[name="`+f+`"]`).Length() != 1 {
					t.Errorf("the form has no field %s", f)
				}
			}
			form.Find(`input[type="password"]`).Each(func(_ int, s *goquery.Selection) {
				if _, ok := s.Attr("value"); ok {
					t.Errorf("password input %s has a value", s.AttrOr("name", "?"))
				}
			})
			if tt.action == "/login" {
				if _, ok := form.Find(`input#remember[type="checkbox"][name="remember"]`).Attr("checked"); !ok {
					t.Error("remember is not ticked at first")
				}
				want := "/"
				if strings.Contains(tt.path, "next=") {
					want = "/cart"
				}
				if v, _ := form.Find(`input[name="next"]`).Attr("value"); v != want {
					t.Errorf("next %q, want %q", v, want)
				}
			}
			wantGuestHeader(t, doc)
			if got := text(t, doc, "#visit-count"); got != "1 time" {
				t.Errorf("#visit-count %q: the form is a page view", got)
			}
		})
	}
}

// TestLoggedInSkipsForms: a logged-in visitor who opens (or posts) the
// login or sign-up form goes to /account.
func TestLoggedInSkipsForms(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	c := a.client(t)
	signUpForm(t, c, "alice", alicePassword)
	_, doc := c.page("/")
	token := csrf(t, doc)
	for _, tt := range []struct {
		name string
		do   func() *response
	}{
		{"GET /login", func() *response { return c.do(http.MethodGet, "/login", "") }},
		{"GET /signup", func() *response { return c.do(http.MethodGet, "/signup", "") }},
		{"GET /login?next=/cart", func() *response { return c.do(http.MethodGet, "/login?next=/cart", "") }},
		{"POST /login", func() *response {
			return c.form("/login", formValues("csrf_token", token, "username", "alice", "password", alicePassword))
		}},
		{"POST /signup", func() *response {
			return c.form("/signup", formValues("csrf_token", token, "username", "bob", "password", alicePassword, "password2", alicePassword))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.do()
			if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account" {
				t.Errorf("%d Location %q, want 303 /account", res.status, res.header.Get("Location"))
			}
		})
	}
	wantCode(t, a.client(t).json(http.MethodPost, "/api/login", creds("bob", alicePassword)), 401, "invalid_credentials")
}

func TestSignUpFormPage(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	signUp(t, a.client(t), "taken", alicePassword)

	t.Run("success", func(t *testing.T) {
		c := a.client(t)
		add(t, c, "dune", 1)
		_, doc := c.page("/signup")
		old, oldToken := c.cookie, csrf(t, doc)
		res := c.form("/signup", formValues("csrf_token", oldToken, "username", "Alice", "password", alicePassword, "password2", alicePassword))
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
			t.Fatalf("%d Location %q, want 303 /", res.status, res.header.Get("Location"))
		}
		if res.setCookie == nil || res.setCookie.Value == old || !persistent(res.setCookie) {
			t.Errorf("Set-Cookie %v; want a new id that lives the session's lifetime", res.setCookie)
		}
		_, doc = c.page("/")
		if got := text(t, doc, "#flash"); got != "Welcome, alice." {
			t.Errorf("#flash %q, want Welcome, alice.", got)
		}
		wantLoggedIn(t, doc, "alice")
		if csrf(t, doc) == oldToken {
			t.Error("the CSRF token did not change at the sign-up")
		}
		if got := text(t, doc, "#cart-count"); got != "1" {
			t.Errorf("#cart-count %q: the guest's cart is the account's", got)
		}
		if got := text(t, doc, "#visit-count"); got != "2 times" {
			t.Errorf("#visit-count %q, want 2 times (visits carry over)", got)
		}
		_, doc = c.page("/")
		if doc.Find("#flash").Length() != 0 {
			t.Error("the flash is shown twice")
		}
		wantGuest(t, asOf(c, old).cart(), 0)
	})

	tests := []struct {
		name, user, pw, pw2 string
		status              int
		field               string
	}{
		{"passwords differ", "bob", alicePassword, newPassword, 422, "password2"},
		{"invalid username", "b ob!", alicePassword, alicePassword, 422, "username"},
		{"short password", "bob", "short", "short", 422, "password"},
		{"long password", "bob", strings.Repeat("p", 129), strings.Repeat("p", 129), 422, "password"},
		{"password = username", "bobbybobby", "BOBBYBOBBY", "BOBBYBOBBY", 422, "password"},
		{"common password", "bob", "baseball", "baseball", 422, "password"},
		{"username taken", "Taken", alicePassword, alicePassword, 409, "username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := a.client(t)
			token := formToken(t, c, "/signup", "/signup")
			id := c.cookie
			res := c.form("/signup", formValues("csrf_token", token, "username", tt.user, "password", tt.pw, "password2", tt.pw2))
			doc := wantRefused(t, res, tt.status, tt.field, tt.user, tt.pw, tt.pw2)
			if c.cookie != id {
				t.Error("a refused sign-up changed the session id")
			}
			wantGuestHeader(t, doc)
		})
	}
	t.Run("nothing refused made an account", func(t *testing.T) {
		for _, name := range []string{"bob", "bobbybobby"} {
			wantCode(t, a.client(t).json(http.MethodPost, "/api/login", creds(name, alicePassword)), 401, "invalid_credentials")
		}
	})
}

func TestLogInFormPage(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	signUp(t, a.client(t), "alice", alicePassword)

	t.Run("next", func(t *testing.T) {
		for _, tt := range []struct{ next, want string }{
			{"/cart", "/cart"},
			{"/products/dune?from=login", "/products/dune?from=login"},
			{"/account", "/account"},
			{"", "/"},
			{"//evil.example", "/"},
			{"//evil.example/cart", "/"},
			{"https://evil.example", "/"},
			{"http://evil.example/cart", "/"},
			{`/\evil.example`, "/"},
			{"javascript:alert(1)", "/"},
			{"cart", "/"},
			{"/\t/evil.example", "/"},
		} {
			t.Run(tt.next, func(t *testing.T) {
				c := a.client(t)
				_, doc := c.page("/login?next=" + url.QueryEscape(tt.next))
				if v, _ := doc.Find(`form[action="/login"] input[name="next"]`).Attr("value"); v != tt.want {
					t.Errorf("GET /login?next=%s: next %q, want %q", tt.next, v, tt.want)
				}
				res := c.form("/login", formValues("csrf_token", csrf(t, doc), "username", "alice", "password", alicePassword, "remember", "1", "next", tt.next))
				if res.status != http.StatusSeeOther || res.header.Get("Location") != tt.want {
					t.Errorf("POST /login with next %q: %d Location %q, want 303 %s", tt.next, res.status, res.header.Get("Location"), tt.want)
				}
			})
		}
	})

	t.Run("success", func(t *testing.T) {
		for _, remember := range []bool{true, false} {
			t.Run(map[bool]string{true: "remembered", false: "not remembered"}[remember], func(t *testing.T) {
				c := a.client(t)
				_, doc := c.page("/")
				old, oldToken := c.cookie, csrf(t, doc)
				res := logInForm(t, c, "ALICE", alicePassword, remember)
				if res.setCookie == nil || res.setCookie.Value == old {
					t.Fatalf("Set-Cookie %v, want a new id", res.setCookie)
				}
				if remember && !persistent(res.setCookie) || !remember && !browserSession(res.setCookie) {
					t.Errorf("remember %v: cookie Max-Age %d Expires %q", remember, res.setCookie.MaxAge, res.setCookie.RawExpires)
				}
				page, doc := c.page("/")
				if remember && !persistent(page.setCookie) || !remember && !browserSession(page.setCookie) {
					t.Errorf("remember %v: the next page's cookie %v", remember, page.setCookie)
				}
				if got := text(t, doc, "#flash"); got != "Welcome back, alice." {
					t.Errorf("#flash %q", got)
				}
				wantLoggedIn(t, doc, "alice")
				if csrf(t, doc) == oldToken {
					t.Error("the CSRF token did not change at the login")
				}
				wantGuest(t, asOf(c, old).cart(), 0)
			})
		}
	})

	t.Run("bad credentials", func(t *testing.T) {
		for _, tt := range []struct{ name, user, pw string }{
			{"wrong password", "alice", "not the password"},
			{"unknown username", "nobody", alicePassword},
		} {
			t.Run(tt.name, func(t *testing.T) {
				c := a.client(t)
				token := formToken(t, c, "/login?next=/cart", "/login")
				res := c.form("/login", formValues("csrf_token", token, "username", tt.user, "password", tt.pw, "next", "/cart"))
				doc := wantRefused(t, res, http.StatusUnauthorized, "", tt.user, tt.pw)
				if got := text(t, doc, "#form-alert"); got != "That username and password do not match an account." {
					t.Errorf("alert %q: one message for an unknown username and a wrong password", got)
				}
				if v, _ := doc.Find(`input[name="next"]`).Attr("value"); v != "/cart" {
					t.Errorf("next %q, want /cart kept", v)
				}
				if _, ok := doc.Find(`input#remember`).Attr("checked"); ok {
					t.Error("remember ticked though the refused form did not tick it")
				}
				wantGuestHeader(t, doc)
			})
		}
	})

	t.Run("throttled", func(t *testing.T) {
		signUp(t, a.client(t), "guessed", alicePassword)
		for range account.MaxFailures {
			a.client(t).json(http.MethodPost, "/api/login", creds("guessed", "wrong password"))
		}
		c := a.client(t)
		token := formToken(t, c, "/login", "/login")
		res := c.form("/login", formValues("csrf_token", token, "username", "guessed", "password", alicePassword, "remember", "1"))
		doc := wantRefused(t, res, http.StatusTooManyRequests, "", "guessed", alicePassword)
		if res.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		if !strings.Contains(text(t, doc, "#form-alert"), "Too many failed logins") {
			t.Errorf("alert %q", text(t, doc, "#form-alert"))
		}
	})
}

// TestLoginFormMerge: what the merge cut at a form login is in the flash.
func TestLoginFormMerge(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	owner := a.client(t)
	signUp(t, owner, "alice", alicePassword)
	add(t, owner, "parable-of-the-sower", 1)
	add(t, owner, "dune", 1)
	c := a.client(t)
	add(t, c, "kindred", 1)
	add(t, c, "parable-of-the-sower", 2)
	guest := c.cookie
	logInForm(t, c, "alice", alicePassword, true)
	_, doc := c.page("/cart")
	if got := text(t, doc, "#flash"); got != "Welcome back, alice. Only 2 copies of Parable of the Sower are in stock; your cart has 2." {
		t.Errorf("#flash %q", got)
	}
	if role, _ := doc.Find("#flash").Attr("role"); role != "alert" {
		t.Errorf("#flash role %q: something was cut", role)
	}
	if got := lines(c.cart()); got != "parable-of-the-sower:2,dune:1,kindred:1" {
		t.Errorf("cart %q", got)
	}
	wantGuest(t, asOf(c, guest).cart(), 0)
}

func TestLogOutForm(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	c := a.client(t)
	signUpForm(t, c, "alice", alicePassword)
	add(t, c, "dune", 2)
	_, doc := c.page("/cart")
	old := c.cookie
	res := c.form("/logout", formValues("csrf_token", csrf(t, doc)))
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
		t.Fatalf("%d Location %q, want 303 /", res.status, res.header.Get("Location"))
	}
	if !clearedCookie(res.setCookie) {
		t.Errorf("Set-Cookie %v, want the cookie cleared", res.setCookie)
	}
	if _, found, _ := a.store.Get(t.Context(), "session:"+old); found {
		t.Error("the store still holds the session")
	}
	flash := flashSet(res)
	if flash == "" {
		t.Fatal("nothing carries the flash to the next page")
	}
	page := c.do(http.MethodGet, "/", "", "Cookie", "tote_flash="+flash)
	doc = page.doc(t)
	if got := text(t, doc, "#flash"); got != "You have logged out." {
		t.Errorf("#flash %q", got)
	}
	if got := text(t, doc, "#visit-count"); got != "1 time" {
		t.Errorf("#visit-count %q, want 1 time", got)
	}
	if got := text(t, doc, "#cart-count"); got != "0" {
		t.Errorf("#cart-count %q, want an empty cart", got)
	}
	wantGuestHeader(t, doc)
	wantGuest(t, asOf(c, old).cart(), 0)
	if got := logIn(t, a.client(t), "alice", alicePassword); lines(got) != "dune:2" {
		t.Errorf("the account's cart after the logout: %q, want dune:2", lines(got))
	}
}

// TestAccountFormsNeedCSRF: a POST form without a valid CSRF token is 403
// and changes nothing.
func TestAccountFormsNeedCSRF(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	c := a.client(t)
	signUp(t, c, "alice", alicePassword)
	_, doc := c.page("/account")
	good := csrf(t, doc)
	guest := a.client(t)
	guestToken := formToken(t, guest, "/login", "/login")
	stranger := a.client(t) // no session at all
	for _, tt := range []struct {
		name   string
		c      *client
		path   string
		values url.Values
		query  string
	}{
		{"sign-up without a token", guest, "/signup", formValues("username", "bob", "password", alicePassword, "password2", alicePassword), ""},
		{"sign-up without a session", stranger, "/signup", formValues("csrf_token", guestToken, "username", "bob", "password", alicePassword, "password2", alicePassword), ""},
		{"login with a wrong token", guest, "/login", formValues("csrf_token", "x"+guestToken, "username", "alice", "password", alicePassword), ""},
		{"login with another session's token", guest, "/login", formValues("csrf_token", good, "username", "alice", "password", alicePassword), ""},
		{"login with the token in the query", guest, "/login", formValues("username", "alice", "password", alicePassword), "?csrf_token=" + guestToken},
		{"logout without a token", c, "/logout", nil, ""},
		{"logout everywhere with a wrong token", c, "/logout", formValues("csrf_token", guestToken, "everywhere", "1"), ""},
		{"password change without a token", c, "/account/password", formValues("current_password", alicePassword, "new_password", newPassword, "new_password2", newPassword), ""},
		{"password change with the token in the query", c, "/account/password", formValues("current_password", alicePassword, "new_password", newPassword, "new_password2", newPassword), "?csrf_token=" + good},
		{"deletion without a token", c, "/account/delete", formValues("password", alicePassword), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.c.cookie
			res := tt.c.do(http.MethodPost, tt.path+tt.query, tt.values.Encode(), "Content-Type", "application/x-www-form-urlencoded")
			if res.status != http.StatusForbidden {
				t.Errorf("%d, want 403", res.status)
			}
			if res.setCookie != nil || tt.c.cookie != id {
				t.Errorf("a refused form set a cookie: %v", res.setCookie)
			}
		})
	}
	if got := c.cart(); userOf(got) != "alice" {
		t.Error("refused forms logged alice out")
	}
	if got := guest.cart(); userOf(got) != "" {
		t.Error("a refused login logged the guest in")
	}
	logIn(t, a.client(t), "alice", alicePassword) // the password is unchanged and the account is there
	wantCode(t, a.client(t).json(http.MethodPost, "/api/login", creds("bob", alicePassword)), 401, "invalid_credentials")
}

func TestAccountPage(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)

	t.Run("a guest goes to the login", func(t *testing.T) {
		res := a.client(t).do(http.MethodGet, "/account", "")
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/login?next=/account" {
			t.Errorf("%d Location %q, want 303 /login?next=/account", res.status, res.header.Get("Location"))
		}
	})

	t.Run("what it shows", func(t *testing.T) {
		c := a.client(t)
		before := time.Now().Add(-time.Second)
		signUp(t, c, "alice", alicePassword)
		res, doc := c.page("/account")
		if res.status != http.StatusOK {
			t.Fatalf("%d", res.status)
		}
		if got := text(t, doc, "#account-username"); got != "alice" {
			t.Errorf("#account-username %q", got)
		}
		at, err := time.Parse(time.RFC3339, doc.Find("#member-since time").AttrOr("datetime", ""))
		if err != nil || at.Before(before.Truncate(time.Second)) || at.After(time.Now()) {
			t.Errorf("member since %q (%v), want the sign-up's time", doc.Find("#member-since time").AttrOr("datetime", ""), err)
		}
		if text(t, doc, "#member-since") == "" {
			t.Error("member since shows no date")
		}
		for _, sel := range []string{
			`form#password-form[method="post"][action="/account/password"] input[name="csrf_token"]`,
			`form#logout-everywhere[method="post"][action="/logout"] input[name="everywhere"]`,
			`form#delete-form[method="post"][action="/account/delete"] input[type="password"][name="password"]`,
		} {
			if doc.Find(sel).Length() != 1 {
				t.Errorf("no %s", sel)
			}
		}
		wantLoggedIn(t, doc, "alice")
	})

	t.Run("change password", func(t *testing.T) {
		c, other := a.client(t), a.client(t)
		signUp(t, c, "changer", alicePassword)
		logIn(t, other, "changer", alicePassword)
		token := formToken(t, c, "/account", "/account/password")
		post := func(current, next, next2 string) *response {
			return c.form("/account/password", formValues("csrf_token", token, "current_password", current, "new_password", next, "new_password2", next2))
		}
		for _, tt := range []struct {
			name, current, next, next2 string
			status                     int
			field                      string
		}{
			{"new passwords differ", alicePassword, newPassword, newPassword + "x", 422, "new_password2"},
			{"wrong current password", "not the password", newPassword, newPassword, 401, "current_password"},
			{"weak new password", alicePassword, "baseball", "baseball", 422, "new_password"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				doc := wantRefused(t, post(tt.current, tt.next, tt.next2), tt.status, tt.field, "", tt.current, tt.next, tt.next2)
				if got := text(t, doc, "#account-username"); got != "changer" {
					t.Errorf("the account page answered again shows %q", got)
				}
			})
		}
		old := c.cookie
		res := post(alicePassword, newPassword, newPassword)
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account" {
			t.Fatalf("%d Location %q, want 303 /account", res.status, res.header.Get("Location"))
		}
		if res.setCookie == nil || res.setCookie.Value == old {
			t.Errorf("Set-Cookie %v, want a new id", res.setCookie)
		}
		_, doc := c.page("/account")
		if got := text(t, doc, "#flash"); !strings.HasPrefix(got, "Your password is changed.") {
			t.Errorf("#flash %q", got)
		}
		wantLoggedIn(t, doc, "changer")
		wantGuest(t, other.cart(), 0)
		wantCode(t, a.client(t).json(http.MethodPost, "/api/login", creds("changer", alicePassword)), 401, "invalid_credentials")
		logIn(t, a.client(t), "changer", newPassword)
	})

	t.Run("log out everywhere", func(t *testing.T) {
		c, other := a.client(t), a.client(t)
		signUp(t, c, "everywhere", alicePassword)
		logIn(t, other, "everywhere", alicePassword)
		token := formToken(t, c, "/account", "/logout")
		old := c.cookie
		res := c.form("/logout", formValues("csrf_token", token, "everywhere", "1"))
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" || !clearedCookie(res.setCookie) {
			t.Fatalf("%d Location %q Set-Cookie %v", res.status, res.header.Get("Location"), res.setCookie)
		}
		doc := c.do(http.MethodGet, "/", "", "Cookie", "tote_flash="+flashSet(res)).doc(t)
		if got := text(t, doc, "#flash"); got != "You have logged out." {
			t.Errorf("#flash %q", got)
		}
		wantGuestHeader(t, doc)
		wantGuest(t, asOf(c, old).cart(), 0)
		wantGuest(t, other.cart(), 0)
	})

	t.Run("delete the account", func(t *testing.T) {
		c, other := a.client(t), a.client(t)
		signUp(t, c, "deleter", alicePassword)
		logIn(t, other, "deleter", alicePassword)
		add(t, c, "dune", 1)
		token := formToken(t, c, "/account", "/account/delete")
		doc := wantRefused(t, c.form("/account/delete", formValues("csrf_token", token, "password", "not the password")), 401, "delete_password", "", "not the password")
		if got := text(t, doc, "#account-username"); got != "deleter" {
			t.Errorf("the refused deletion answered %q", got)
		}
		res := c.form("/account/delete", formValues("csrf_token", token, "password", alicePassword))
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" || !clearedCookie(res.setCookie) {
			t.Fatalf("%d Location %q Set-Cookie %v", res.status, res.header.Get("Location"), res.setCookie)
		}
		doc = c.do(http.MethodGet, "/", "", "Cookie", "tote_flash="+flashSet(res)).doc(t)
		if got := text(t, doc, "#flash"); !strings.HasPrefix(got, "Your account is deleted.") {
			t.Errorf("#flash %q", got)
		}
		wantGuestHeader(t, doc)
		wantGuest(t, other.cart(), 0)
		wantCode(t, a.client(t).json(http.MethodPost, "/api/login", creds("deleter", alicePassword)), 401, "invalid_credentials")
	})
}

// slowSessionWrites is a real store whose writes of sessions (not of
// accounts) take a while: a request is still writing its session when
// another request of the session arrives.
type slowSessionWrites struct {
	session.Store
	delay time.Duration
}

func (s slowSessionWrites) CompareAndSwap(ctx context.Context, key string, old uint64, w session.Write) error {
	if strings.HasPrefix(key, "session:") {
		time.Sleep(s.delay)
	}
	return s.Store.CompareAndSwap(ctx, key, old, w)
}

// TestCartFormDuringLogout: a cart form of a logged-in session whose
// session is logged out while the form is answered is answered as what
// happened: 303 if the account's cart changed, a refusal (which changes
// nothing) if it did not.
func TestCartFormDuringLogout(t *testing.T) {
	t.Parallel()
	mem := memstore.New(memstore.Options{})
	t.Cleanup(func() { mem.Close() })
	a := newTestApp(t, withStore(slowSessionWrites{mem, 300 * time.Millisecond}))
	c := a.client(t)
	signUp(t, c, "alice", alicePassword)
	token := formToken(t, c, "/", "/cart/add")
	posted := make(chan *response)
	go func() {
		posted <- asOf(c, c.cookie).form("/cart/add", formValues("csrf_token", token, "product_id", "dune"))
	}()
	time.Sleep(150 * time.Millisecond) // the form is writing its flash
	if res := c.do(http.MethodPost, "/api/logout", ""); res.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", res.status, res.body)
	}
	res := <-posted
	got := logIn(t, a.client(t), "alice", alicePassword).quantity("dune")
	switch {
	case res.status == http.StatusSeeOther && got == 1, res.status != http.StatusSeeOther && got == 0:
	default:
		t.Errorf("the form was answered %d, and the account's cart has %d × dune: the answer does not say what happened", res.status, got)
	}
}
