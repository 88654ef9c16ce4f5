package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"tote/catalog"
	"tote/session"
	"tote/session/memstore"
)

// benchApp is tote's app on a memory store, driven in-process through its
// fasthttp handler (no sockets), with a pool of sessions each holding a
// small cart; its log lines are formatted as in tote and go to io.Discard.
type benchApp struct {
	app     *fiber.App
	handler fasthttp.RequestHandler
	srv     *server
	ids     []string
}

func newBenchApp(b *testing.B, sessions int) *benchApp {
	b.Helper()
	mem := memstore.New(memstore.Options{})
	b.Cleanup(func() { mem.Close() })
	cfg := config{ttl: 336 * time.Hour}
	m := newMetrics()
	mgr := session.NewManager(mem, session.Options{TTL: cfg.ttl, Hooks: m.sessionHooks()})
	srv, err := newServer(benchCatalog(b), mgr, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard, m)
	if err != nil {
		b.Fatal(err)
	}
	a := &benchApp{app: srv.routes(), srv: srv}
	a.handler = a.app.Handler()
	books := inStock(srv.cat, 3)
	for range sessions {
		id := ""
		for _, p := range books {
			ctx := a.do(fiber.MethodPost, "/api/cart/items", id, `{"product_id":"`+p.ID+`","quantity":1}`)
			if ctx.Response.StatusCode() != fiber.StatusOK {
				b.Fatalf("adding %s: %d %s", p.ID, ctx.Response.StatusCode(), ctx.Response.Body())
			}
			if v := ctx.Response.Header.PeekCookie(cookieName); v != nil {
				var ck fasthttp.Cookie
				ck.ParseBytes(v)
				id = string(ck.Value())
			}
		}
		a.ids = append(a.ids, id)
	}
	return a
}

// benchDeep is the product the benchmarks add: its stock never runs out.
const benchDeep = "bench-deep"

// benchCatalog is the embedded catalog with benchDeep first, as
// cmd/totebench serves it.
func benchCatalog(tb testing.TB) *catalog.Catalog {
	tb.Helper()
	def := catalog.Default()
	products := append([]catalog.Product{{ID: benchDeep, Title: "The Benchmark", Author: "A. Load", Price: 1250, Stock: 1_000_000}}, def.Products()...)
	data, err := json.Marshal(map[string]any{"currency": def.Currency(), "products": products})
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := catalog.Load(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

// inStock returns n products with a stock of at least 2, benchDeep first.
func inStock(cat *catalog.Catalog, n int) []catalog.Product {
	var out []catalog.Product
	for _, p := range cat.Products() {
		if p.Stock >= 2 && len(out) < n {
			out = append(out, p)
		}
	}
	return out
}

var benchAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

// do runs one request through the app and returns its context.
func (a *benchApp) do(method, path, id, body string) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	a.serve(&ctx, method, path, id, body)
	return &ctx
}

func (a *benchApp) serve(ctx *fasthttp.RequestCtx, method, path, id, body string) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.SetHost("tote.test")
	if id != "" {
		req.Header.SetCookie(cookieName, id)
	}
	if body != "" {
		req.Header.SetContentType(fiber.MIMEApplicationJSON)
		req.SetBodyString(body)
	}
	ctx.Init(&req, benchAddr, nil)
	a.handler(ctx)
}

// BenchmarkRoute measures the hot routes end to end in one goroutine, as
// the load benchmark (cmd/totebench) drives them: a pool of 512 sessions
// with 3 lines each, on the memory store.
func BenchmarkRoute(b *testing.B) {
	a := newBenchApp(b, 512)
	deep := benchDeep
	routes := []struct {
		name         string
		method, path string
		body         func(i int) (string, string, string)
	}{
		{"post", "", "", func(i int) (string, string, string) {
			// Every 45th request of a session sets the line back to 1:
			// it stays below the limit of 99.
			if i/len(a.ids)%45 == 0 {
				return fiber.MethodPut, "/api/cart/items/" + deep, `{"quantity":1}`
			}
			return fiber.MethodPost, "/api/cart/items", `{"product_id":"` + deep + `","quantity":1}`
		}},
		{"cart", fiber.MethodGet, "/api/cart", nil},
		{"page", fiber.MethodGet, "/", nil},
	}
	for _, r := range routes {
		b.Run(r.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				method, path, body := r.method, r.path, ""
				if r.body != nil {
					method, path, body = r.body(i)
				}
				a.serve(&ctx, method, path, a.ids[i%len(a.ids)], body)
				if s := ctx.Response.StatusCode(); s != fiber.StatusOK {
					b.Fatalf("%s %s: %d %s", method, path, s, ctx.Response.Body())
				}
				i++
			}
		})
	}
}

// BenchmarkCartJSON measures the cart's JSON response alone: pricing and
// encoding a cart of n lines.
func BenchmarkCartJSON(b *testing.B) {
	a := newBenchApp(b, 0)
	for _, n := range []int{3, 20} {
		b.Run(strconv.Itoa(n)+"-lines", func(b *testing.B) {
			var d session.Data
			for _, p := range inStock(a.srv.cat, n) {
				if err := d.Cart.Add(p, 1); err != nil {
					b.Fatal(err)
				}
			}
			d.Visits = 12
			c := a.app.AcquireCtx(&fasthttp.RequestCtx{})
			defer a.app.ReleaseCtx(c)
			b.ReportAllocs()
			for b.Loop() {
				c.Response().ResetBody()
				if err := a.srv.sendCart(c, &visitor{sess: session.Session{Data: d}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
