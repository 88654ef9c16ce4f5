package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The browser tests shop in tote with a real, headless Chromium (Debian's
// package "chromium"), driven through the DevTools protocol: once with
// JavaScript on, where views/static/app.js turns the forms into calls of the
// JSON API, and once with it off, where the forms post and redirect. Without
// Chromium they are skipped, except under CI=true, where that is a failure.

const journeyTimeout = 30 * time.Second

// chromiumPath returns the Chromium to drive, or skips the test (fails it
// under CI=true) when there is none.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("no chromium on PATH; CI needs it (Debian: apt-get install chromium)")
	}
	tb.Skip("no chromium on PATH (Debian: apt-get install chromium)")
	return ""
}

// startBrowser starts a headless Chromium with a fresh profile, for the rest
// of the test, and returns its context: each chromedp.NewContext of it is a
// tab.
func startBrowser(tb testing.TB) context.Context {
	tb.Helper()
	exe := chromiumPath(tb)
	// The profile is removed by hand: Chromium's helpers may still be writing
	// to it for a moment after the browser exits, which would fail t.TempDir's
	// cleanup.
	profile, err := os.MkdirTemp("", "tote-chromium-")
	if err != nil {
		tb.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container has no sandbox
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 800),
	)
	life, stop := context.WithTimeout(context.Background(), 3*time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	tb.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser to exit
		stop()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	if err := chromedp.Do(browser); err != nil {
		tb.Fatalf("starting %s: %v", exe, err)
	}
	return browser
}

// tab is one browser tab at tote.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	js   bool

	mu       sync.Mutex
	problems []string // console errors and exceptions
}

// accountForms are the pages that answer a refused account form again,
// with the status of the refusal.
var accountForms = map[string]bool{"/signup": true, "/login": true, "/account/password": true, "/account/delete": true}

// newTab opens a tab in parent's browser context or, with private, in a new
// browser context of its own (like a private window: its own cookies). With
// js false, the tab runs no script of the page.
func newTab(t *testing.T, parent context.Context, base string, js, private bool) *tab {
	t.Helper()
	var opts []chromedp.ContextOption
	if private {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, base: base, js: js}
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !js})
		return err
	})); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			// The browser logs each refused API call (422) as an error
			// of the network; the refusals are part of the journey.
			// So does it each call that the test blocks on purpose,
			// and each account form answered again as refused (a
			// wrong password: 401).
			refused := m.Source == "network" &&
				(strings.Contains(m.Text, "status of 422") || strings.Contains(m.Text, "ERR_BLOCKED_BY_CLIENT") ||
					strings.Contains(m.Text, "status of 401") && accountForms[strings.TrimPrefix(m.URL, base)])
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !refused {
				tb.mu.Lock()
				tb.problems = append(tb.problems, m.String())
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			t.Errorf("browser console: %s", p)
		}
	})
	return tb
}

func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// open loads path and waits for the page.
func (tb *tab) open(path string) {
	tb.t.Helper()
	res, err := chromedp.Run(tb.ctx, chromedp.NavigateResponse(tb.base+path))
	if err != nil || res.Status != 200 {
		tb.t.Fatalf("GET %s: %v %v", path, status(res), err)
	}
}

// follow clicks what sel selects, which must load a page (a link, or a
// form's button with JavaScript off), and checks that the page it ends on is
// path, answered 200.
func (tb *tab) follow(sel, path string) {
	tb.t.Helper()
	tb.submit(sel, path, 200)
}

// submit clicks what sel selects, which must load a page (a form's button,
// with JavaScript on or off, for a form that app.js leaves alone), and
// checks that the page it ends on is path, answered with code (a refused
// form is answered again with its status).
func (tb *tab) submit(sel, path string, code int64) {
	tb.t.Helper()
	res, err := chromedp.RunResponse(tb.ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil || res.Status != code {
		tb.t.Fatalf("click %s: %v %v; want %d", sel, status(res), err, code)
	}
	if got := strings.TrimPrefix(res.URL, tb.base); got != path {
		tb.t.Fatalf("click %s: at %s, want %s", sel, got, path)
	}
}

// cookie returns the browser's cookie name for the site, or nil.
func (tb *tab) cookie(name string) *network.Cookie {
	tb.t.Helper()
	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{tb.base + "/"}})
	if err != nil {
		tb.t.Fatalf("reading the cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// enhance clicks a form's button with JavaScript on, waits until cond (a JS
// expression) holds, and checks that the page did not navigate.
func (tb *tab) enhance(sel, cond string) {
	tb.t.Helper()
	before := tb.location()
	tb.eval(`window.toteMarker = "still here"`)
	tb.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
	tb.waitFor(cond)
	if tb.eval(`window.toteMarker`) != "still here" || tb.location() != before {
		tb.t.Fatalf("click %s: the page navigated to %s; want it to stay on %s", sel, tb.location(), before)
	}
}

// eval evaluates expr in the page (this works with the page's scripts off
// too) and returns its value as a string, "" for null or undefined.
func (tb *tab) eval(expr string) string {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[*string](expr))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if v == nil {
		return ""
	}
	return *v
}

// waitFor waits until the JS expression cond is true.
func (tb *tab) waitFor(cond string) {
	tb.t.Helper()
	var last error
	for {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		if err == nil && ok {
			return
		}
		last = err
		select {
		case <-tb.ctx.Done():
			tb.t.Fatalf("waiting for %s: %v (last error: %v)", cond, tb.ctx.Err(), last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// holds reports whether the JS expression cond is true within d (the
// browser does some things, such as autofocus, in a frame after the load).
func (tb *tab) holds(cond string, d time.Duration) bool {
	tb.t.Helper()
	for end := time.Now().Add(d); ; {
		if tb.eval("!!("+cond+") ? \"yes\" : \"\"") == "yes" {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (tb *tab) location() string { return tb.eval(`location.pathname`) }

// text returns the trimmed text of the first element sel selects, "" when
// there is none.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return tb.eval(fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? "").trim().replace(/\s+/g, " ")`, js(sel)))
}

func (tb *tab) has(sel string) bool {
	tb.t.Helper()
	return tb.eval(fmt.Sprintf(`document.querySelector(%s) ? "yes" : ""`, js(sel))) == "yes"
}

func (tb *tab) value(sel string) string {
	tb.t.Helper()
	return tb.eval(fmt.Sprintf(`document.querySelector(%s)?.value`, js(sel)))
}

func (tb *tab) setValue(sel, v string) {
	tb.t.Helper()
	tb.do("fill "+sel, chromedp.SetValue(chromedp.CSS(sel), v))
}

// want checks the text of sel.
func (tb *tab) want(sel, want string) {
	tb.t.Helper()
	if got := tb.text(sel); got != want {
		tb.t.Errorf("%s %s: %q, want %q", tb.location(), sel, got, want)
	}
}

// wantValue checks the value of the form field sel.
func (tb *tab) wantValue(sel, want string) {
	tb.t.Helper()
	if got := tb.value(sel); got != want {
		tb.t.Errorf("%s %s is %q, want %q", tb.location(), sel, got, want)
	}
}

// wantContains checks that the text of sel contains want.
func (tb *tab) wantContains(sel, want string) {
	tb.t.Helper()
	if got := tb.text(sel); !strings.Contains(got, want) {
		tb.t.Errorf("%s %s: %q, want it to contain %q", tb.location(), sel, got, want)
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func status(res *network.Response) string {
	if res == nil {
		return "no response"
	}
	return fmt.Sprintf("%d %s", res.Status, res.URL)
}

// within bounds a journey: every step of tabs opened on the returned
// context fails when it runs out.
func within(t *testing.T, browser context.Context) context.Context {
	ctx, cancel := context.WithTimeout(browser, journeyTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestBrowser(t *testing.T) {
	browser := startBrowser(t)
	in := startTote(t, map[string]string{"DATA_DIR": t.TempDir()})
	t.Run("shopping with JavaScript", func(t *testing.T) { shop(t, within(t, browser), in.base, true) })
	t.Run("shopping without JavaScript", func(t *testing.T) { shop(t, within(t, browser), in.base, false) })
	t.Run("accounts with JavaScript", func(t *testing.T) { accounts(t, within(t, browser), in.base, true) })
	t.Run("accounts without JavaScript", func(t *testing.T) { accounts(t, within(t, browser), in.base, false) })
	t.Run("screenshots", func(t *testing.T) { screenshots(t, within(t, browser), in.base) })
}

// shop is the journey of a person: browse, add, change, remove, hit the
// stock limit, clear, with a second, separate shopper in between.
func shop(t *testing.T, ctx context.Context, base string, enhanced bool) {
	p := newTab(t, ctx, base, enhanced, true)

	// act submits a cart form by clicking its button: in place with
	// JavaScript (checked by done, a JS expression, and by the message
	// announced in the live region), else by a post that lands on /cart with
	// the flash message.
	act := func(button, done, message string) {
		t.Helper()
		if enhanced {
			p.enhance(button, done)
			p.waitFor(fmt.Sprintf(`document.getElementById("announce").textContent === %s`, js(message)))
			return
		}
		p.follow(button, "/cart")
		p.want("#flash", message)
	}

	t.Run("browse the catalog", func(t *testing.T) {
		p.t = t
		p.open("/")
		p.want("h1", "Books")
		p.want("#cart-count", "0")
		p.want("#cart-subtotal", "$0.00")
		p.want("#visit-count", "1 time")
		if n := p.eval(`String(document.querySelectorAll(".books .book").length)`); n != "24" {
			t.Errorf("%s books listed, want 24", n)
		}
		p.want("#book-mrs-dalloway .stock", "Out of stock")
		if p.has("#book-mrs-dalloway form, #book-mrs-dalloway button") {
			t.Error("the out-of-stock book has an add form")
		}
		if !p.has(`script[src="/static/app.js"]`) {
			t.Error("the page does not load /static/app.js")
		}
		if ran := p.has("html.js"); ran != enhanced {
			t.Errorf("app.js ran: %v, want %v", ran, enhanced)
		}
	})

	t.Run("add from the catalog", func(t *testing.T) {
		p.t = t
		p.open("/")
		act("#book-kindred form.add button", `document.getElementById("cart-count").textContent === "1"`, "Added 1 × Kindred.")
		p.want("#cart-count", "1")
		p.want(".cart-link .unit", "item")
		p.want("#cart-subtotal", "$15.99")
		if enhanced {
			p.want("#book-kindred form.add + .note", "Added 1 × Kindred. View your cart")
		}
	})

	t.Run("open a book and add 2", func(t *testing.T) {
		p.t = t
		p.open("/")
		p.follow("#book-dune h2 a", "/products/dune")
		p.want("h1", "Dune")
		p.want("#stock", "20 copies in stock")
		if lbl := p.text(`label[for="quantity"]`); lbl != "Quantity" {
			t.Errorf("the quantity field's label is %q", lbl)
		}
		p.setValue("#quantity", "2")
		act("form.add button", `document.getElementById("cart-count").textContent === "3"`, "Added 2 × Dune.")
		p.want("#cart-count", "3")
		p.want(".cart-link .unit", "items")
		p.want("#cart-subtotal", "$53.97")
		if enhanced {
			p.want("#stock", "20 copies in stock, 2 in your cart")
			p.want("form.add + .note", "Added 2 × Dune. View your cart")
		}
	})

	t.Run("open the cart and change a quantity", func(t *testing.T) {
		p.t = t
		if enhanced {
			p.follow(".cart-link", "/cart")
		}
		p.want("h1", "Your cart")
		if got := p.eval(`[...document.querySelectorAll("#cart tbody tr")].map(r => r.id).join(",")`); got != "line-kindred,line-dune" {
			t.Errorf("cart rows %q, want line-kindred,line-dune", got)
		}
		p.wantValue("#qty-dune", "2")
		p.want("#cart-total", "$53.97")
		p.setValue("#qty-dune", "3")
		act("#line-dune form.update button", `document.getElementById("cart-count").textContent === "4"`, "Dune: quantity set to 3.")
		p.want("#line-dune .line-total", "$56.97")
		p.want("#cart-total", "$72.96")
		p.want("#cart-items", "4 items")
		p.want("#cart-subtotal", "$72.96")
		p.wantValue("#qty-dune", "3")
	})

	t.Run("remove a line", func(t *testing.T) {
		p.t = t
		act("#line-kindred form.remove button", `!document.getElementById("line-kindred")`, "Removed Kindred.")
		if p.has("#line-kindred") {
			t.Error("the removed line is still shown")
		}
		p.want("#cart-count", "3")
		p.want("#cart-total", "$56.97")
		if enhanced && p.eval(`document.activeElement === document.body ? "lost" : ""`) == "lost" {
			t.Error("the focus was lost with the removed line")
		}
	})

	t.Run("reload: the cart persists", func(t *testing.T) {
		p.t = t
		shown := p.text("#cart-subtotal")
		p.open("/cart")
		p.want("#cart-count", "3")
		p.want("#cart-subtotal", shown) // what the script drew is what the server renders
		p.wantValue("#qty-dune", "3")
		if p.has("#line-kindred") {
			t.Error("the removed line came back")
		}
	})

	t.Run("more than the stock", func(t *testing.T) {
		p.t = t
		const book, limit = "/products/parable-of-the-sower", "Only 2 copies of Parable of the Sower are in stock."
		p.open(book)
		if max := p.eval(`document.getElementById("quantity").max`); max != "2" {
			t.Errorf("the quantity field allows up to %s, want the stock, 2", max)
		}
		if enhanced {
			p.setValue("#quantity", "2")
			act("form.add button", `document.getElementById("cart-count").textContent === "5"`, "Added 2 × Parable of the Sower.")
			p.setValue("#quantity", "1")
			p.enhance("form.add button", `document.querySelector("form.add + .note-error")`)
			p.wantContains("form.add + .note-error", limit)
			p.waitFor(fmt.Sprintf(`document.getElementById("announce").textContent.startsWith(%s)`, js(limit)))
			if p.eval(`document.getElementById("quantity").getAttribute("aria-invalid")`) != "true" ||
				p.eval(`document.getElementById(document.getElementById("quantity").getAttribute("aria-describedby"))?.className`) != "note note-error" {
				t.Error("the quantity field is not marked invalid and described by the message")
			}
		} else {
			// A second tab, opened before the first adds: its form is the
			// one that goes over the stock.
			stale := newTab(t, p.ctx, base, false, false)
			stale.open(book)
			p.setValue("#quantity", "2")
			act("form.add button", "", "Added 2 × Parable of the Sower.")
			stale.setValue("#quantity", "1")
			stale.follow("form.add button", "/cart")
			stale.wantContains("#flash.flash-error", limit)
			p.open(book)
			if p.has("form.add") {
				t.Error("the book page offers to add more copies than the stock")
			}
		}
		p.want("#cart-count", "5")
	})

	t.Run("out of stock", func(t *testing.T) {
		p.t = t
		p.open("/products/mrs-dalloway")
		p.want("#stock", "Out of stock")
		if p.has("main form, main button") {
			t.Error("the out-of-stock book has a form or button")
		}
	})

	t.Run("a second shopper has a separate cart", func(t *testing.T) {
		p.t = t
		other := newTab(t, p.ctx, base, enhanced, true)
		other.open("/cart")
		if !other.has("#cart-empty") || other.has("#cart") {
			t.Error("a new browser context sees a cart")
		}
		other.want("#cart-count", "0")
		other.want("#visit-count", "1 time")
		p.open("/cart")
		p.want("#cart-count", "5")
	})

	t.Run("the session cookie is HttpOnly", func(t *testing.T) {
		p.t = t
		if c := p.eval(`document.cookie`); strings.Contains(c, "session_id") {
			t.Errorf("document.cookie shows the session: %q", c)
		}
		c := p.cookie("session_id")
		switch {
		case c == nil:
			t.Error("the browser has no session_id cookie")
		case !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax:
			t.Errorf("session_id: HttpOnly %v, SameSite %q; want HttpOnly, Lax", c.HTTPOnly, c.SameSite)
		}
	})

	if enhanced {
		t.Run("the API unreachable: the form posts", func(t *testing.T) {
			p.t = t
			block := func(on bool) {
				_, err := chromedp.Call(p.ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{
					URLPatterns: []*network.BlockPattern{{URLPattern: base + "/api/*", Block: on}},
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			p.open("/products/earthsea")
			block(true)
			defer block(false)
			p.follow("form.add button", "/cart")
			p.want("#flash", "Added 1 × A Wizard of Earthsea.")
			p.want("#cart-count", "6")
		})
	}

	t.Run("clear", func(t *testing.T) {
		p.t = t
		act("form.clear button", `document.getElementById("cart-empty")`, "Your cart is now empty.")
		if !p.has("#cart-empty") || p.has("#cart") || p.has("form.clear") {
			t.Error("the cart page does not show an empty cart")
		}
		p.want("#cart-count", "0")
		p.want("#cart-subtotal", "$0.00")
		p.open("/cart")
		if !p.has("#cart-empty") {
			t.Error("after a reload the cart is not empty")
		}
	})
}

// a11yCheck is a JS expression that lists what a page lacks: a language,
// one h1 and headings that skip no level, a label for each field, a name for
// each button and link, the elements that aria-describedby names, and
// enough contrast for each text (WCAG AA: 4.5:1, 3:1 for large text).
const a11yCheck = `(() => {
	const problems = [];
	if (!document.documentElement.lang) problems.push("no lang");
	const h1s = document.querySelectorAll("h1").length;
	if (h1s !== 1) problems.push(h1s + " h1 elements");
	let prev = 0;
	for (const h of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
		const level = Number(h.tagName[1]);
		if (level > prev + 1) problems.push(h.tagName + " after h" + prev);
		prev = level;
	}
	for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
		if (!el.labels.length && !el.getAttribute("aria-label")) problems.push("no label for " + (el.id || el.name));
	}
	for (const el of document.querySelectorAll("button, a")) {
		if (!el.textContent.trim()) problems.push("a " + el.tagName + " with no text");
	}
	for (const el of document.querySelectorAll("[aria-describedby]")) {
		for (const id of el.getAttribute("aria-describedby").split(/\s+/)) {
			if (!document.getElementById(id)) problems.push((el.id || el.tagName) + " described by a missing #" + id);
		}
	}
	// Contrast (WCAG AA) of each visible text against what is behind it:
	// the backgrounds of its ancestors, blended, and its opacity.
	const rgba = s => { const v = (s.match(/[\d.]+/g) || []).map(Number); return v.length < 3 ? null : [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
	const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
	const lum = c => c.slice(0, 3).map(v => (v /= 255) <= .03928 ? v / 12.92 : ((v + .055) / 1.055) ** 2.4)
		.reduce((s, v, i) => s + v * [.2126, .7152, .0722][i], 0);
	for (const el of document.querySelectorAll("body *")) {
		if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
		const r = el.getBoundingClientRect();
		if (r.width <= 1 || r.height <= 1 || !el.checkVisibility({visibilityProperty: true})) continue;
		const layers = [];
		let opacity = 1;
		for (let e = el; e; e = e.parentElement) {
			const st = getComputedStyle(e);
			opacity *= Number(st.opacity);
			const bg = rgba(st.backgroundColor);
			if (bg && bg[3] > 0 && layers.at(-1)?.[3] !== 1) layers.push(bg);
		}
		const bg = layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255, 1]);
		const st = getComputedStyle(el), fg = rgba(st.color);
		fg[3] *= opacity;
		const [hi, lo] = [lum(over(fg, bg)), lum(bg)].sort((x, y) => y - x);
		const ratio = (hi + .05) / (lo + .05);
		const size = parseFloat(st.fontSize), large = size >= 24 || size >= 18.66 && Number(st.fontWeight) >= 700;
		if (ratio < (large ? 3 : 4.5)) problems.push("contrast " + ratio.toFixed(2) + " of " + (el.id ? "#" + el.id : el.tagName.toLowerCase() + "." + el.className) + " " + JSON.stringify(el.textContent.trim().slice(0, 30)));
	}
	return problems.join("; ");
})()`

// headerOverflow is a JS expression that lists what of the page's header
// sticks out of the window, or is cut off. The window is the root
// element's client width: on a phone window.innerWidth grows with a page
// that is too wide.
const headerOverflow = `[...document.querySelectorAll("header.site *")].filter(e => {
	const r = e.getBoundingClientRect();
	return r.width > 0 && (r.left < 0 || r.right > document.documentElement.clientWidth || e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== "visible");
}).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "")).join(", ")`

// screenshots saves the home, product, cart and account pages (sign-up,
// login, the account, the header of a logged-in visitor) at a phone's and
// a desktop's size in testdata/out (git ignores it), and checks that no
// page, nor its header, is wider than the window, and a11yCheck.
func screenshots(t *testing.T, ctx context.Context, base string) {
	dir := filepath.Join("testdata", "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newTab(t, ctx, base, true, true)
	// A cart with a long title, an expensive line and a quantity error.
	p.open("/products/one-hundred-years-of-solitude")
	p.setValue("#quantity", "8")
	p.enhance("form.add button", `document.getElementById("cart-count").textContent === "8"`)
	p.open("/products/invisible-cities")
	p.enhance("form.add button", `document.getElementById("cart-count").textContent === "9"`)
	p.open("/products/the-master-and-margarita")
	p.setValue("#quantity", "2")
	p.enhance("form.add button", `document.getElementById("cart-count").textContent === "11"`)

	// A second browser, logged in to an account with the longest name
	// there may be, to see that the greeting fits on a phone.
	const user, password = "maximilian.featherstonehaugh-3", "tote-Sesame-2468"
	u := newTab(t, ctx, base, true, true)
	u.open("/products/one-hundred-years-of-solitude")
	u.enhance("form.add button", `document.getElementById("cart-count").textContent === "1"`)
	u.open("/signup")
	u.setValue("#username", user)
	u.setValue("#password", password)
	u.setValue("#password2", password)
	u.submit("#signup button[type=submit]", "/", 200)

	sizes := []struct {
		name          string
		width, height int64
		mobile        bool
	}{
		{"phone", 390, 844, true},
		{"desktop", 1280, 800, false},
	}
	pages := []struct {
		name, path, setup string
		user              bool // the page of the logged-in browser
	}{
		{"home", "/", "", false},
		{"home-added", "/", "add", false},
		{"product", "/products/the-master-and-margarita", "", false},
		{"product-error", "/products/the-master-and-margarita", "error", false},
		{"cart", "/cart", "focus", false},
		{"signup", "/signup", "", false},
		{"signup-error", "/signup", "signup-error", false},
		{"login-alert", "/login?next=/cart", "login-alert", false},
		{"home-user", "/", "", true},
		{"account", "/account", "", true},
		{"account-error", "/account", "delete-error", true},
	}
	for _, size := range sizes {
		opts := []chromedp.EmulateViewportOption{}
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		p.do("resize", chromedp.EmulateViewport(size.width, size.height, opts...))
		u.do("resize", chromedp.EmulateViewport(size.width, size.height, opts...))
		for _, pg := range pages {
			p := p
			if pg.user {
				p = u
			}
			p.t = t
			p.open(pg.path)
			switch pg.setup {
			case "add": // the message next to the button
				n := p.text("#cart-count")
				p.enhance("#book-dune form.add button", `document.getElementById("cart-count").textContent !== `+js(n))
			case "error": // 2 of 4 in the cart; a stale page asks for 3 more
				p.do("fill", chromedp.SetJavascriptAttribute(chromedp.CSS("#quantity"), "max", "99"))
				p.setValue("#quantity", "3")
				p.enhance("form.add button", `document.querySelector("form.add + .note-error")`)
			case "focus": // from a quantity field, Tab to its Update button
				p.do("focus", chromedp.Focus(chromedp.CSS("#qty-invisible-cities")), chromedp.KeyEvent("\t"))
				if got := p.eval(`(e => e.matches(":focus-visible") && getComputedStyle(e).outlineStyle + " " + getComputedStyle(e).outlineWidth)(document.activeElement)`); got != "solid 3px" {
					t.Errorf("%s: the focused Update button shows %q, want a solid 3px outline", size.name, got)
				}
			case "signup-error": // the passwords differ
				p.setValue("#username", "alice")
				p.setValue("#password", password)
				p.setValue("#password2", password+"x")
				p.submit("#signup button[type=submit]", "/signup", 422)
			case "login-alert": // a wrong password
				p.setValue("#username", user)
				p.setValue("#password", password+"x")
				p.submit("#login button[type=submit]", "/login", 401)
			case "delete-error": // a wrong password, at the foot of the page
				p.setValue("#delete_password", password+"x")
				p.submit("#delete-form button[type=submit]", "/account/delete", 401)
				if !p.holds(`document.activeElement.id === "delete_password" && document.getElementById("delete_password-error").getBoundingClientRect().bottom <= window.innerHeight`, 2*time.Second) {
					t.Errorf("%s: after a refused deletion the field and its message are not in view, with the focus", size.name)
				}
			}
			if out := p.eval(headerOverflow); out != "" {
				t.Errorf("%s at %s: the header does not fit the window: %s", pg.name, size.name, out)
			}
			if problems := p.eval(a11yCheck); problems != "" {
				t.Errorf("%s at %s: %s", pg.name, size.name, problems)
			}
			// Not window.innerWidth: on a phone the browser widens the
			// layout viewport to the content, so that would always fit.
			if w := p.eval(`String(document.documentElement.scrollWidth - document.documentElement.clientWidth)`); w != "0" {
				t.Errorf("%s at %s: the page is %s px wider than the window", pg.name, size.name, w)
			}
			shot, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, pg.name+"-"+size.name)
			if err := os.WriteFile(name+".png", shot, 0o644); err != nil {
				t.Fatal(err)
			}
			if p.eval(`document.documentElement.scrollHeight > window.innerHeight ? "long" : ""`) == "long" {
				full, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)) // quality 100: a PNG
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(name+"-full.png", full, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Logf("screenshots in %s", dir)
}
