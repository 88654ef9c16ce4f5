// Package views holds tote's HTML templates and static files, embedded in the
// binary, and Context: the template context every page is rendered with
// (tote's Django "context processor").
package views

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/template/parse"

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

// Engine returns tote's template engine for Fiber's Config.Views, with
// tote's template functions. Templates are named by their path without
// ".html": "pages/cart". A page rendered in a layout appears where the
// layout calls {{embed}}, executed with the same data.
func Engine() *Renderer {
	return &Renderer{fsys: templates, funcs: Funcs()}
}

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

// Renderer is a fiber.Views over html/template that renders concurrently.
//
// It replaces gofiber/template/html, which takes an exclusive lock around
// every render in a layout (it rebinds the layout's "embed" function to the
// page for each render) and so runs one render at a time however many cores
// there are. Renderer binds each page to each layout once, at Load: in a
// template set of its own, the layout's {{embed}} becomes {{template PAGE
// $}}, so that a render is one Execute of an escaped template and takes no
// lock of its own. The output is the same: the page, executed with the
// render's data, in place of {{embed}}.
type Renderer struct {
	fsys  fs.FS
	funcs template.FuncMap

	mu      sync.Mutex // held by Load and by the first render of a layout and page not seen at Load
	loaded  atomic.Bool
	sources map[string]string             // template name -> text
	pages   map[string]*template.Template // rendered alone; read-only after Load
	layouts sync.Map                      // layoutPage -> *template.Template
}

type layoutPage struct{ layout, page string }

// embedFunc is the name of the function a layout calls where the page goes.
const embedFunc = "embed"

// Load parses every template. Fiber calls it when the app is made; Render
// calls it if nobody did.
func (r *Renderer) Load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded.Load() {
		return nil
	}
	sources := map[string]string{}
	err := fs.WalkDir(r.fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".html") {
			return err
		}
		b, err := fs.ReadFile(r.fsys, path)
		if err != nil {
			return err
		}
		sources[strings.TrimSuffix(path, ".html")] = string(b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("views: %w", err)
	}
	set, err := r.parse(sources)
	if err != nil {
		return err
	}
	pages := map[string]*template.Template{}
	for name := range sources {
		pages[name] = set.Lookup(name)
	}
	r.sources, r.pages = sources, pages
	// Bind every page to every template that calls {{embed}} (the layouts).
	for layout := range sources {
		if !callsEmbed(set.Lookup(layout).Tree.Root) {
			continue
		}
		for page := range sources {
			if page == layout {
				continue
			}
			t, err := r.bind(layout, page)
			if err != nil {
				return err
			}
			r.layouts.Store(layoutPage{layout, page}, t)
		}
	}
	r.loaded.Store(true)
	return nil
}

// parse parses every template into one set, in which they can call each
// other with {{template}}.
func (r *Renderer) parse(sources map[string]string) (*template.Template, error) {
	set := template.New("").Funcs(r.funcs).Funcs(template.FuncMap{
		embedFunc: func() (template.HTML, error) { return "", errors.New("views: {{embed}} called outside a layout") },
	})
	for name, text := range sources {
		if _, err := set.New(name).Parse(text); err != nil {
			return nil, fmt.Errorf("views: %w", err)
		}
	}
	return set, nil
}

// bind returns the layout with page in place of its {{embed}}, in a
// template set of its own.
func (r *Renderer) bind(layout, page string) (*template.Template, error) {
	set, err := r.parse(r.sources)
	if err != nil {
		return nil, err
	}
	call, err := parse.Parse("call", "{{template "+strconv.Quote(page)+" $}}", "", "")
	if err != nil {
		return nil, fmt.Errorf("views: %w", err)
	}
	t := set.Lookup(layout)
	replaceEmbed(t.Tree.Root, call["call"].Root.Nodes[0])
	return t, nil
}

// Render executes the template name with binding into w, inside the layout
// if one is given. Fiber renders into a buffer, so a failed render writes
// nothing to the client.
func (r *Renderer) Render(w io.Writer, name string, binding any, layout ...string) error {
	if !r.loaded.Load() {
		if err := r.Load(); err != nil {
			return err
		}
	}
	var t *template.Template
	switch {
	case len(layout) == 0 || layout[0] == "":
		t = r.pages[name]
		if t == nil {
			return fmt.Errorf("views: template %s does not exist", name)
		}
	case len(layout) > 1 && layout[1] != "":
		return fmt.Errorf("views: one layout at a time, not %q", layout)
	default:
		v, ok := r.layouts.Load(layoutPage{layout[0], name})
		if !ok {
			var err error
			if v, err = r.bindLate(layout[0], name); err != nil {
				return err
			}
		}
		t = v.(*template.Template)
	}
	return t.Execute(w, binding)
}

// bindLate binds a layout and page that Load did not pair: a layout that
// does not call {{embed}} (the page is then not shown), or a name that is
// not a template, which is an error.
func (r *Renderer) bindLate(layout, page string) (*template.Template, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.layouts.Load(layoutPage{layout, page}); ok {
		return v.(*template.Template), nil
	}
	for _, name := range []string{layout, page} {
		if _, ok := r.sources[name]; !ok {
			return nil, fmt.Errorf("views: template %s does not exist", name)
		}
	}
	t, err := r.bind(layout, page)
	if err != nil {
		return nil, err
	}
	r.layouts.Store(layoutPage{layout, page}, t)
	return t, nil
}

// isEmbed reports whether n is the action {{embed}}.
func isEmbed(n parse.Node) bool {
	a, ok := n.(*parse.ActionNode)
	if !ok || len(a.Pipe.Decl) > 0 || len(a.Pipe.Cmds) != 1 || len(a.Pipe.Cmds[0].Args) != 1 {
		return false
	}
	id, ok := a.Pipe.Cmds[0].Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == embedFunc
}

// callsEmbed reports whether the tree under n has an {{embed}} action.
func callsEmbed(n parse.Node) bool {
	found := false
	walkLists(n, func(l *parse.ListNode) {
		for _, c := range l.Nodes {
			found = found || isEmbed(c)
		}
	})
	return found
}

// replaceEmbed replaces every {{embed}} action under n with call.
func replaceEmbed(n parse.Node, call parse.Node) {
	walkLists(n, func(l *parse.ListNode) {
		for i, c := range l.Nodes {
			if isEmbed(c) {
				l.Nodes[i] = call
			}
		}
	})
}

// walkLists calls fn for every list of nodes under n: the bodies of if,
// range and with, and their else branches.
func walkLists(n parse.Node, fn func(*parse.ListNode)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		fn(n)
		for _, c := range n.Nodes {
			walkLists(c, fn)
		}
	case *parse.IfNode:
		walkLists(n.List, fn)
		walkLists(n.ElseList, fn)
	case *parse.RangeNode:
		walkLists(n.List, fn)
		walkLists(n.ElseList, fn)
	case *parse.WithNode:
		walkLists(n.List, fn)
		walkLists(n.ElseList, fn)
	}
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
	Title   string
	Books   template.HTML // the catalog page's books (see Shelf)
	Product catalog.Product
	Status  int    // error pages
	Message string // error pages
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
