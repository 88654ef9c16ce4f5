// Package views holds tote's HTML templates and static files, embedded in the
// binary, and Context: the template context every page is rendered with
// (tote's Django "context processor").
package views

import (
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/template/html/v2"

	"tote/cart"
	"tote/catalog"
	"tote/session"
)

//go:embed layouts pages
var templates embed.FS

//go:embed static
var static embed.FS

// Layout is the name of the layout every page is rendered in.
const Layout = "layouts/main"

// Engine returns the template engine for Fiber's Config.Views, with tote's
// template functions. Templates are named by their path without ".html":
// "pages/cart".
func Engine() *html.Engine {
	e := html.NewFileSystem(http.FS(templates), ".html")
	e.AddFuncMap(map[string]any{
		"money":  Money,
		"plural": plural,
		"int64":  func(n int) int64 { return int64(n) },
	})
	return e
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
	Cart        cart.Summary  // #cart-count, #cart-subtotal, the cart page
	Visits      int64         // #visit-count: num_visits, including this view
	Flash       session.Flash // the one-time message left by the last form post
	CSRF        string        // the token each form carries
	Unavailable bool          // the session store could not be read: no cart to show

	// One page or another.
	Title    string
	Products []catalog.Product
	Product  catalog.Product
	Status   int    // error pages
	Message  string // error pages
}

// Context returns the template context of a page shown with session data d:
// the cart priced against cat, the visit count, the flash and the CSRF token.
// It is the one place that decides what every page knows.
func Context(cat *catalog.Catalog, d *session.Data) Data {
	return Data{
		Cart:   d.Cart.Price(cat),
		Visits: d.Visits,
		Flash:  d.Flash,
		CSRF:   d.CSRF,
	}
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
