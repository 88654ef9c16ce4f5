package main

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/session"
	"github.com/gofiber/storage/redis/v3"
	"github.com/gofiber/template/html/v2"
	"github.com/valyala/fasthttp"

	"tote/cart"
	"tote/catalog"
	"tote/views"
)

// naiveConfig is what the naive baseline serves with: the -naive-* flags.
type naiveConfig struct {
	store     string // "memory" or "redis"
	redisAddr string // HOST:PORT of the redis store; required with it
	catalog   string // a catalog file, as tote's CATALOG_FILE; "": the embedded one
	readSave  bool   // GET /api/cart saves the session too, as every request does
}

// servedPath is where the naive baseline answers how many requests it has
// served, not counting these. It is the benchmark's instrumentation (one
// atomic add per request), not part of the naive design; tote's count comes
// from its /metrics.
const servedPath = "/totebench/served"

// naive is the second baseline: the shopping cart as a first Fiber v2 app
// would write it, against which tote's p99 latency is compared (issue 5).
// Fiber's stock middleware/session keeps the session in memory or in Redis
// (gofiber/storage/redis/v3) and gob-encodes the whole session map, with a
// fresh encoder, on every Save; the cart is a map[string]int under one key
// of the session, next to num_visits. Every request that uses the session
// calls store.Get and then sess.Save, reads included (unless
// -naive-read-save=false), and nothing stops two
// requests of one session from overwriting each other's changes. JSON goes
// through c.BodyParser and c.JSON (encoding/json), and the catalog page
// through gofiber/template/html over tote's own templates, with
// html/template executing every book of it on every view.
//
// It serves what totebench sends: POST /api/cart/items, PUT
// /api/cart/items/:id, GET /api/cart and GET /. The catalog page's forms
// carry no CSRF token (the naive session holds none), and nothing answers
// them.
type naive struct {
	cat      *catalog.Catalog
	store    *session.Store
	readSave bool
	served   atomic.Int64
}

// The session's keys.
const (
	naiveCartKey   = "cart"       // map[string]int: product id -> quantity
	naiveVisitsKey = "num_visits" // int
)

// serveNaive serves the naive baseline on addr until SIGTERM or SIGINT.
func serveNaive(addr string, cfg naiveConfig) error {
	app, err := newNaive(cfg)
	if err != nil {
		return err
	}
	return serve(app, addr)
}

// newNaive returns the naive baseline's app.
func newNaive(cfg naiveConfig) (*fiber.App, error) {
	cat := catalog.Default()
	if cfg.catalog != "" {
		f, err := os.Open(cfg.catalog)
		if err != nil {
			return nil, err
		}
		cat, err = catalog.Load(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.catalog, err)
		}
	}

	sc := session.Config{
		KeyLookup:      "cookie:session_id",
		Expiration:     14 * 24 * time.Hour,
		CookieHTTPOnly: true,
		CookieSameSite: "Lax",
	}
	switch cfg.store {
	case "memory":
		// session.New's default: Fiber's in-memory storage.
	case "redis":
		host, port, err := splitHostPort(cfg.redisAddr)
		if err != nil {
			return nil, err
		}
		// Never Reset: that would FLUSHDB.
		sc.Storage = redis.New(redis.Config{Host: host, Port: port})
	default:
		return nil, fmt.Errorf("unknown store %q (want memory or redis)", cfg.store)
	}
	n := &naive{cat: cat, store: session.New(sc), readSave: cfg.readSave}
	n.store.RegisterType(map[string]int{})

	templates, err := gofiberTemplates()
	if err != nil {
		return nil, err
	}
	engine := html.NewFileSystem(http.FS(templates), ".html")
	engine.AddFuncMap(views.Funcs())
	app := fiber.New(fiber.Config{Views: engine, DisableStartupMessage: true})
	app.Get(servedPath, func(c *fiber.Ctx) error { return c.SendString(strconv.FormatInt(n.served.Load(), 10)) })
	app.Use(func(c *fiber.Ctx) error {
		err := c.Next()
		n.served.Add(1)
		return err
	})
	app.Post("/api/cart/items", n.addItem)
	app.Put("/api/cart/items/:id", n.setItem)
	app.Get("/api/cart", n.getCart)
	app.Get("/", n.catalogPage)

	// Fiber v2 sets itself up for rendering on the first Render, without a
	// lock: render once before serving (as tote does), which also fails
	// here if the templates do not render.
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	if err := c.Render("pages/catalog", n.page(nil, 0), views.Layout); err != nil {
		return nil, fmt.Errorf("tote's templates do not render: %w", err)
	}
	return app, nil
}

// splitHostPort parses the -naive-redis address. There is no default: the
// benchmark always gives the private redis-server it started.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("-naive-redis %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || host == "" {
		return "", 0, fmt.Errorf("-naive-redis %q: want HOST:PORT", addr)
	}
	if port == 6379 {
		return "", 0, errors.New("-naive-redis: refusing port 6379, where a Redis of someone else's may run; give the benchmark's private redis-server")
	}
	return host, port, nil
}

// naiveError answers {"error":{"code":...,"message":...}}, as tote does.
func naiveError(c *fiber.Ctx, status int, code, message string) error {
	return c.Status(status).JSON(fiber.Map{"error": fiber.Map{"code": code, "message": message}})
}

// cartOf returns the session's cart and visits.
func cartOf(sess *session.Session) (map[string]int, int) {
	items, _ := sess.Get(naiveCartKey).(map[string]int)
	if items == nil {
		items = map[string]int{}
	}
	visits, _ := sess.Get(naiveVisitsKey).(int)
	return items, visits
}

// naiveCart is the cart's JSON, shaped like tote's.
type naiveCart struct {
	Items     []naiveItem `json:"items"`
	ItemCount int         `json:"item_count"`
	Subtotal  int64       `json:"subtotal"`
	Currency  string      `json:"currency"`
	Visits    int         `json:"visits"`
}

type naiveItem struct {
	ProductID string `json:"product_id"`
	Title     string `json:"title"`
	UnitPrice int64  `json:"unit_price"`
	Quantity  int    `json:"quantity"`
	LineTotal int64  `json:"line_total"`
}

// price prices the cart against the catalog, its lines in the order of
// their product ids (a map keeps none).
func (n *naive) price(items map[string]int) cart.Summary {
	ids := make([]string, 0, len(items))
	for id := range items {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	s := cart.Summary{Currency: n.cat.Currency(), Lines: make([]cart.PricedLine, 0, len(ids))}
	for _, id := range ids {
		p, err := n.cat.Product(id)
		if err != nil {
			continue
		}
		l := cart.PricedLine{Product: p, Quantity: items[id], LineTotal: p.Price * int64(items[id])}
		s.Lines = append(s.Lines, l)
		s.ItemCount += l.Quantity
		s.Subtotal += l.LineTotal
	}
	return s
}

// sendCart answers the cart as JSON.
func (n *naive) sendCart(c *fiber.Ctx, items map[string]int, visits int) error {
	s := n.price(items)
	out := naiveCart{Items: make([]naiveItem, 0, len(s.Lines)), ItemCount: s.ItemCount, Subtotal: s.Subtotal, Currency: s.Currency, Visits: visits}
	for _, l := range s.Lines {
		out.Items = append(out.Items, naiveItem{ProductID: l.Product.ID, Title: l.Product.Title, UnitPrice: l.Product.Price, Quantity: l.Quantity, LineTotal: l.LineTotal})
	}
	return c.JSON(out)
}

// setLine sets the product's line to qty (0 removes it) after tote's checks
// (a line holds 1..99 copies, never more than the stock; at most 50 lines),
// saves the session and answers the cart.
func (n *naive) setLine(c *fiber.Ctx, sess *session.Session, items map[string]int, visits int, p catalog.Product, qty int) error {
	switch {
	case qty < 0 || qty > cart.MaxQuantity:
		return naiveError(c, fiber.StatusUnprocessableEntity, "invalid_quantity", fmt.Sprintf("A line holds 1 to %d copies.", cart.MaxQuantity))
	case qty > p.Stock:
		return naiveError(c, fiber.StatusUnprocessableEntity, "insufficient_stock", fmt.Sprintf("Only %d copies of %s are in stock.", p.Stock, p.Title))
	case qty > 0 && items[p.ID] == 0 && len(items) >= cart.MaxLines:
		return naiveError(c, fiber.StatusUnprocessableEntity, "cart_full", fmt.Sprintf("A cart holds at most %d different books.", cart.MaxLines))
	}
	if qty == 0 {
		delete(items, p.ID)
	} else {
		items[p.ID] = qty
	}
	sess.Set(naiveCartKey, items)
	if err := sess.Save(); err != nil { // sess is not to be used after Save
		return naiveError(c, fiber.StatusServiceUnavailable, "storage_unavailable", err.Error())
	}
	return n.sendCart(c, items, visits)
}

// POST /api/cart/items {"product_id": "x", "quantity": 2}
func (n *naive) addItem(c *fiber.Ctx) error {
	var body struct {
		ProductID string `json:"product_id"`
		Quantity  *int   `json:"quantity"`
	}
	if err := c.BodyParser(&body); err != nil || body.ProductID == "" {
		return naiveError(c, fiber.StatusBadRequest, "invalid_request", "The body needs \"product_id\" and may have \"quantity\".")
	}
	qty := 1
	if body.Quantity != nil {
		qty = *body.Quantity
	}
	p, err := n.cat.Product(body.ProductID)
	if err != nil {
		return naiveError(c, fiber.StatusNotFound, "product_not_found", err.Error())
	}
	if qty < 1 {
		return naiveError(c, fiber.StatusUnprocessableEntity, "invalid_quantity", fmt.Sprintf("Add 1 to %d copies.", cart.MaxQuantity))
	}
	sess, err := n.store.Get(c)
	if err != nil {
		return naiveError(c, fiber.StatusServiceUnavailable, "storage_unavailable", err.Error())
	}
	items, visits := cartOf(sess)
	return n.setLine(c, sess, items, visits, p, items[p.ID]+qty)
}

// PUT /api/cart/items/:id {"quantity": N}
func (n *naive) setItem(c *fiber.Ctx) error {
	var body struct {
		Quantity *int `json:"quantity"`
	}
	if err := c.BodyParser(&body); err != nil || body.Quantity == nil {
		return naiveError(c, fiber.StatusBadRequest, "invalid_request", "The body needs \"quantity\".")
	}
	p, err := n.cat.Product(c.Params("id"))
	if err != nil {
		return naiveError(c, fiber.StatusNotFound, "product_not_found", err.Error())
	}
	sess, err := n.store.Get(c)
	if err != nil {
		return naiveError(c, fiber.StatusServiceUnavailable, "storage_unavailable", err.Error())
	}
	items, visits := cartOf(sess)
	return n.setLine(c, sess, items, visits, p, *body.Quantity)
}

// GET /api/cart. It saves the session too, as every request does in the
// naive design (a new visitor's read stores a new session), unless
// readSave is off.
func (n *naive) getCart(c *fiber.Ctx) error {
	sess, err := n.store.Get(c)
	if err != nil {
		return naiveError(c, fiber.StatusServiceUnavailable, "storage_unavailable", err.Error())
	}
	items, visits := cartOf(sess)
	if !n.readSave {
		return n.sendCart(c, items, visits)
	}
	if err := sess.Save(); err != nil {
		return naiveError(c, fiber.StatusServiceUnavailable, "storage_unavailable", err.Error())
	}
	return n.sendCart(c, items, visits)
}

// GET /: counts a visit and renders tote's catalog page.
func (n *naive) catalogPage(c *fiber.Ctx) error {
	sess, err := n.store.Get(c)
	if err != nil {
		return c.Status(fiber.StatusServiceUnavailable).SendString("The cart is unavailable right now.")
	}
	items, visits := cartOf(sess)
	visits++
	sess.Set(naiveVisitsKey, visits)
	if err := sess.Save(); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).SendString("The cart is unavailable right now.")
	}
	return c.Render("pages/catalog", n.page(items, visits), views.Layout)
}

// page returns the catalog page's data: what views.Context gives every
// page (the cart, the visits; no flash, no CSRF token), the title, and
// the books.
func (n *naive) page(items map[string]int, visits int) naivePage {
	return naivePage{Data: views.Data{Cart: n.price(items), Visits: int64(visits), Title: "Books"}, products: n.cat.Products()}
}

// naivePage is the catalog page's binding. Its Books method takes the
// place of the views.Data field of that name: the page's {{.Books}} calls
// it while the page is executed, so that each book is executed by
// html/template then, within the engine's render (which holds the
// engine's exclusive lock for a page in a layout), as it would be by a
// page that ranged over the catalog itself. tote renders the books once,
// at start (views.Shelf).
type naivePage struct {
	views.Data
	products []catalog.Product
}

// Books renders every book of the catalog, as views.Book renders it.
func (p naivePage) Books() (template.HTML, error) {
	var b strings.Builder
	for _, pr := range p.products {
		h, err := views.Book(pr, p.Data)
		if err != nil {
			return "", err
		}
		b.WriteString(string(h))
	}
	return template.HTML(b.String()), nil
}

// gofiberTemplates returns tote's templates as gofiber/template/html wants
// them: its layouts show the page where they call {{embed}}, not where
// tote's calls {{template "content" .}}.
func gofiberTemplates() (fs.FS, error) {
	out := fstest.MapFS{}
	err := fs.WalkDir(views.Templates(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(views.Templates(), path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(path, "layouts/") {
			b = bytes.ReplaceAll(b, []byte(`{{template "content" .}}`), []byte("{{embed}}"))
		}
		out[path] = &fstest.MapFile{Data: b}
		return nil
	})
	return out, err
}
