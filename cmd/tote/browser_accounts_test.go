package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// accounts is the journey of a person with an account, in two browsers
// (two separate browser contexts, each with its own cookies): sign up in
// one with a guest cart, log in in the other with a guest cart of its own,
// share the account's cart between them, then change the password, log
// out, log out everywhere and delete the account. With enhanced, the
// pages run app.js: the account forms still post (app.js leaves them
// alone), and the cart's forms go through the API.
func accounts(t *testing.T, ctx context.Context, base string, enhanced bool) {
	mode := "nojs"
	if enhanced {
		mode = "js"
	}
	// A unique name per run, 3..30 characters of a-z 0-9 _ . -.
	user := "alice-" + mode + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	const password, newPassword = "tote-Sesame-2468", "tote-Sesame-1357"

	a := newTab(t, ctx, base, enhanced, true) // the browser that signs up
	b := newTab(t, ctx, base, enhanced, true) // another browser, private: its own cookies

	// Each step runs with both tabs reporting to it; after a failed step
	// the rest are skipped, since each builds on the ones before.
	ok := true
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !ok {
			t.Run(name, func(t *testing.T) { t.Skip("an earlier step failed") })
			return
		}
		ok = t.Run(name, func(t *testing.T) {
			a.t, b.t = t, t
			f(t)
		})
	}

	// change submits a cart form of tb by clicking its button: in place
	// with JavaScript (done, a JS expression, holds and message is
	// announced), else by a post that lands on /cart with the flash.
	change := func(tb *tab, button, done, message string) {
		tb.t.Helper()
		if enhanced {
			tb.enhance(button, done)
			tb.waitFor(fmt.Sprintf(`document.getElementById("announce").textContent === %s`, js(message)))
			return
		}
		tb.follow(button, "/cart")
		tb.want("#flash", message)
	}
	count := func(n int) string {
		return fmt.Sprintf(`document.getElementById("cart-count").textContent === "%d"`, n)
	}
	// loggedIn checks the header of a logged-in visitor's page.
	loggedIn := func(tb *tab) {
		tb.t.Helper()
		tb.want("header .greeting", "Hello, "+user)
		tb.want("#user", user)
		if got := tb.eval(`document.getElementById("user")?.getAttribute("href")`); got != "/account" {
			tb.t.Errorf("%s: #user links to %q, want /account", tb.location(), got)
		}
		if !tb.has(`header form.logout[method=post][action="/logout"] input[name=csrf_token][value]:not([value=""])`) {
			tb.t.Errorf("%s: the header has no log-out form with a CSRF token", tb.location())
		}
		tb.want("header form.logout button", "Log out")
		if tb.has("#login-link, #signup-link") {
			tb.t.Errorf("%s: a logged-in visitor is offered to log in or sign up", tb.location())
		}
	}
	// guest checks the header of a guest's page.
	guest := func(tb *tab) {
		tb.t.Helper()
		if tb.has("#user, header form.logout") {
			tb.t.Errorf("%s: a guest's page greets %q or offers to log out", tb.location(), tb.text("#user"))
		}
		if tb.eval(`document.getElementById("login-link")?.getAttribute("href")`) != "/login" ||
			tb.eval(`document.getElementById("signup-link")?.getAttribute("href")`) != "/signup" {
			tb.t.Errorf("%s: a guest's page has no links to /login and /signup", tb.location())
		}
	}
	// noPasswordEchoed checks that no password field of the page holds a
	// value or was sent one.
	noPasswordEchoed := func(tb *tab) {
		tb.t.Helper()
		if got := tb.eval(`[...document.querySelectorAll("input[type=password]")].filter(e => e.value || e.hasAttribute("value")).map(e => e.id).join(",")`); got != "" {
			tb.t.Errorf("%s: the password fields %s are filled in", tb.location(), got)
		}
	}
	// fieldError checks that the message next to the field id is msg,
	// that the field is marked invalid and described by it, and that the
	// focus is on the field focus (a form sends no password back: the
	// focus goes to the first field to type again).
	fieldError := func(tb *tab, id, msg, focus string) {
		tb.t.Helper()
		if !tb.holds(fmt.Sprintf(`document.activeElement?.id === %s`, js(focus)), 2*time.Second) {
			tb.t.Errorf("%s: after the refusal the focus is on %q, want #%s", tb.location(), tb.eval(`document.activeElement?.id`), focus)
		}
		tb.want("#"+id+"-error", msg)
		got := tb.eval(fmt.Sprintf(`(f => f && [f.getAttribute("aria-invalid"), f.getAttribute("aria-describedby"),
			f.closest(".field") === document.getElementById(%s)?.closest(".field")].join(" "))(document.getElementById(%s))`, js(id+"-error"), js(id)))
		if want := "true " + id + "-error true"; got != want {
			tb.t.Errorf("%s: #%s: aria-invalid, aria-describedby, message in its .field: %q, want %q", tb.location(), id, got, want)
		}
	}
	visits := func(tb *tab) int {
		tb.t.Helper()
		var n int
		if _, err := fmt.Sscan(tb.text("#visit-count"), &n); err != nil {
			tb.t.Fatalf("%s: #visit-count %q", tb.location(), tb.text("#visit-count"))
		}
		return n
	}
	wantVisits := func(tb *tab, n int) {
		tb.t.Helper()
		if got := visits(tb); got != n {
			tb.t.Errorf("%s: %d visits, want %d", tb.location(), got, n)
		}
	}
	// transient checks that tb's session cookie ends with the browser.
	transient := func(tb *tab, when string) {
		tb.t.Helper()
		c := tb.cookie("session_id")
		switch {
		case c == nil:
			tb.t.Errorf("%s: no session_id cookie", when)
		case !c.Session || c.Expires > 0:
			tb.t.Errorf("%s, not remembered: session_id has Session %v, Expires %v; want a cookie that ends with the browser (Session, Expires -1)", when, c.Session, c.Expires)
		}
	}
	logIn := func(tb *tab, pw, next string) {
		tb.t.Helper()
		tb.setValue("#username", user)
		tb.setValue("#password", pw)
		tb.submit("#login button[type=submit]", next, 200)
		tb.want("#flash", "Welcome back, "+user+".")
		loggedIn(tb)
	}

	step("sign up with a guest cart", func(t *testing.T) {
		a.open("/")
		guest(a)
		change(a, "#book-kindred form.add button", count(1), "Added 1 × Kindred.")
		a.follow("#signup-link", "/signup")
		a.want("h1", "Sign up")
		guest(a)
		before := visits(a)

		// Two different passwords: the form again, 422, the message
		// next to the second field, the username kept.
		a.setValue("#username", user)
		a.setValue("#password", password)
		a.setValue("#password2", password+"x")
		a.submit("#signup button[type=submit]", "/signup", 422)
		fieldError(a, "password2", "The two passwords differ.", "password")
		if got := a.eval(`document.getElementById("password").getAttribute("aria-describedby")`); got != "password-hint password2-error" {
			t.Errorf("the first password field, focused, is described by %q, want the hint and the message", got)
		}
		a.wantValue("#username", user)
		noPasswordEchoed(a)
		if a.has("#form-alert") {
			t.Errorf("a refused sign-up shows an alert above the form: %q", a.text("#form-alert"))
		}
		guest(a)

		a.setValue("#password", password)
		a.setValue("#password2", password)
		a.submit("#signup button[type=submit]", "/", 200)
		a.want("#flash", "Welcome, "+user+".")
		loggedIn(a)
		a.want("#cart-count", "1") // the guest cart became the account's
		a.want("#cart-subtotal", "$15.99")
		wantVisits(a, before+1)
		if c := a.cookie("session_id"); c == nil || c.Session {
			t.Errorf("after a sign-up the session cookie is %+v, want one that outlives the browser", c)
		}
		a.follow(".cart-link", "/cart")
		if got := a.eval(`[...document.querySelectorAll("#cart tbody tr")].map(r => r.id).join(",")`); got != "line-kindred" {
			t.Errorf("the new account's cart: rows %q, want line-kindred", got)
		}
		for _, path := range []string{"/signup", "/login"} {
			a.open(path)
			if at := a.location(); at != "/account" {
				t.Errorf("a logged-in visitor who opens %s is at %s, want /account", path, at)
			}
		}
	})

	step("log in elsewhere with a guest cart of its own", func(t *testing.T) {
		b.open("/products/dune")
		change(b, "form.add button", count(1), "Added 1 × Dune.")
		b.open("/products/kindred")
		change(b, "form.add button", count(2), "Added 1 × Kindred.")
		b.open("/login?next=/cart")
		b.want("h1", "Log in")
		guest(b)
		guestID, guestToken := b.cookie("session_id"), b.value(`#login input[name=csrf_token]`)
		b.wantValue(`input[name="next"]`, "/cart")
		if b.eval(`document.getElementById("remember").checked ? "yes" : ""`) != "yes" {
			t.Error("the remember box is not ticked at first")
		}
		before := visits(b)

		// A wrong password: 401, the alert above the form, the
		// username kept, no password sent back.
		b.setValue("#username", user)
		b.setValue("#password", password+"x")
		b.submit("#login button[type=submit]", "/login", 401)
		b.want("#form-alert", "That username and password do not match an account.")
		if b.eval(`(a => a && a.getAttribute("role") === "alert" &&
			!!(a.compareDocumentPosition(document.querySelector("#login form")) & Node.DOCUMENT_POSITION_FOLLOWING))(document.getElementById("form-alert")) ? "yes" : ""`) != "yes" {
			t.Error("the message about the credentials is not in a role=alert region above the form")
		}
		if got := b.eval(`["username", "password"].map(id => document.getElementById(id).getAttribute("aria-describedby")).join(" ")`); got != "form-alert form-alert" {
			t.Errorf("the fields are described by %q, want both by the alert", got)
		}
		if !b.holds(`document.activeElement?.id === "password"`, 2*time.Second) {
			t.Errorf("after the refusal the focus is on %q, want #password", b.eval(`document.activeElement?.id`))
		}
		b.wantValue("#username", user)
		b.wantValue(`input[name="next"]`, "/cart")
		noPasswordEchoed(b)
		guest(b)

		// The right one, "remember me" unticked: to next, the merged cart.
		b.do("untick remember", chromedp.Click(chromedp.CSS("#remember")))
		if b.eval(`document.getElementById("remember").checked ? "yes" : ""`) != "" {
			t.Fatal("the remember box stays ticked")
		}
		b.setValue("#password", password)
		b.submit("#login button[type=submit]", "/cart", 200)
		b.want("#flash", "Welcome back, "+user+".")
		loggedIn(b)
		// The account's lines first, then the guest's new ones; a book in
		// both gets the sum.
		if got := b.eval(`[...document.querySelectorAll("#cart tbody tr")].map(r => r.id).join(",")`); got != "line-kindred,line-dune" {
			t.Errorf("the merged cart: rows %q, want line-kindred,line-dune", got)
		}
		b.wantValue("#qty-kindred", "2")
		b.wantValue("#qty-dune", "1")
		b.want("#cart-count", "3")
		b.want("#cart-subtotal", "$50.97")
		wantVisits(b, before+1)

		transient(b, "after the login")
		if c := b.cookie("session_id"); guestID != nil && c != nil && c.Value == guestID.Value {
			t.Error("the login kept the guest's session id")
		}
		if token := b.value(`header form.logout input[name=csrf_token]`); token == guestToken {
			t.Error("the login kept the guest's CSRF token")
		}
		b.open("/")
		loggedIn(b)
		transient(b, "after a later page view")
	})

	step("one cart for both browsers", func(t *testing.T) {
		b.open("/cart")
		b.setValue("#qty-dune", "3")
		change(b, "#line-dune form.update button", count(5), "Dune: quantity set to 3.")
		b.want("#cart-subtotal", "$88.95")
		b.want("#line-dune .line-total", "$56.97")
		change(b, "#line-kindred form.remove button", `!document.getElementById("line-kindred")`, "Removed Kindred.")
		b.want("#cart-count", "3")
		b.want("#cart-subtotal", "$56.97")

		a.open("/") // the other browser sees the changes
		loggedIn(a)
		a.want("#cart-count", "3")
		a.want("#cart-subtotal", "$56.97")
		change(a, "#book-earthsea form.add button", count(4), "Added 1 × A Wizard of Earthsea.")
		a.want("#cart-subtotal", "$67.96")
		if enhanced {
			a.want("#book-earthsea form.add + .note", "Added 1 × A Wizard of Earthsea. View your cart")
		}

		b.open("/cart")
		if got := b.eval(`[...document.querySelectorAll("#cart tbody tr")].map(r => r.id).join(",")`); got != "line-dune,line-earthsea" {
			t.Errorf("the shared cart: rows %q, want line-dune,line-earthsea", got)
		}
		b.want("#cart-count", "4")
		b.want("#cart-subtotal", "$67.96")
		transient(b, "after changes to the cart and page views")
	})

	step("the account page; change the password", func(t *testing.T) {
		a.follow("#user", "/account")
		a.want("h1", "Your account")
		a.want("#account-username", user)
		loggedIn(a)
		if since := a.eval(`document.querySelector("#member-since time")?.getAttribute("datetime")`); since[:min(len(since), 10)] != time.Now().UTC().Format("2006-01-02") {
			t.Errorf("member since %q, want today", since)
		}

		// The wrong current password: 401, the message next to it.
		a.setValue("#current_password", password+"x")
		a.setValue("#new_password", newPassword)
		a.setValue("#new_password2", newPassword)
		a.submit("#password-form button[type=submit]", "/account/password", 401)
		fieldError(a, "current_password", "That is not your password.", "current_password")
		noPasswordEchoed(a)
		loggedIn(a)

		old := a.cookie("session_id")
		a.setValue("#current_password", password)
		a.setValue("#new_password", newPassword)
		a.setValue("#new_password2", newPassword)
		a.submit("#password-form button[type=submit]", "/account", 200)
		a.want("#flash", "Your password is changed. Every other session of your account has ended.")
		loggedIn(a)
		if c := a.cookie("session_id"); old != nil && c != nil && c.Value == old.Value {
			t.Error("the password change kept the session id")
		} else if c != nil && c.Session {
			t.Error("the password change made a remembered login's cookie end with the browser")
		}

		// The other browser's next page is a guest's.
		b.open("/cart")
		guest(b)
		b.want("#cart-count", "0")
		if !b.has("#cart-empty") {
			t.Error("the ended session still shows the account's cart")
		}
	})

	step("log in with the new password, log out from the header", func(t *testing.T) {
		b.follow("#login-link", "/login")
		logIn(b, newPassword, "/")
		b.want("#cart-count", "4")
		old := b.cookie("session_id")

		b.follow("header form.logout button", "/")
		b.want("#flash", "You have logged out.")
		guest(b)
		b.want("#cart-count", "0")
		wantVisits(b, 1) // a fresh visit count
		if c := b.cookie("session_id"); old != nil && c != nil && c.Value == old.Value {
			t.Error("after the logout the browser still has the logged-in session id")
		}
		b.open("/")
		if b.has("#flash") {
			t.Errorf("the logout message is shown twice: %q", b.text("#flash"))
		}
	})

	step("log out everywhere", func(t *testing.T) {
		b.follow("#login-link", "/login")
		logIn(b, newPassword, "/")
		if c := b.cookie("session_id"); c == nil || c.Session || c.Expires <= float64(time.Now().Unix()) {
			t.Errorf("remembered: session_id is %+v, want one with an expiry", c)
		}

		a.open("/account")
		a.follow("#logout-everywhere button", "/")
		a.want("#flash", "You have logged out.")
		guest(a)
		a.want("#cart-count", "0")

		b.open("/")
		guest(b)
		b.want("#cart-count", "0")
	})

	step("delete the account", func(t *testing.T) {
		a.follow("#login-link", "/login")
		logIn(a, newPassword, "/")
		a.follow("#user", "/account")

		// The wrong password: 401, the message next to the field.
		a.setValue("#delete_password", password)
		a.submit("#delete-form button[type=submit]", "/account/delete", 401)
		fieldError(a, "delete_password", "That is not your password.", "delete_password")
		noPasswordEchoed(a)
		loggedIn(a)

		a.setValue("#delete_password", newPassword)
		a.submit("#delete-form button[type=submit]", "/", 200)
		a.want("#flash", "Your account is deleted. Thank you for shopping with us.")
		guest(a)
		a.want("#cart-count", "0")

		// The account is gone: its password opens nothing.
		a.follow("#login-link", "/login")
		a.setValue("#username", user)
		a.setValue("#password", newPassword)
		a.submit("#login button[type=submit]", "/login", 401)
		a.want("#form-alert", "That username and password do not match an account.")
		guest(a)

		a.open("/account") // a guest's: to the login
		if at := a.eval(`location.pathname + location.search`); at != "/login?next=/account" {
			t.Errorf("a guest who opens /account is at %s, want /login?next=/account", at)
		}
		a.wantValue(`input[name="next"]`, "/account")
	})
}
