// Package views holds tote's HTML templates and static files, embedded in the
// binary, and Context: the template context every page is rendered with
// (tote's Django "context processor").
package views

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"tote/cart"
	"tote/catalog"
)

//go:embed layouts pages
var templates embed.FS

//go:embed static
var static embed.FS

// Layout is the name of the layout every page is rendered in.
const Layout = "layouts/main"

// Templates returns the page and layout templates, by path: "pages/cart.html".
func Templates() fs.FS { return templates }

// Funcs returns the functions tote's templates call: money, plural, int64.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"money":  Money,
		"plural": plural,
		"int64":  func(n int) int64 { return int64(n) },
	}
}

// Renderer is tote's fiber.Views: every page of pages/, each parsed as the
// template "content" into its own clone of the layout, which shows it with
// {{template "content" .}}. The set is complete before the first render
// and never changes, so renders share it without a lock.
type Renderer struct {
	pages map[string]*template.Template // "pages/cart" -> the layout with that page
}

// NewRenderer parses the layout and every page, named by path without
// ".html" ("pages/cart").
func NewRenderer() (*Renderer, error) {
	layout, err := fs.ReadFile(templates, Layout+".html")
	if err != nil {
		return nil, fmt.Errorf("views: %w", err)
	}
	base, err := template.New(Layout).Funcs(Funcs()).Parse(string(layout))
	if err != nil {
		return nil, fmt.Errorf("views: %w", err)
	}
	files, err := fs.Glob(templates, "pages/*.html")
	if err != nil {
		return nil, fmt.Errorf("views: %w", err)
	}
	r := &Renderer{pages: make(map[string]*template.Template, len(files))}
	for _, file := range files {
		text, err := fs.ReadFile(templates, file)
		if err != nil {
			return nil, fmt.Errorf("views: %w", err)
		}
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("views: %w", err)
		}
		if _, err := t.New("content").Parse(string(text)); err != nil {
			return nil, fmt.Errorf("views: %s: %w", file, err)
		}
		r.pages[strings.TrimSuffix(file, ".html")] = t
	}
	return r, nil
}

// Load does nothing: NewRenderer has parsed every template. It makes
// Renderer a fiber.Views.
func (r *Renderer) Load() error { return nil }

// Render executes the page name with binding into w: in the layout when
// layout is Layout, or alone when it is empty. Fiber renders into a
// buffer, so a failed render writes nothing to the client.
func (r *Renderer) Render(w io.Writer, name string, binding any, layout ...string) error {
	t, ok := r.pages[name]
	if !ok {
		return fmt.Errorf("views: no page %s", name)
	}
	switch {
	case len(layout) == 0 || layout[0] == "":
		return t.ExecuteTemplate(w, "content", binding)
	case layout[0] == Layout && (len(layout) == 1 || layout[1] == ""):
		return t.Execute(w, binding)
	}
	return fmt.Errorf("views: no layout %q", layout)
}

// Static returns the static files (stylesheet, script, favicon), rooted so
// that "style.css" is the stylesheet.
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// Data is what a template is executed with. Context fills the fields every
// page shows; each handler adds only its page's own.
type Data struct {
	// Every page.
	Cart        cart.Summary // #cart-count, #cart-subtotal, the cart page
	Visits      int64        // #visit-count: num_visits, including this view
	Flash       Flash        // the one-time message left by the last form post
	CSRF        string       // the token each form carries
	User        string       // the logged-in username; "" for a guest
	Unavailable bool         // the session store could not be read: no cart to show

	// One page or another.
	Title   string
	Books   template.HTML // the catalog page's books (see Shelf)
	Product catalog.Product
	Status  int       // error pages
	Message string    // error pages
	Form    Form      // the sign-up, login and account forms
	Member  time.Time // the account page: when the account was made
}

// Form is what an account form shows again when it is refused: what the
// visitor typed (never a password) and the messages, next to the field
// each concerns or, for both fields, above the form.
type Form struct {
	Username string
	Remember bool
	Next     string            // where a login goes next: a local path
	Errors   map[string]string // by field name
	Alert    string            // about the whole form (bad credentials)
}

// Error returns the message about field, or "".
func (f Form) Error(field string) string { return f.Errors[field] }

// Flash is a one-time message at the top of a page.
type Flash struct {
	Message string
	Error   bool // the message reports a refused change
}

// Context returns the template context every page starts from: the
// visitor's cart priced against the catalog, their visit count with this
// view, the flash left for this view, the CSRF token their forms carry and
// their username ("" for a guest). It is the one place that decides what
// every page knows; the handlers read its arguments from the session.
func Context(sum cart.Summary, visits int64, flash Flash, csrf, user string) Data {
	return Data{Cart: sum, Visits: visits, Flash: flash, CSRF: csrf, User: user}
}

// Quantity returns how many copies of id are in the page's cart.
func (d Data) Quantity(id string) int {
	for _, l := range d.Cart.Lines {
		if l.Product.ID == id {
			return l.Quantity
		}
	}
	return 0
}

// MaxAdd returns how many more copies of p may be added to the page's cart.
func (d Data) MaxAdd(p catalog.Product) int {
	return max(0, min(p.Stock, cart.MaxQuantity)-d.Quantity(p.ID))
}

// MaxSet returns the largest quantity p's line may be set to.
func (d Data) MaxSet(p catalog.Product) int { return min(p.Stock, cart.MaxQuantity) }

var symbols = map[string]string{"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}

var zeroDecimal = map[string]bool{"JPY": true, "KRW": true}

// Money formats an amount of minor units: Money(123456, "USD") is
// "$1,234.56"; a currency without a known symbol is written after the
// amount ("1,234.56 CHF").
func Money(minor int64, currency string) string {
	var b strings.Builder
	if minor < 0 {
		b.WriteByte('-')
		minor = -minor
	}
	sym, known := symbols[currency]
	if known {
		b.WriteString(sym)
	}
	units, cents := minor/100, minor%100
	if zeroDecimal[currency] {
		units, cents = minor, -1
	}
	digits := strconv.FormatInt(units, 10)
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if cents >= 0 {
		b.WriteByte('.')
		if cents < 10 {
			b.WriteByte('0')
		}
		b.WriteString(strconv.FormatInt(cents, 10))
	}
	if !known {
		b.WriteByte(' ')
		b.WriteString(currency)
	}
	return b.String()
}

// plural returns "1 time", "3 times": n and the word in the right number.
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}
