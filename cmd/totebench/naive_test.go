package main

import (
	"bytes"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"tote/cart"
	"tote/catalog"
	"tote/session"
	"tote/session/redisstore/redistest"
	"tote/views"
)

// startNaive serves the naive baseline on a free loopback port, with the
// benchmark's own catalog (the embedded books and the deep one), and
// returns a client of it and the bench whose files it uses.
func startNaive(t *testing.T, store, redisAddr string, readSave bool) (*client, *bench) {
	t.Helper()
	b := &bench{o: options{sessions: 2}, dir: t.TempDir()}
	if err := b.writeFiles(); err != nil {
		t.Fatal(err)
	}
	app, err := newNaive(naiveConfig{store: store, redisAddr: redisAddr, catalog: b.catalog, readSave: readSave})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	c := newClient("http://" + ln.Addr().String())
	t.Cleanup(func() {
		// fasthttp's Shutdown waits for ever for a connection that has not
		// sent its first request (net/http may dial one it then does not
		// use): close the client's first, and wait 5 seconds at most.
		c.http.CloseIdleConnections()
		if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	c.naive = true
	return c, b
}

// benchCatalog loads the catalog file the bench wrote.
func benchCatalog(t *testing.T, b *bench) *catalog.Catalog {
	t.Helper()
	f, err := os.Open(b.catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cat, err := catalog.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// cartBody is the cart JSON as the naive baseline answers it.
type cartBody struct {
	Items []struct {
		ProductID string `json:"product_id"`
		Title     string `json:"title"`
		UnitPrice int64  `json:"unit_price"`
		Quantity  int    `json:"quantity"`
		LineTotal int64  `json:"line_total"`
	} `json:"items"`
	ItemCount int    `json:"item_count"`
	Subtotal  int64  `json:"subtotal"`
	Currency  string `json:"currency"`
	Visits    int64  `json:"visits"`
}

// get sends GET path with the session cookie id and returns the status,
// the Content-Type and the body.
func get(t *testing.T, c *client, path, id string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", "session_id="+id)
	req.Header.Set("Accept", "text/html")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// TestNaive drives the naive baseline with what totebench sends: the pool's
// POSTs, the PUT that resets the deep line, GET /api/cart, and GET /, which
// must be tote's catalog page for the session's cart and visits.
func TestNaive(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			redisAddr := ""
			if store == "redis" {
				redisAddr = redistest.Start(t).Addr() // skipped without redis-server
			}
			c, b := startNaive(t, store, redisAddr, true)
			cat := benchCatalog(t, b)

			// New visitor: an empty cart, and a new session cookie (the
			// naive design saves on every request).
			var empty cartBody
			id, err := c.do("GET", "/api/cart", "", "", &empty)
			if err != nil {
				t.Fatal(err)
			}
			if id == "" || empty.Items == nil || len(empty.Items) != 0 || empty.ItemCount != 0 || empty.Visits != 0 || empty.Currency != cat.Currency() {
				t.Errorf("new visitor: cookie %q, cart %+v", id, empty)
			}

			ids, err := c.createPool(2, b.cartBooks)
			if err != nil {
				t.Fatal(err)
			}
			if ids[0] == "" || ids[0] == ids[1] {
				t.Fatalf("pool ids %q", ids)
			}
			id = ids[0]
			if _, err := c.do("POST", "/api/cart/items", id, `{"product_id":"`+deepID+`","quantity":2}`, nil); err != nil {
				t.Fatal(err)
			}
			var got cartBody
			if _, err := c.do("GET", "/api/cart", id, "", &got); err != nil {
				t.Fatal(err)
			}
			var want cart.Cart
			for _, book := range b.cartBooks {
				p, err := cat.Product(book)
				if err != nil {
					t.Fatal(err)
				}
				qty := 1
				if book == deepID {
					qty = 3
				}
				if err := want.Add(p, qty); err != nil {
					t.Fatal(err)
				}
			}
			sum := want.Price(cat)
			if len(got.Items) != len(sum.Lines) || got.ItemCount != sum.ItemCount || got.Subtotal != sum.Subtotal || got.Currency != sum.Currency || got.Visits != 0 {
				t.Fatalf("cart %+v, want %+v", got, sum)
			}
			for _, it := range got.Items {
				p, _ := cat.Product(it.ProductID)
				if it.Title != p.Title || it.UnitPrice != p.Price || it.Quantity != want.Quantity(p.ID) || it.LineTotal != p.Price*int64(it.Quantity) {
					t.Errorf("line %+v", it)
				}
			}

			// The bench's reset, then the refusals tote would give.
			var reset cartBody
			if _, err := c.do("PUT", "/api/cart/items/"+deepID, id, `{"quantity":1}`, &reset); err != nil {
				t.Fatal(err)
			}
			if reset.ItemCount != sum.ItemCount-2 {
				t.Errorf("after the reset: %d items, want %d", reset.ItemCount, sum.ItemCount-2)
			}
			low := cat.Products()[0]
			for _, p := range cat.Products() {
				if p.Stock > 0 && p.Stock < low.Stock || low.Stock == 0 {
					low = p
				}
			}
			for body, want := range map[string]string{
				`{"product_id":"` + deepID + `","quantity":99}`:                                "422 Unprocessable Entity",
				`{"product_id":"` + low.ID + `","quantity":` + strconv.Itoa(low.Stock+1) + `}`: "422 Unprocessable Entity",
				`{"product_id":"nope","quantity":1}`:                                           "404 Not Found",
				`{"product_id":"` + deepID + `","quantity":0}`:                                 "422 Unprocessable Entity",
				`{"quantity":1}`: "400 Bad Request",
			} {
				if _, err := c.do("POST", "/api/cart/items", id, body, nil); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("POST %s: %v, want %s", body, err, want)
				}
			}

			// Two page views: tote's catalog page, visits counted.
			for visit := int64(1); visit <= 2; visit++ {
				status, ctype, page := get(t, c, "/", id)
				if status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(page, `id="cart-count"`) {
					t.Fatalf("GET /: %d %s\n%s", status, ctype, page)
				}
				if want := wantPage(t, cat, &want, 1, visit); page != want {
					t.Errorf("GET /, visit %d: the naive page is not tote's:\n%s\nwant\n%s", visit, page, want)
				}
				visits, err := c.visits(id)
				if err != nil {
					t.Fatal(err)
				}
				if visits != visit {
					t.Errorf("visits %d after %d page views", visits, visit)
				}
			}

			if store == "redis" {
				// A read is a GET and a SET (the naive design saves on
				// every request), and the bench counts both.
				before, err := commandCalls(redisAddr)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.visits(id); err != nil {
					t.Fatal(err)
				}
				after, err := commandCalls(redisAddr)
				if err != nil {
					t.Fatal(err)
				}
				if after["get"]-before["get"] != 1 || after["set"]-before["set"] != 1 {
					t.Errorf("GET /api/cart: Redis ran %v, then %v; want one GET and one SET", before, after)
				}
			}

			n, err := c.served()
			if err != nil {
				t.Fatal(err)
			}
			if n < 10 {
				t.Errorf("served %d requests", n)
			}
		})
	}
}

// wantPage is tote's catalog page for a session with cart ct (its deep line
// at deepQty) and visits, rendered by tote's renderer, with no flash and no
// CSRF token (the naive session has none).
func wantPage(t *testing.T, cat *catalog.Catalog, ct *cart.Cart, deepQty int, visits int64) string {
	t.Helper()
	d := session.Data{Visits: visits, Cart: ct.Clone()}
	p, err := cat.Product(deepID)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Cart.Set(p, deepQty); err != nil {
		t.Fatal(err)
	}
	data := views.Context(d.Cart.Price(cat), d.Visits, views.Flash{}, "", "")
	data.Title = "Books"
	var books strings.Builder
	for _, p := range cat.Products() {
		h, err := views.Book(p, data)
		if err != nil {
			t.Fatal(err)
		}
		books.WriteString(string(h))
	}
	data.Books = template.HTML(books.String())
	r, err := views.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Render(&out, "pages/catalog", data, views.Layout); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestNaiveReadOnly checks -naive-read-save=false: GET /api/cart then only
// reads, and a new visitor's read stores no session.
func TestNaiveReadOnly(t *testing.T) {
	c, b := startNaive(t, "memory", "", false)
	var empty cartBody
	id, err := c.do("GET", "/api/cart", "", "", &empty)
	if err != nil {
		t.Fatal(err)
	}
	if id != "" || len(empty.Items) != 0 {
		t.Errorf("new visitor: cookie %q, cart %+v", id, empty)
	}
	ids, err := c.createPool(1, b.cartBooks)
	if err != nil {
		t.Fatal(err)
	}
	var got cartBody
	if _, err := c.do("GET", "/api/cart", ids[0], "", &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != len(b.cartBooks) || got.ItemCount != len(b.cartBooks) {
		t.Errorf("cart %+v, want the %d books %v", got, len(b.cartBooks), b.cartBooks)
	}
}
