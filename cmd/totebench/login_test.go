package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tote/account"
)

// TestBenchAccounts checks that the benchmark's usernames and passwords
// pass tote's rules, so that no sign-up is refused as weak or invalid.
func TestBenchAccounts(t *testing.T) {
	for _, user := range []string{benchUser("bench", 0), benchUser("bench", 511), benchUser("flood", 7), benchUser("bench", 99999)} {
		if name, err := account.NormalizeUsername(user); err != nil || name != user {
			t.Errorf("username %q: %q, %v", user, name, err)
		}
		if err := account.CheckPassword(user, benchPassword(user)); err != nil {
			t.Errorf("password of %q: %v", user, err)
		}
	}
	var signUp, login map[string]any
	if err := json.Unmarshal([]byte(credentialsBody("bench-3", false)), &signUp); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(credentialsBody("bench-3", true)), &login); err != nil {
		t.Fatal(err)
	}
	if signUp["username"] != "bench-3" || signUp["password"] != benchPassword("bench-3") || signUp["remember"] != nil {
		t.Errorf("sign-up body %v", signUp)
	}
	if login["username"] != "bench-3" || login["password"] != benchPassword("bench-3") || login["remember"] != true {
		t.Errorf("login body %v", login)
	}
}

// TestFloodCount checks how the flood's answers are counted.
func TestFloodCount(t *testing.T) {
	var c floodCount
	c.count(200, []byte(`{"items":[]}`), 100*time.Millisecond)
	c.count(200, nil, 300*time.Millisecond)
	c.count(503, []byte(`{"error":{"code":"overloaded","message":"..."}}`), time.Millisecond)
	c.count(503, []byte(`{"error":{"code":"overloaded","message":"..."}}`), time.Millisecond)
	c.count(503, []byte(`{"error":{"code":"storage_unavailable","message":"..."}}`), time.Millisecond)
	c.count(429, []byte(`{"error":{"code":"too_many_sessions","message":"..."}}`), time.Millisecond)
	c.count(401, []byte(`{"error":{"code":"invalid_credentials","message":"..."}}`), time.Millisecond)
	c.countOther("transport error")
	c.elapsed = 2 * time.Second
	if c.ok != 2 || c.overloaded != 2 || c.throttled != 1 || c.others() != 3 || c.answers() != 8 {
		t.Errorf("count = %+v", c)
	}
	if c.other["503 storage_unavailable"] != 1 || c.other["401 invalid_credentials"] != 1 || c.other["transport error"] != 1 {
		t.Errorf("other = %v", c.other)
	}
	if c.rate() != 1 || c.tries() != 4 || c.overloadShare() != 0.25 {
		t.Errorf("rate %v, tries %v, 503 share %v; want 1, 4, 0.25", c.rate(), c.tries(), c.overloadShare())
	}
	if c.percentile(50) != 100*time.Millisecond || c.percentile(99) != 300*time.Millisecond {
		t.Errorf("p50 %v, p99 %v", c.percentile(50), c.percentile(99))
	}
	var sum floodCount
	sum.add(c)
	sum.add(c)
	if sum.ok != 4 || sum.answers() != 16 || sum.elapsed != 4*time.Second || sum.other["transport error"] != 2 {
		t.Errorf("sum = %+v", sum)
	}
	if errorCode([]byte("<html>")) != "" || errorCode([]byte(`{"error":{"code":"x"}}`)) != "x" {
		t.Error("errorCode")
	}
}

// TestFlood runs the flood against a stand-in for tote that answers 200,
// 503 overloaded and 429 in turn, and checks what it sent, that each
// client had a connection of its own, and that end waited for every
// answer.
func TestFlood(t *testing.T) {
	var answered, conns atomic.Int64
	var mu sync.Mutex
	bodies := map[string]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/api/login" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		mu.Lock()
		bodies[string(body)] = true
		mu.Unlock()
		time.Sleep(time.Millisecond)
		switch answered.Add(1) % 3 {
		case 0:
			w.Write([]byte(`{"items":[]}`))
		case 1:
			w.WriteHeader(503)
			w.Write([]byte(`{"error":{"code":"overloaded","message":"busy"}}`))
		default:
			w.WriteHeader(429)
			w.Write([]byte(`{"error":{"code":"too_many_sessions","message":"slow down"}}`))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	users := []string{"flood-0", "flood-1"}
	f := startFlood(srv.URL, users, 4)
	time.Sleep(150 * time.Millisecond)
	c := f.end()
	if c.answers() != answered.Load() || c.answers() < 12 {
		t.Errorf("%d answers counted, %d sent", c.answers(), answered.Load())
	}
	if c.ok == 0 || c.overloaded == 0 || c.throttled == 0 || c.others() != 0 {
		t.Errorf("count = %+v", c)
	}
	if c.elapsed < 150*time.Millisecond || c.rate() <= 0 {
		t.Errorf("elapsed %v, rate %v", c.elapsed, c.rate())
	}
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections for 4 clients", n)
	}
	if len(bodies) != len(users) || !bodies[credentialsBody("flood-0", true)] || !bodies[credentialsBody("flood-1", true)] {
		t.Errorf("bodies %v", bodies)
	}
}

// fixed returns a result of one one-second run of rps requests whose every
// quantile is p99.
func fixed(rps int64, p99 time.Duration) result {
	q := make([]time.Duration, len(grid))
	for i := range q {
		q[i] = p99
	}
	return result{requests: rps, duration: time.Second, runs: []wrkRun{{requests: rps, duration: time.Second, quantiles: q}}}
}

// TestPrintLogin checks the comparison of the logged-in rows with the
// guest rows: over the hello world, held at 0.7 and above, and the Redis
// targets by route.
func TestPrintLogin(t *testing.T) {
	hello := fixed(1000, time.Millisecond)
	rows := []row{
		{store: "memory", route: routeNames["cart"], mode: "cart", res: fixed(500, time.Millisecond), hello: hello, roundTrips: -1},
		{store: "redis", route: routeNames["post"], mode: "post", res: fixed(400, time.Millisecond), hello: hello, roundTrips: 1.97},
		{store: "redis", route: routeNames["cart"], mode: "cart", res: fixed(400, time.Millisecond), hello: hello, roundTrips: 1},
		// 300/1000 over 500/1000: 0.60; the guest row's hello was the same.
		{store: "memory", route: routeNames["cart"], mode: "cart", loggedIn: true, res: fixed(300, 2*time.Millisecond), hello: hello, roundTrips: -1},
		// 300/750 over 400/1000: 1.00 (a slower hello world in its runs), 3 commands: held.
		{store: "redis", route: routeNames["post"], mode: "post", loggedIn: true, res: fixed(300, time.Millisecond), hello: fixed(750, time.Millisecond), roundTrips: 3},
		// 280/1000 over 400/1000: 0.70 held, but 3 commands for a read: missed.
		{store: "redis", route: routeNames["cart"], mode: "cart", loggedIn: true, res: fixed(280, time.Millisecond), hello: hello, roundTrips: 3},
	}
	var buf bytes.Buffer
	printLogin(&buf, rows)
	out := buf.String()
	lines := strings.Split(out, "\n")
	var memCart, redisPost, redisCart string
	for _, l := range lines {
		switch {
		case strings.Contains(l, "memory GET /api/cart"):
			memCart = l
		case strings.Contains(l, "redis  POST /api/cart/items"):
			redisPost = l
		case strings.Contains(l, "redis  GET /api/cart"):
			redisCart = l
		}
	}
	for _, c := range []struct{ line, want string }{
		{memCart, "0.60 missed"},
		{redisPost, "1.00 held   3.00 (at most 3) held"},
		{redisCart, "0.70 held   3.00 (at most 2) missed"},
	} {
		if !strings.Contains(c.line, c.want) {
			t.Errorf("want %q in %q\n%s", c.want, c.line, out)
		}
	}
	if !strings.Contains(memCart, "0.60") || !strings.Contains(memCart, "2.00ms") || strings.HasSuffix(memCart, " ") {
		t.Errorf("memory line %q", memCart)
	}
	// The logged-in rows stay out of the comparison with the naive design.
	buf.Reset()
	printP99(&buf, append(rows, row{store: "naive-memory", route: routeNames["cart"], mode: "cart", res: fixed(1, time.Millisecond), hello: hello}), 64)
	if n := strings.Count(buf.String(), "memory GET /api/cart"); n != 1 {
		t.Errorf("printP99 compared %d rows of memory GET /api/cart with the naive design's:\n%s", n, buf.String())
	}
}

// TestPrintFlood checks the login flood's verdict: held while the page's
// p99 flooded is at most twice its p99 unloaded.
func TestPrintFlood(t *testing.T) {
	logins := floodCount{ok: 30, overloaded: 60, throttled: 0, other: map[string]int64{"transport error": 10}, elapsed: 2 * time.Second,
		latency: []time.Duration{time.Second, 1500 * time.Millisecond}}
	rows := []floodRow{
		{store: "memory", clients: 32, accounts: 8, cost: "default", unloaded: fixed(1000, 10*time.Millisecond), flooded: fixed(800, 20*time.Millisecond), logins: logins},
		{store: "redis", clients: 32, accounts: 8, cost: "default", unloaded: fixed(1000, 10*time.Millisecond), flooded: fixed(800, 21*time.Millisecond), logins: logins},
	}
	var buf bytes.Buffer
	printFlood(&buf, rows)
	out := buf.String()
	for _, want := range []string{
		"32 clients POST /api/login with the right password of 8 accounts, PASSWORD_COST default",
		"memory     15.0      50  60.0%     0     10     1.00s     1.50s     1000      800   10.00ms   20.00ms   2.00    0/0 held\n",
		"redis      15.0      50  60.0%     0     10     1.00s     1.50s     1000      800   10.00ms   21.00ms   2.10    0/0 missed\n",
		"memory, the flood's other answers: transport error: 10",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in\n%s", want, out)
		}
	}
	printFlood(&buf, nil) // nothing measured: nothing printed
	if buf.String() != out {
		t.Error("printFlood printed a table of no rows")
	}
}

// TestFloodStores checks where the login flood runs: memory always, redis
// when selected.
func TestFloodStores(t *testing.T) {
	for _, c := range []struct {
		stores []string
		want   string
	}{
		{[]string{"memory", "file", "redis"}, "memory,redis"},
		{[]string{"file"}, "memory"},
		{[]string{"redis"}, "memory,redis"},
		{[]string{"naive-redis"}, "memory"},
	} {
		if got := strings.Join(floodStores(c.stores), ","); got != c.want {
			t.Errorf("floodStores(%v) = %s, want %s", c.stores, got, c.want)
		}
	}
	if v := envValue([]string{"GOGC=200", "PASSWORD_COST=6", "X=a=b", "PASSWORD_COST=8"}, "PASSWORD_COST"); v != "8" {
		t.Errorf("envValue = %q, want the last, 8", v)
	}
	if v := envValue([]string{"X=a=b"}, "X"); v != "a=b" {
		t.Errorf("envValue = %q, want a=b", v)
	}
	if envValue(nil, "PASSWORD_COST") != "" {
		t.Error("envValue of nothing")
	}
}
