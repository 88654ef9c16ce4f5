package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"tote/catalog"
	"tote/session"
	"tote/session/memstore"
)

// testApp is tote's Fiber app on a real memory store, driven with app.Test.
type testApp struct {
	app   *fiber.App
	base  string // http://127.0.0.1:port
	store *memstore.Store
}

type appOption func(*config, **catalog.Catalog, *session.Store)

func withSecureCookie() appOption {
	return func(c *config, _ **catalog.Catalog, _ *session.Store) { c.secure = true }
}

func withCatalog(cat *catalog.Catalog) appOption {
	return func(_ *config, c **catalog.Catalog, _ *session.Store) { *c = cat }
}

// withHasher sets bcrypt's cost and the queue of password checks.
func withHasher(cost, queue int) appOption {
	return func(c *config, _ **catalog.Catalog, _ *session.Store) { c.hashCost, c.hashQueue = cost, queue }
}

func withStore(s session.Store) appOption {
	return func(_ *config, _ **catalog.Catalog, st *session.Store) { *st = s }
}

func newTestApp(tb testing.TB, opts ...appOption) *testApp {
	tb.Helper()
	return newLoggedTestApp(tb, io.Discard, opts...)
}

// newLoggedTestApp is newTestApp with tote's log and its request lines
// written to w, which must take concurrent writes.
func newLoggedTestApp(tb testing.TB, w io.Writer, opts ...appOption) *testApp {
	tb.Helper()
	mem := memstore.New(memstore.Options{})
	tb.Cleanup(func() { mem.Close() })
	cfg := config{ttl: 336 * time.Hour, bareTTL: 24 * time.Hour, hashCost: bcrypt.MinCost}
	cat := catalog.Default()
	var store session.Store = mem
	for _, o := range opts {
		o(&cfg, &cat, &store)
	}
	m := newMetrics()
	mgr := session.NewManager(store, session.Options{TTL: cfg.ttl, Hooks: m.sessionHooks()})
	log := slog.New(slog.NewTextHandler(w, nil))
	srv, err := newServer(cat, mgr, cfg, log, w, m)
	if err != nil {
		tb.Fatal(err)
	}
	app := srv.routes()
	return &testApp{app: app, base: serve(tb, srv, app), store: mem}
}

// serve runs app on a loopback port until the test ends and returns its
// base URL. Tests talk to it over real HTTP: Fiber's app.Test does not
// apply the body limit the way the server does.
func serve(tb testing.TB, srv *server, app *fiber.App) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go app.Listener(srv.listen(ln))
	tb.Cleanup(func() { app.ShutdownWithTimeout(5 * time.Second) })
	return "http://" + ln.Addr().String()
}

// httpClient follows no redirects: tests look at the 303s themselves.
var httpClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// client is one browser: it keeps the session cookie between requests.
type client struct {
	tb     testing.TB
	base   string
	cookie string
}

func (a *testApp) client(tb testing.TB) *client { return &client{tb: tb, base: a.base} }

// response is what a request got back.
type response struct {
	status    int
	header    http.Header
	body      []byte
	setCookie *http.Cookie // the session_id cookie set, if any
}

// do sends a request; headers come in name, value pairs.
func (c *client) do(method, path, body string, headers ...string) *response {
	c.tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: c.cookie})
	}
	res, err := httpClient.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.tb.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	out := &response{status: res.StatusCode, header: res.Header, body: b}
	for _, ck := range res.Cookies() {
		if ck.Name == cookieName {
			out.setCookie = ck
			c.cookie = ck.Value
		}
	}
	return out
}

// json sends a JSON body.
func (c *client) json(method, path, body string) *response {
	c.tb.Helper()
	return c.do(method, path, body, "Content-Type", "application/json")
}

// form posts a url-encoded form.
func (c *client) form(path string, values url.Values) *response {
	c.tb.Helper()
	return c.do(http.MethodPost, path, values.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

// cart reads GET /api/cart.
func (c *client) cart() cartJSON {
	c.tb.Helper()
	res := c.do(http.MethodGet, "/api/cart", "")
	if res.status != http.StatusOK {
		c.tb.Fatalf("GET /api/cart: %d %s", res.status, res.body)
	}
	var out cartJSON
	res.decode(c.tb, &out)
	return out
}

// page GETs an HTML page and parses it.
func (c *client) page(path string) (*response, *goquery.Document) {
	c.tb.Helper()
	res := c.do(http.MethodGet, path, "")
	return res, res.doc(c.tb)
}

func (r *response) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decoding %q: %v", r.body, err)
	}
}

// errorCode returns the code of a contract error body, failing the test for
// any other body.
func (r *response) errorCode(tb testing.TB) string {
	tb.Helper()
	var e errorBody
	r.decode(tb, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		tb.Fatalf("error body %s lacks code or message", r.body)
	}
	return e.Error.Code
}

func (r *response) doc(tb testing.TB) *goquery.Document {
	tb.Helper()
	d, err := goquery.NewDocumentFromReader(bytes.NewReader(r.body))
	if err != nil {
		tb.Fatalf("parsing HTML: %v", err)
	}
	return d
}

// text returns the trimmed text of the first element sel selects, failing
// the test if there is none.
func text(tb testing.TB, d *goquery.Document, sel string) string {
	tb.Helper()
	s := d.Find(sel).First()
	if s.Length() == 0 {
		tb.Fatalf("no element %q in the page", sel)
	}
	return strings.Join(strings.Fields(s.Text()), " ")
}

// csrf returns the CSRF token of the page's first form.
func csrf(tb testing.TB, d *goquery.Document) string {
	tb.Helper()
	v, ok := d.Find(`input[name="csrf_token"]`).First().Attr("value")
	if !ok || v == "" {
		tb.Fatal("the page has no CSRF token")
	}
	return v
}

// quantity returns the quantity of product id in a cart (0 if absent).
func (c cartJSON) quantity(id string) int {
	for _, it := range c.Items {
		if it.ProductID == id {
			return it.Quantity
		}
	}
	return 0
}
