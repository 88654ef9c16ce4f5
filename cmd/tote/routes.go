package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/valyala/fasthttp"

	"tote/account"
	"tote/catalog"
	"tote/session"
	"tote/views"
)

// server holds what the handlers need.
type server struct {
	cat        *catalog.Catalog
	sessions   *session.Manager
	accounts   *account.Store
	budget     *budget // new sessions per client (NEW_SESSIONS_PER_IP)
	proxies    proxies // TRUSTED_PROXIES
	connsPerIP int     // MAX_CONNS_PER_IP
	origins    *http.CrossOriginProtection
	inflight   inFlight  // Idempotency-Keys of requests being answered
	ln         *listener // set by listen
	secure     bool      // COOKIE_SECURE
	log        *slog.Logger
	metrics    *metrics
	access     io.Writer // where request lines go, formatted by hand (see observe)

	shelf *views.Shelf    // the catalog page's books, rendered at start
	pages *views.Renderer // the templates, parsed at start
	docs  *apiDoc         // the API's document, for GET /api/docs
}

// newServer returns tote's server. log takes tote's own lines; access takes
// one line per request, in the same JSON (see appendRequestLine).
func newServer(cat *catalog.Catalog, sessions *session.Manager, cfg config, log *slog.Logger, access io.Writer, m *metrics) (*server, error) {
	shelf, err := views.NewShelf(cat.Products())
	if err != nil {
		return nil, err
	}
	pages, err := views.NewRenderer()
	if err != nil {
		return nil, err
	}
	docs, err := loadDocs()
	if err != nil {
		return nil, err
	}
	hasher := account.NewHasher(account.HasherOptions{Cost: cfg.hashCost, Queue: cfg.hashQueue, Concurrency: max(1, runtime.GOMAXPROCS(0)/2)})
	return &server{cat: cat, sessions: sessions, accounts: account.NewStore(sessions, hasher),
		budget: newBudget(cfg.newPerIP), proxies: cfg.proxies, connsPerIP: cfg.connsPerIP, origins: http.NewCrossOriginProtection(),
		secure: cfg.secure, log: log, access: access, metrics: m, shelf: shelf, pages: pages, docs: docs}, nil
}

// Limits of the HTTP server.
const (
	bodyLimit = 4 << 10 // the contract's 4 KiB: 4096 bytes pass, 4097 get 413
	// readLimit is the body fasthttp reads before it refuses a request on
	// its own: larger than bodyLimit, so that a body over bodyLimit is
	// refused by limitBody, after the cross-site check the contract puts
	// first; a body over readLimit is refused (413) before routing.
	readLimit = 64 << 10
	// readBuffer holds the request line and headers: browsers with many
	// cookies send more than fasthttp's default of 4 KiB. Up to 16 KiB of
	// headers pass; more is 431.
	readBuffer = 16<<10 + 1<<10
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
//	GET  /api/cart                                   reads the session (and account)
//	POST /api/cart/items                             changes the cart
//	PUT|DELETE /api/cart/items/:id, DELETE /api/cart  changes the cart
//	POST /api/account, GET|DELETE /api/account       sign up, the account, delete it
//	PUT  /api/account/password                       change the password
//	POST /api/login /api/logout                      log in (a new session), log out (deleted)
//	GET  /api/openapi.json /api/docs                 the API's description
//	GET  / /products/:id /cart                       pages: count a visit
//	POST /cart/add /cart/update /cart/remove /cart/clear  forms: CSRF, 303 to /cart
//	GET|POST /signup /login, POST /logout            account forms: CSRF
//	GET  /account, POST /account/password /account/delete
//	anything else                                    404 (a page view for GET)
//
// Every POST, PUT and DELETE under /api/ is refused when it comes from
// another site (crossSite), before its body's size is checked (limitBody);
// the cart's changes then check If-Match and Idempotency-Key (conditions)
// before anything else.
func (s *server) routes() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "tote",
		Views:                 s.pages,
		ErrorHandler:          s.handleError,
		BodyLimit:             readLimit,
		ReadBufferSize:        readBuffer,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		WriteBufferSize:       writeBuffer,
		Concurrency:           maxConnections(),
		DisableStartupMessage: true,
	})
	// fasthttp's own settings: connections per client address, and the
	// answer to a request refused before it is routed.
	app.Server().MaxConnsPerIP = s.connsPerIP
	app.Server().ErrorHandler = s.refuseEarly
	// fasthttp says, at most once a minute each, that it refused
	// connections past Concurrency or MaxConnsPerIP; Fiber silences it.
	app.Server().Logger = serverLog{s.log}

	app.Use(s.observe, recover.New(), securityHeaders, framing, s.crossSite, limitBody)

	app.Get("/healthz", healthy)
	app.Get("/readyz", s.ready)
	app.Get("/metrics", s.metrics.handler())

	static := filesystem.New(filesystem.Config{Root: http.FS(views.Static()), MaxAge: 3600})
	app.Get("/favicon.ico", func(c *fiber.Ctx) error { c.Path("/favicon.ico"); return static(c) })
	app.Use("/static", static)

	api := app.Group("/api", jsonOnly)
	api.Get("/products", s.listProducts)
	api.Get("/products/:id", s.getProduct)
	api.Get("/openapi.json", serveOpenAPI)
	api.Get("/docs", s.apiDocs)
	api.Get("/cart", s.getCart)
	api.Post("/cart/items", s.conditions, s.addItem)
	api.Put("/cart/items/:id", s.conditions, s.setItem)
	api.Delete("/cart/items/:id", s.conditions, s.removeItem)
	api.Delete("/cart", s.conditions, s.clearCart)
	api.Post("/account", s.signUp)
	api.Get("/account", s.getAccount)
	api.Delete("/account", s.deleteAccountAPI)
	api.Put("/account/password", s.changePasswordAPI)
	api.Post("/login", s.logInAPI)
	api.Post("/logout", s.logOutAPI)

	app.Get("/", s.catalogPage)
	app.Get("/products/:id", s.productPage)
	app.Get("/cart", s.cartPage)
	app.Post("/cart/add", s.formAdd)
	app.Post("/cart/update", s.formUpdate)
	app.Post("/cart/remove", s.formRemove)
	app.Post("/cart/clear", s.formClear)
	app.Get("/signup", s.signUpPage)
	app.Post("/signup", s.signUpForm)
	app.Get("/login", s.logInPage)
	app.Post("/login", s.logInForm)
	app.Post("/logout", s.logOutForm)
	app.Get("/account", s.accountPage)
	app.Post("/account/password", s.passwordForm)
	app.Post("/account/delete", s.deleteForm)

	app.Use(s.notFound)
	warmUp(app)
	return app
}

// warmUp renders a page once before the app serves. Fiber v2 builds its
// list of mounted apps on the first Render, without a lock, so concurrent
// first requests race (go test -race sees it); and a template that does not
// execute should stop tote at start, not fail its first visitor.
func warmUp(app *fiber.App) {
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	if err := c.Render("pages/error", views.Data{Unavailable: true, Title: "warm-up"}, views.Layout); err != nil {
		panic("tote: the embedded templates do not render: " + err.Error())
	}
}

// serverLog writes fasthttp's own lines (connections refused past a limit)
// as warnings of tote's log.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Printf(format string, v ...any) {
	l.log.Warn("connections refused", "detail", fmt.Sprintf(format, v...))
}
