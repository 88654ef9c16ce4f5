package main

import (
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/valyala/fasthttp"

	"tote/catalog"
	"tote/session"
	"tote/views"
)

// server holds what the handlers need.
type server struct {
	cat      *catalog.Catalog
	sessions *session.Manager
	secure   bool // COOKIE_SECURE
	log      *slog.Logger
	metrics  *metrics
	access   io.Writer // where request lines go, formatted by hand (see observe)

	// The start of each product's line in a cart's JSON (see sendCart);
	// the catalog does not change.
	itemHeads map[string][]byte
	shelf     *views.Shelf // the catalog page's books, rendered at start
}

// newServer returns tote's server. log takes tote's own lines; access takes
// one line per request, in the same JSON (see appendRequestLine).
func newServer(cat *catalog.Catalog, sessions *session.Manager, cfg config, log *slog.Logger, access io.Writer, m *metrics) (*server, error) {
	shelf, err := views.NewShelf(cat.Products())
	if err != nil {
		return nil, err
	}
	return &server{cat: cat, sessions: sessions, secure: cfg.secure, log: log, access: access, metrics: m,
		itemHeads: itemHeads(cat.Products()), shelf: shelf}, nil
}

// Limits of the HTTP server.
const (
	bodyLimit = 4 << 10 // the contract's 4 KiB: 4096 bytes pass, 4097 get 413
	// writeBuffer holds a whole catalog page (about 20 KB) with its
	// headers, so that the page is one write(2), not three.
	writeBuffer  = 32 << 10
	readTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	idleTimeout  = 60 * time.Second
)

// routes returns the Fiber app with every route and middleware:
//
//	GET  /healthz /readyz /metrics                   operations, no session
//	GET  /static/* /favicon.ico                      static files, no session
//	GET  /api/products /api/products/:id             catalog, no session
//	GET  /api/cart                                   reads the session
//	POST /api/cart/items                             changes the session
//	PUT|DELETE /api/cart/items/:id, DELETE /api/cart  changes the session
//	GET  / /products/:id /cart                       pages: count a visit
//	POST /cart/add /cart/update /cart/remove /cart/clear  forms: CSRF, 303 to /cart
//	anything else                                    404 (a page view for GET)
func (s *server) routes() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "tote",
		Views:                 views.Engine(),
		ErrorHandler:          s.handleError,
		BodyLimit:             bodyLimit,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		WriteBufferSize:       writeBuffer,
		DisableStartupMessage: true,
	})
	app.Use(s.observe, recover.New(), securityHeaders)

	app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok\n") })
	app.Get("/readyz", s.ready)
	app.Get("/metrics", s.metrics.handler())

	static := filesystem.New(filesystem.Config{Root: http.FS(views.Static()), MaxAge: 3600})
	app.Get("/favicon.ico", func(c *fiber.Ctx) error { c.Path("/favicon.ico"); return static(c) })
	app.Use("/static", static)

	api := app.Group("/api", jsonOnly)
	api.Get("/products", s.listProducts)
	api.Get("/products/:id", s.getProduct)
	api.Get("/cart", s.getCart)
	api.Post("/cart/items", s.addItem)
	api.Put("/cart/items/:id", s.setItem)
	api.Delete("/cart/items/:id", s.removeItem)
	api.Delete("/cart", s.clearCart)

	app.Get("/", s.catalogPage)
	app.Get("/products/:id", s.productPage)
	app.Get("/cart", s.cartPage)
	app.Post("/cart/add", s.formAdd)
	app.Post("/cart/update", s.formUpdate)
	app.Post("/cart/remove", s.formRemove)
	app.Post("/cart/clear", s.formClear)

	app.Use(s.notFound)
	warmUp(app)
	return app
}

// warmUp renders a page once before the app serves. Fiber v2 loads the
// templates and builds its list of mounted apps on the first Render, without
// a lock, so concurrent first requests race (go test -race sees it); and a
// broken template should stop tote at start, not fail its first visitor.
func warmUp(app *fiber.App) {
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	if err := c.Render("pages/error", views.Data{Unavailable: true, Title: "warm-up"}, views.Layout); err != nil {
		panic("tote: the embedded templates do not render: " + err.Error())
	}
}

// securityHeaders sets the headers every response carries. The policy allows
// only tote's own stylesheet and script: no inline script, no framing.
func securityHeaders(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	return c.Next()
}
