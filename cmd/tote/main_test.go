package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"tote/session/redisstore/redistest"
)

// instance is tote started by run() on a free port, with real wiring.
type instance struct {
	base string
	done chan error
	stop context.CancelFunc
	once sync.Once
}

// startTote runs tote with env (ADDR defaults to 127.0.0.1:0, PASSWORD_COST
// to 4, bcrypt's least: the tests log in often, under the race detector)
// until the test ends, and waits until it listens.
func startTote(tb testing.TB, env map[string]string) *instance {
	tb.Helper()
	in, _ := startToteLogged(tb, env)
	return in
}

// shutdown stops tote as SIGTERM does and checks that run returned nil.
func (in *instance) shutdown(tb testing.TB) {
	tb.Helper()
	in.once.Do(func() {
		in.stop()
		select {
		case err := <-in.done:
			if err != nil {
				tb.Errorf("run returned %v after shutdown, want nil", err)
			}
		case <-time.After(15 * time.Second):
			tb.Error("tote did not stop within 15 s")
		}
	})
}

func (in *instance) client(tb testing.TB) *client { return &client{tb: tb, base: in.base} }

func TestRunConfigErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"currency":"USD","products":[{"id":"x","title":"X","author":"A","price":14.99,"stock":1}]}`), 0o600)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown store", map[string]string{"SESSION_STORE": "mongo"}, "SESSION_STORE"},
		{"redis without address", map[string]string{"SESSION_STORE": "redis"}, "REDIS_URL"},
		{"bad ttl", map[string]string{"SESSION_TTL": "two weeks"}, "SESSION_TTL"},
		{"zero ttl", map[string]string{"SESSION_TTL": "0s"}, "SESSION_TTL"},
		{"bad cookie flag", map[string]string{"COOKIE_SECURE": "yes please"}, "COOKIE_SECURE"},
		{"bad redis url", map[string]string{"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"},
		{"unparsable redis url", map[string]string{"REDIS_URL": "redis://:bad:port:x"}, "REDIS_URL"},
		{"both redis settings", map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_CLUSTER_ADDRS": "127.0.0.1:2"}, "REDIS_CLUSTER_ADDRS"},
		{"cluster address without port", map[string]string{"REDIS_CLUSTER_ADDRS": "redis-a"}, "REDIS_CLUSTER_ADDRS"},
		{"missing catalog file", map[string]string{"CATALOG_FILE": "/nonexistent/books.json"}, "CATALOG_FILE"},
		{"invalid catalog file", map[string]string{"CATALOG_FILE": bad}, "price"},
		{"bad listen address", map[string]string{"ADDR": "nowhere:-1"}, "ADDR"},
		{"pprof off loopback", map[string]string{"DEBUG_ADDR": "0.0.0.0:6060"}, "DEBUG_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // a case that starts stops
			defer cancel()
			err := run(ctx, nil, func(k string) string { return env[k] }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("run() = %v; want one line naming %s", err, tt.want)
			}
		})
	}
}

func TestRunServesAndStops(t *testing.T) {
	in := startTote(t, map[string]string{"SESSION_STORE": "memory"})
	c := in.client(t)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/api/products": 200} {
		if res := c.do(http.MethodGet, path, ""); res.status != want {
			t.Errorf("GET %s: %d, want %d", path, res.status, want)
		}
	}
	c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":2}`)
	if q := c.cart().quantity("dune"); q != 2 {
		t.Errorf("cart has %d × dune, want 2", q)
	}
	c.json(http.MethodPost, "/api/cart/items", `{"product_id":"mrs-dalloway"}`)
	metrics := string(c.do(http.MethodGet, "/metrics", "").body)
	for _, want := range []string{
		`tote_http_requests_total{method="POST",route="/api/cart/items",status="200"} 1`,
		`tote_http_requests_total{method="POST",route="/api/cart/items",status="422"} 1`,
		`tote_http_request_duration_seconds_bucket{route="/api/cart",`,
		`tote_session_store_operation_duration_seconds_count{op="cas"} 1`,
		`tote_session_store_errors_total{op="get"} 0`,
		`tote_sessions_created_total 1`,
		`tote_session_conflicts_total 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestFileStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	env := func() map[string]string { return map[string]string{"DATA_DIR": dir} }
	first := startTote(t, env())
	c := first.client(t)
	c.page("/")
	c.json(http.MethodPost, "/api/cart/items", `{"product_id":"kindred","quantity":3}`)

	t.Run("the data directory is one instance's", func(t *testing.T) {
		err := run(context.Background(), nil, func(k string) string { return map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0"}[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("a second tote on the same DATA_DIR: %v; want an error saying it is in use", err)
		}
	})

	t.Run("metrics show the store", func(t *testing.T) {
		metrics := string(c.do(http.MethodGet, "/metrics", "").body)
		for _, re := range []string{
			`(?m)^tote_store_records 1$`,
			`(?m)^tote_sessions_evicted_total 0$`,
			`(?m)^tote_file_store_log_bytes [1-9][0-9]+$`,
			`(?m)^tote_file_store_compactions_total 0$`,
		} {
			if !regexp.MustCompile(re).MatchString(metrics) {
				t.Errorf("/metrics does not match %s", re)
			}
		}
	})

	first.shutdown(t)
	second := startTote(t, env())
	c.base = second.base
	got := c.cart()
	if got.quantity("kindred") != 3 || got.Visits != 1 {
		t.Errorf("after a restart: %q, %d visits; want kindred:3 and 1 visit", lines(got), got.Visits)
	}
}

// burst sends n concurrent requests of one session, spread over the
// instances, and returns how many got each status.
func burst(t *testing.T, cookie string, bases []string, n int, method, path, body string) map[int]int {
	t.Helper()
	return burstSessions(t, []string{cookie}, bases, n, method, path, body)
}

// checkBursts runs the contract's concurrency checks against tote instances
// sharing one store: a handful of concurrent changes all succeed; under heavy
// contention a change may get 409 but none that got 200 is lost; the same
// for page views and num_visits.
func checkBursts(t *testing.T, instances ...*instance) {
	bases := make([]string, len(instances))
	for i, in := range instances {
		bases[i] = in.base
	}
	for _, tt := range []struct {
		name  string
		n     int
		all   bool // every request must succeed
		pages bool // page views instead of adds
	}{
		{"10 adds", 10, true, false},
		{"50 adds", 50, len(instances) == 1, false},
		{"50 page views", 50, len(instances) == 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := instances[0].client(t)
			c.json(http.MethodPost, "/api/cart/items", `{"product_id":"pride-and-prejudice"}`)
			before := c.cart()
			method, path, body := http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":1}`
			if tt.pages {
				method, path, body = http.MethodGet, "/", ""
			}
			got := burst(t, c.cookie, bases, tt.n, method, path, body)
			ok, conflicts := got[200], got[409]
			if ok+conflicts != tt.n || tt.all && ok != tt.n {
				t.Errorf("statuses %v; want %s", got, map[bool]string{true: "all 200", false: "only 200 and 409"}[tt.all])
			}
			after := c.cart()
			if tt.pages && after.Visits != before.Visits+int64(ok) || !tt.pages && after.quantity("dune") != ok {
				t.Errorf("%d requests answered 200, but the session went from %d visits, %d × dune to %d visits, %d × dune: updates were lost",
					ok, before.Visits, before.quantity("dune"), after.Visits, after.quantity("dune"))
			}
			if after.quantity("pride-and-prejudice") != 1 {
				t.Errorf("the line added before the burst is gone: %q", lines(after))
			}
			t.Logf("%d instance(s), %d concurrent: %d × 200, %d × 409; dune ×%d, visits %d -> %d",
				len(instances), tt.n, ok, conflicts, after.quantity("dune"), before.Visits, after.Visits)
		})
	}
}

// deepStock writes a catalog whose books are stocked deeply enough for
// bursts of 50 adds, and returns its path for CATALOG_FILE.
func deepStock(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "books.json")
	err := os.WriteFile(path, []byte(`{"currency":"USD","products":[
		{"id":"dune","title":"Dune","author":"Frank Herbert","price":1899,"stock":500},
		{"id":"pride-and-prejudice","title":"Pride and Prejudice","author":"Jane Austen","price":899,"stock":500}]}`), 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestConcurrentRequestsMemory(t *testing.T) {
	checkBursts(t, startTote(t, map[string]string{"SESSION_STORE": "memory", "CATALOG_FILE": deepStock(t)}))
}

func TestConcurrentRequestsFile(t *testing.T) {
	checkBursts(t, startTote(t, map[string]string{"DATA_DIR": t.TempDir(), "CATALOG_FILE": deepStock(t)}))
}

func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	books := deepStock(t)
	env := func() map[string]string { return map[string]string{"REDIS_URL": srv.URL(), "CATALOG_FILE": books} }
	a, b := startTote(t, env()), startTote(t, env())

	t.Run("instances share carts", func(t *testing.T) {
		c := a.client(t)
		c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":2}`)
		c.base = b.base
		if q := c.cart().quantity("dune"); q != 2 {
			t.Errorf("the other instance sees %d × dune, want 2", q)
		}
		keys := srv.Client(t).Keys(context.Background(), "*").Val()
		if len(keys) != 1 || !strings.HasSuffix(keys[0], c.cookie) {
			t.Errorf("Redis keys %v; want the one session", keys)
		}
	})

	t.Run("round trips", func(t *testing.T) {
		c := a.client(t)
		c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
		for _, tt := range []struct {
			name, method, path, body string
			client                   *client
			want                     int64 // Redis commands
		}{
			{"new visitor reads the cart", http.MethodGet, "/api/cart", "", a.client(t), 0},
			{"catalog", http.MethodGet, "/api/products", "", c, 0},
			{"read the cart", http.MethodGet, "/api/cart", "", c, 1},
			{"add an item", http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`, c, 2},
			{"refused add: reads, writes nothing", http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":100}`, c, 1},
			{"page view", http.MethodGet, "/cart", "", c, 2},
		} {
			t.Run(tt.name, func(t *testing.T) {
				srv.ResetStats(t)
				tt.client.do(tt.method, tt.path, tt.body, "Content-Type", "application/json")
				// commandstats also counts what the compare-and-swap script runs
				// inside Redis: one GET per EVALSHA, and the SET. Round trips are
				// what the client sent.
				calls := srv.CommandCalls(t)
				var n int64
				for _, k := range calls {
					n += k
				}
				n -= calls["set"] + calls["evalsha"]
				if n != tt.want {
					t.Errorf("%d Redis commands (%v), want %d", n, calls, tt.want)
				}
			})
		}
	})

	t.Run("bursts across two instances", func(t *testing.T) { checkBursts(t, a, b) })
	t.Run("bursts on one instance", func(t *testing.T) { checkBursts(t, a) })
}

func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	in := startTote(t, map[string]string{"REDIS_URL": srv.URL()})
	c := in.client(t)
	c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":2}`)

	check := func(t *testing.T) {
		t.Helper()
		fresh := in.client(t)
		for _, cl := range []*client{c, fresh} {
			start := time.Now()
			res := cl.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
			took := time.Since(start)
			if res.status != http.StatusServiceUnavailable || res.errorCode(t) != "storage_unavailable" || res.header.Get("Retry-After") == "" {
				t.Errorf("POST during the outage: %d %s Retry-After %q; want 503 storage_unavailable with Retry-After", res.status, res.body, res.header.Get("Retry-After"))
			}
			if res.setCookie != nil {
				t.Errorf("a session that was not stored got a cookie")
			}
			if took > 1500*time.Millisecond {
				t.Errorf("the 503 took %v; want about a second at most", took)
			}
		}
		res, doc := c.page("/cart")
		if res.status != http.StatusServiceUnavailable || doc.Find("#error").Length() != 1 || res.header.Get("Retry-After") == "" {
			t.Errorf("GET /cart during the outage: %d, want the 503 page", res.status)
		}
		for path, want := range map[string]int{"/readyz": 503, "/healthz": 200, "/api/products": 200, "/static/style.css": 200} {
			if res := c.do(http.MethodGet, path, ""); res.status != want {
				t.Errorf("GET %s during the outage: %d, want %d", path, res.status, want)
			}
		}
	}
	recovered := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for c.do(http.MethodGet, "/readyz", "").status != 200 {
			if time.Now().After(deadline) {
				t.Fatal("not ready 5 s after Redis came back")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	t.Run("hung Redis", func(t *testing.T) {
		srv.Pause(t)
		check(t)
		srv.Resume(t)
		recovered(t)
		if q := c.cart().quantity("dune"); q != 2 {
			t.Errorf("after the outage the cart has %d × dune, want the 2 stored before it", q)
		}
	})
	t.Run("stopped Redis", func(t *testing.T) {
		srv.Stop(t)
		check(t)
		srv.Restart(t) // the test server keeps nothing on disk: the cart is gone, the service is not
		recovered(t)
		if res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`); res.status != 200 || res.setCookie == nil {
			t.Errorf("after Redis came back: %d, Set-Cookie %v", res.status, res.setCookie)
		}
	})
}

func TestStartWithRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop(t)
	in := startTote(t, map[string]string{"REDIS_URL": srv.URL()})
	c := in.client(t)
	if res := c.do(http.MethodGet, "/readyz", ""); res.status != 503 {
		t.Errorf("/readyz with Redis down: %d, want 503", res.status)
	}
	if res := c.do(http.MethodGet, "/healthz", ""); res.status != 200 {
		t.Errorf("/healthz with Redis down: %d, want 200", res.status)
	}
	srv.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for c.do(http.MethodGet, "/readyz", "").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("not ready 5 s after Redis started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`); res.status != 200 {
		t.Errorf("POST once Redis is up: %d %s", res.status, res.body)
	}
}

func TestRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	books := deepStock(t)
	env := func() map[string]string {
		return map[string]string{"REDIS_CLUSTER_ADDRS": strings.Join(cl.Addrs(), ","), "CATALOG_FILE": books}
	}
	a, b := startTote(t, env()), startTote(t, env())
	if res := a.client(t).do(http.MethodGet, "/readyz", ""); res.status != 200 {
		t.Fatalf("/readyz on a cluster: %d", res.status)
	}
	checkBursts(t, a, b)
}

func TestExpiredSessionIsNotAdopted(t *testing.T) {
	for _, store := range []string{"memory", "file"} {
		t.Run(store, func(t *testing.T) {
			in := startTote(t, map[string]string{"SESSION_STORE": store, "DATA_DIR": t.TempDir(), "SESSION_TTL": "1s"})
			c := in.client(t)
			res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
			if res.setCookie == nil || res.setCookie.MaxAge != 1 {
				t.Fatalf("cookie %v; want Max-Age=1 (SESSION_TTL)", res.setCookie)
			}
			old := c.cookie
			time.Sleep(1500 * time.Millisecond)
			if got := c.cart(); len(got.Items) != 0 {
				t.Errorf("an expired session was served: %q", lines(got))
			}
			res = c.json(http.MethodPost, "/api/cart/items", `{"product_id":"kindred"}`)
			if res.setCookie == nil || res.setCookie.Value == old {
				t.Errorf("the expired id was adopted: Set-Cookie %v", res.setCookie)
			}
			if got := lines(c.cart()); got != "kindred:1" {
				t.Errorf("cart %q, want kindred:1 only", got)
			}
		})
	}
}
