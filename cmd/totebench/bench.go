package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"tote/catalog"
)

// deepID is the benchmark's own book, with a stock that adds never exhaust.
const deepID = "totebench-deep"

// bench is one run of the benchmark.
type bench struct {
	o          options
	dir        string // temporary: logs, data, script, id files
	wrk        string // wrk's path
	tote       string // the built tote
	versus     string // -versus: the other build, or ""
	self       string // this binary, for -hello and -naive
	out        io.Writer
	scriptFile string
	catalog    string   // CATALOG_FILE
	cartBooks  []string // the books of every pool session's cart, deepID last
	helloURL   string
	helloIDs   string // a file of made-up ids for the baseline's cookies
}

// row is one line of the table.
type row struct {
	store, route string
	mode         string // the route's key: post, cart or page
	loggedIn     bool   // measured with the pool of logged-in sessions (login.go)
	res          result
	hello        result  // the baseline's runs interleaved with this row's
	roundTrips   float64 // Redis commands per request; < 0: not measured
}

func (r row) ratio() float64 { return r.res.rps() / r.hello.rps() }

// label is the row's name in the table: its store, "(logged in)" for the
// pool of logged-in sessions.
func (r row) label() string {
	if r.loggedIn {
		return r.store + " (logged in)"
	}
	return r.store
}

var routeNames = map[string]string{
	"post":  "POST /api/cart/items",
	"cart":  "GET /api/cart",
	"page":  "GET / (HTML, a visit)",
	"hello": "GET / (hello world)",
}

// writeFiles writes the wrk script, the catalog and the baseline's ids.
func (b *bench) writeFiles() error {
	b.scriptFile = filepath.Join(b.dir, "totebench.lua")
	if err := os.WriteFile(b.scriptFile, []byte(scriptText()), 0o644); err != nil {
		return err
	}
	// The embedded catalog, as tote serves it, plus one book with a deep
	// stock. Every session's cart holds two of the catalog's books and one
	// copy of the deep one.
	cat := catalog.Default()
	products := append([]catalog.Product(nil), cat.Products()...)
	for _, p := range products {
		if p.Stock >= 2 && len(b.cartBooks) < 2 {
			b.cartBooks = append(b.cartBooks, p.ID)
		}
	}
	b.cartBooks = append(b.cartBooks, deepID)
	products = append(products, catalog.Product{ID: deepID, Title: "The Benchmark", Author: "A. Load", Price: 1250, Currency: cat.Currency(), Stock: 1_000_000})
	data, err := json.Marshal(map[string]any{"currency": cat.Currency(), "products": products})
	if err != nil {
		return err
	}
	b.catalog = filepath.Join(b.dir, "catalog.json")
	if err := os.WriteFile(b.catalog, data, 0o644); err != nil {
		return err
	}
	ids := make([]string, b.o.sessions)
	for i := range ids {
		var r [24]byte
		rand.Read(r[:])
		ids[i] = base64.RawURLEncoding.EncodeToString(r[:])
	}
	b.helloIDs = filepath.Join(b.dir, "hello-ids.txt")
	return os.WriteFile(b.helloIDs, []byte(strings.Join(ids, "\n")+"\n"), 0o644)
}

// startHello starts the baseline, which runs for the whole benchmark (idle
// between its runs), and warms it up.
func (b *bench) startHello(ctx context.Context) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := start("hello world", b.self, []string{"-hello", addr}, nil, filepath.Join(b.dir, "hello.log"))
	if err != nil {
		return nil, err
	}
	b.helloURL = "http://" + addr + "/"
	if err := waitHTTP(p, b.helloURL); err != nil {
		p.stop()
		return nil, err
	}
	if _, err := b.runWrk(ctx, b.helloURL, "hello", b.helloIDs, max(b.o.warmup, 1)); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// cell measures one route after a warm-up: -d runs of one second, each
// next to a one-second run of the hello world, in the order hello, tote,
// tote, hello, hello, tote ..., so that the machine's drift and bursts of
// other load hit both alike. It returns tote's runs and the baseline's.
func (b *bench) cell(ctx context.Context, url, mode, idFile string) (res, hello result, err error) {
	if b.o.warmup > 0 {
		if _, err := b.runWrk(ctx, url, mode, idFile, b.o.warmup); err != nil {
			return res, hello, err
		}
	}
	for k := range b.o.seconds {
		for j := range 2 {
			if (k+j)%2 == 0 {
				r, err := b.runWrk(ctx, b.helloURL, "hello", b.helloIDs, 1)
				if err != nil {
					return res, hello, err
				}
				hello.add(r)
			} else {
				r, err := b.runWrk(ctx, url, mode, idFile, 1)
				if err != nil {
					return res, hello, err
				}
				res.add(r)
			}
		}
	}
	return res, hello, nil
}

// isNaive reports whether store is one of the naive baseline's (naive.go),
// not one of tote's.
func isNaive(store string) bool { return strings.HasPrefix(store, "naive-") }

// store runs tote on one store, or the naive baseline (naive-memory,
// naive-redis), and measures each route, then, with -login, each route
// again with a pool of logged-in sessions (tote only), then contention. It
// returns the table's rows and the lines printed after the table.
func (b *bench) store(ctx context.Context, store string) ([]row, []string, error) {
	login := b.o.login && !isNaive(store)
	var env []string
	if login {
		// Only the logged-in pool's sign-ups hash; no route measured does.
		env = append(env, "PASSWORD_COST="+strconv.Itoa(loginCost))
	}
	t, err := b.startTarget(store, "", b.tote, env...)
	if err != nil {
		return nil, nil, err
	}
	defer t.stop()

	var rows []row
	var lines []string
	for _, route := range b.o.routes {
		r, err := b.measure(ctx, t, route, t.idFile, false)
		if err != nil {
			return nil, nil, err
		}
		rows = append(rows, r)
	}
	if login {
		idFile, err := b.loginPool(t)
		if err != nil {
			return nil, nil, err
		}
		for _, route := range b.o.routes {
			r, err := b.measure(ctx, t, route, idFile, true)
			if err != nil {
				return nil, nil, err
			}
			rows = append(rows, r)
		}
	}

	if t.redisAddr != "" {
		label := "redis round trips"
		if t.naive {
			label += ", " + store
		}
		line, err := b.newVisitor(t, label)
		if err != nil {
			return nil, nil, err
		}
		lines = append(lines, line)
	}

	if b.o.contention {
		line, err := b.contention(ctx, store, t.base, t.client)
		if err != nil {
			return nil, nil, err
		}
		lines = append(lines, line)
	}
	if err := t.check(); err != nil {
		return nil, nil, err
	}
	return rows, lines, nil
}

// measure measures one route of t with the pool of sessions in idFile (the
// logged-in pool when loggedIn): a cell, a CPU profile of it with
// -cpuprofile and, on Redis, the commands sent per request.
func (b *bench) measure(ctx context.Context, t *target, route, idFile string, loggedIn bool) (row, error) {
	r := row{store: t.store, route: routeNames[route], mode: route, loggedIn: loggedIn, roundTrips: -1}
	name := t.store + "-" + route
	if loggedIn {
		name = t.store + "-login-" + route
	}
	// The profile covers the warm-up and the runs of tote, and the
	// baseline's runs in between, when tote idles.
	profile := b.startProfile(ctx, t, name, b.o.warmup+2*b.o.seconds)
	before, err := b.counters(t.client, t.redisAddr)
	if err != nil {
		return r, err
	}
	if r.res, r.hello, err = b.cell(ctx, t.base+"/", route, idFile); err != nil {
		return r, err
	}
	if t.redisAddr != "" {
		time.Sleep(200 * time.Millisecond) // the requests in flight when wrk stopped
		if r.roundTrips, err = b.perRequest(t, before); err != nil {
			return r, err
		}
	}
	if err := profile(); err != nil {
		return r, err
	}
	fmt.Fprintf(b.out, "# %s %s: %.0f requests/s, %.2f of the hello world's %.0f\n", r.label(), r.route, r.res.rps(), r.ratio(), r.hello.rps())
	return r, nil
}

// target is one server under measurement on one store: tote (a build of
// it) or the naive baseline, with its own session pool and, on redis, its
// own redis-server.
type target struct {
	store     string
	tag       string // "" or, for a second build on the same store, "-versus": in file names
	naive     bool
	proc      *proc
	redis     *proc // nil but on redis and naive-redis
	redisAddr string
	debugAddr string // tote's DEBUG_ADDR with -cpuprofile, else ""
	logFile   string
	base      string // http://ADDR
	client    *client
	idFile    string // the pool's session ids, one a line
}

// startTarget starts bin (tote, or with a naive store this binary's naive
// baseline) on store, with a redis-server of its own on redis, waits until
// it is ready and creates its pool of sessions. tag tells its files apart
// from another target's on the same store: its DATA_DIR, logs and ids. env
// is more of tote's environment, which -env overrides.
//
// tote runs with NEW_SESSIONS_PER_IP=0: every session of the pools comes
// from one loopback address, and the default budget, 120 new sessions a
// minute, would refuse the pool's 121st.
func (b *bench) startTarget(store, tag, bin string, env ...string) (*target, error) {
	t := &target{store: store, tag: tag, naive: isNaive(store)}
	started := false
	defer func() {
		if !started {
			t.stop()
		}
	}()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if store == "redis" || store == "naive-redis" {
		t.redis, t.redisAddr, err = startRedis(b.dir, filepath.Join(b.dir, store+tag+"-server.log"))
		if err != nil {
			return nil, err
		}
	}
	var ready string
	if t.naive {
		args := []string{"-naive", addr, "-naive-store", strings.TrimPrefix(store, "naive-"), "-naive-catalog", b.catalog}
		if t.redisAddr != "" {
			args = append(args, "-naive-redis", t.redisAddr)
		}
		if !b.o.naiveRead {
			args = append(args, "-naive-read-save=false")
		}
		t.logFile, ready = filepath.Join(b.dir, store+tag+".log"), servedPath
		// -env's runtime settings (GOGC ...) apply to both designs.
		t.proc, err = start(store, b.self, args, b.o.toteEnv, t.logFile)
	} else {
		env := append([]string{"ADDR=" + addr, "SESSION_STORE=" + store, "CATALOG_FILE=" + b.catalog, "NEW_SESSIONS_PER_IP=0"}, env...)
		env = append(env, b.o.toteEnv...)
		switch store {
		case "file":
			env = append(env, "DATA_DIR="+filepath.Join(b.dir, "data"+tag))
		case "redis":
			env = append(env, "REDIS_URL=redis://"+t.redisAddr+"/0")
		}
		if b.o.profileDir != "" {
			if t.debugAddr, err = freeAddr(); err != nil {
				return nil, err
			}
			env = append(env, "DEBUG_ADDR="+t.debugAddr)
		}
		t.logFile, ready = filepath.Join(b.dir, "tote-"+store+tag+".log"), "/readyz"
		t.proc, err = start("tote"+tag, bin, nil, env, t.logFile)
	}
	if err != nil {
		return nil, err
	}
	t.base = "http://" + addr
	if err := waitHTTP(t.proc, t.base+ready); err != nil {
		return nil, fmt.Errorf("%w; see %s", err, t.logFile)
	}

	if t.naive && b.o.profileDir != "" {
		fmt.Fprintf(b.out, "# %s: no CPU profile (-cpuprofile profiles tote only)\n", store)
	}
	fmt.Fprintf(b.out, "# %s%s: creating %d sessions ...\n", store, tag, b.o.sessions)
	t.client = newClient(t.base)
	t.client.naive = t.naive
	ids, err := t.client.createPool(b.o.sessions, b.cartBooks)
	if err != nil {
		return nil, err
	}
	t.idFile = filepath.Join(b.dir, "ids-"+store+tag+".txt")
	if err := os.WriteFile(t.idFile, []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	started = true
	return t, nil
}

// stop stops the server, then its redis-server.
func (t *target) stop() {
	if t.proc != nil {
		t.proc.stop()
	}
	if t.redis != nil {
		t.redis.stop()
	}
}

// check returns an error if the server exited during the benchmark.
func (t *target) check() error {
	if done, err := t.proc.exited(); done {
		return fmt.Errorf("%s exited during the benchmark (%v); see %s", t.proc.name, err, t.logFile)
	}
	return nil
}

// startProfile starts fetching a CPU profile of seconds from t into the
// -cpuprofile directory as name.pprof, and returns a function that waits
// for it. Without a DEBUG_ADDR it does nothing.
func (b *bench) startProfile(ctx context.Context, t *target, name string, seconds int) func() error {
	if t.debugAddr == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		done <- fetchProfile(ctx, t.debugAddr, seconds, filepath.Join(b.o.profileDir, name+".pprof"))
	}()
	return func() error { return <-done }
}

// perRequest returns the Redis commands that t sent per request it served
// since before. wrk does not count the requests still in flight when it
// stops, so the requests are the server's own count.
func (b *bench) perRequest(t *target, before counters) (float64, error) {
	after, err := b.counters(t.client, t.redisAddr)
	if err != nil {
		return 0, err
	}
	return float64(b.roundTrips(t.store, before.redis, after.redis)) / float64(after.served-before.served), nil
}

// newVisitor measures the Redis round trips of a new visitor's read (no
// cookie, so no session to load) on t, and returns the line to print.
func (b *bench) newVisitor(t *target, label string) (string, error) {
	before, err := commandCalls(t.redisAddr)
	if err != nil {
		return "", err
	}
	const n = 200
	for range n {
		if _, err := t.client.do("GET", "/api/cart", "", "", nil); err != nil {
			return "", err
		}
	}
	after, err := commandCalls(t.redisAddr)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: a new visitor's GET /api/cart (no cookie): %.2f per request (%d requests)",
		label, float64(b.roundTrips(t.store, before, after))/n, n), nil
}

// roundTrips returns the commands that the server on store sent to Redis
// between two snapshots of commandCalls. For tote that is the function
// roundTrips, which subtracts what its compare-and-set script runs inside
// Redis; the naive baseline runs no script, and every command counts.
func (b *bench) roundTrips(store string, before, after map[string]int64) int64 {
	if isNaive(store) {
		return commandsSent(before, after)
	}
	return roundTrips(before, after)
}

// counters are the Redis command counts and the requests tote served.
type counters struct {
	redis  map[string]int64
	served int64
}

// counters reads Redis's INFO commandstats and the request count (tote's
// /metrics, the naive baseline's servedPath), when there is a Redis.
func (b *bench) counters(c *client, redisAddr string) (counters, error) {
	if redisAddr == "" {
		return counters{}, nil
	}
	calls, err := commandCalls(redisAddr)
	if err != nil {
		return counters{}, err
	}
	served, err := c.served()
	return counters{calls, served}, err
}

// contention sends GET / of one session from every connection: each request
// is a visit, a read-modify-write of the same session. It checks that no
// answered visit was lost: the visit count must have grown by at least the
// number of 200s (and by at most that plus the requests still in flight
// when wrk stopped).
func (b *bench) contention(ctx context.Context, store, base string, c *client) (string, error) {
	ids, err := c.createPool(1, b.cartBooks[:1])
	if err != nil {
		return "", err
	}
	idFile := filepath.Join(b.dir, "contention-"+store+".txt")
	if err := os.WriteFile(idFile, []byte(ids[0]+"\n"), 0o644); err != nil {
		return "", err
	}
	if b.o.warmup > 0 {
		if _, err := b.runWrk(ctx, base+"/", "contention", idFile, b.o.warmup); err != nil {
			return "", err
		}
	}
	// Let the requests still in flight finish: an Update waits at most a
	// second for its turn.
	time.Sleep(1200 * time.Millisecond)
	before, err := c.visits(ids[0])
	if err != nil {
		return "", err
	}
	res, err := b.runWrk(ctx, base+"/", "contention", idFile, b.o.seconds)
	if err != nil {
		return "", err
	}
	time.Sleep(1200 * time.Millisecond)
	after, err := c.visits(ids[0])
	if err != nil {
		return "", err
	}
	gained := after - before
	check := "no visit lost"
	switch {
	case isNaive(store):
		// No locking: concurrent visits overwrite each other. That is the
		// naive design, not a failure of the benchmark.
		check = fmt.Sprintf("%.1f%% of the visits answered 200 lost (the naive design has no locking)", 100*float64(max(res.ok-gained, 0))/float64(max(res.ok, 1)))
	case gained < res.ok:
		check = "LOST UPDATES"
	case gained > res.ok+int64(b.o.connections):
		// Only the requests still in flight when wrk stopped (at most one
		// per connection) may count a visit that wrk did not see answered.
		check = "MORE VISITS THAN REQUESTS"
	}
	total := max(res.ok+res.conflicts+res.other, 1)
	return fmt.Sprintf("contention, %-12s one session from %d connections, GET /: %6.0f requests/s, 409 %5.1f%%, other errors %d, p50 %s, p99 %s; visits +%d for %d 200s: %s",
		store, b.o.connections, res.rps(), 100*float64(res.conflicts)/float64(total), res.other+res.socketErrors,
		ms(res.percentile(50)), ms(res.percentile(99)), gained, res.ok, check), nil
}

// fetchProfile saves a CPU profile of seconds from tote's DEBUG_ADDR.
func fetchProfile(ctx context.Context, debugAddr string, seconds int, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, seconds), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile: %v %s", err, resp.Status)
	}
	return os.WriteFile(path, data, 0o644)
}

// client talks to tote's JSON API, or the naive baseline's, to set up the
// sessions.
type client struct {
	base  string
	http  *http.Client
	naive bool // the naive baseline: served reads servedPath
}

func newClient(base string) *client {
	return &client{base: base, http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16},
	}}
}

// statusError is the answer of a request that did not succeed (not 2xx).
type statusError struct {
	method, path string
	status       int
	text         string // e.g. "503 Service Unavailable"
	body         []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %s: %s", e.method, e.path, e.text, e.body)
}

// do sends one request with the session cookie id (if any) and a JSON body
// (if any), and returns the session id the response sets, or id. An answer
// other than 2xx is a *statusError.
func (c *client) do(method, path, id, body string, out any) (string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if id != "" {
		req.Header.Set("Cookie", "session_id="+id)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", &statusError{method: method, path: path, status: resp.StatusCode, text: resp.Status, body: bytes.TrimSpace(data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return "", err
		}
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "session_id" {
			id = ck.Value
		}
	}
	return id, nil
}

// createPool creates n sessions, each with one copy of each book in its
// cart, 16 at a time, and returns their ids.
func (c *client) createPool(n int, books []string) ([]string, error) {
	ids := make([]string, n)
	err := parallel(n, func(i int) error {
		id, err := c.addLines("", books)
		ids[i] = id
		return err
	})
	return ids, err
}

// addLines adds one copy of each book to the cart of the session id (a new
// one when id is "") and returns the session's id.
func (c *client) addLines(id string, books []string) (string, error) {
	for _, book := range books {
		var err error
		if id, err = c.do("POST", "/api/cart/items", id, `{"product_id":"`+book+`","quantity":1}`, nil); err != nil {
			return "", err
		}
	}
	if id == "" {
		return "", errors.New("tote set no session cookie")
	}
	return id, nil
}

// served returns how many requests tote has answered, from /metrics
// (leaving out the scrapes of /metrics), or the naive baseline, from
// servedPath.
func (c *client) served() (int64, error) {
	if c.naive {
		data, err := c.get(servedPath)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q", servedPath, data)
		}
		return n, nil
	}
	data, err := c.get("/metrics")
	if err != nil {
		return 0, err
	}
	var n int64
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "tote_http_requests_total{") || strings.Contains(line, `route="/metrics"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics: %q", line)
		}
		n += int64(v)
	}
	return n, nil
}

// get returns the body of a GET of path, which must answer 200.
func (c *client) get(path string) ([]byte, error) {
	resp, err := c.http.Get(c.base + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s %q", path, resp.Status, data)
	}
	return data, nil
}

// visits returns the session's visit count.
func (c *client) visits(id string) (int64, error) {
	var cart struct {
		Visits int64 `json:"visits"`
	}
	_, err := c.do("GET", "/api/cart", id, "", &cart)
	return cart.Visits, err
}

// parallel runs fn(0..n-1) on 16 goroutines and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// printTable prints the rows aligned: first the baseline over all its runs.
func printTable(w io.Writer, rows []row) {
	var hello result
	width := len("store")
	for _, r := range rows {
		hello.add(r.hello)
		width = max(width, len(r.label()))
	}
	fmt.Fprintf(w, "%-*s %-22s %8s %8s %8s %8s %6s %9s %6s\n", width, "store", "route", "req/s", "p50", "p99", "hello/s", "ratio", "redis/req", "errors")
	fmt.Fprintf(w, "%-*s %-22s %8.0f %8s %8s %8s %6s %9s %6d\n", width, "hello", routeNames["hello"], hello.rps(), ms(hello.percentile(50)), ms(hello.percentile(99)), "", "1.00", "-", hello.statusErrors+hello.socketErrors)
	naive, loggedIn := false, false
	for _, r := range rows {
		rt := "-"
		if r.roundTrips >= 0 {
			rt = fmt.Sprintf("%.2f", r.roundTrips)
		}
		fmt.Fprintf(w, "%-*s %-22s %8.0f %8s %8s %8.0f %6.2f %9s %6d\n", width, r.label(), r.route, r.res.rps(), ms(r.res.percentile(50)), ms(r.res.percentile(99)),
			r.hello.rps(), r.ratio(), rt, r.res.statusErrors+r.res.socketErrors)
		naive = naive || isNaive(r.store)
		loggedIn = loggedIn || r.loggedIn
	}
	fmt.Fprintln(w, "ratio: req/s over hello/s, the hello world's rate in its one-second runs interleaved with the row's.")
	if loggedIn {
		fmt.Fprintf(w, "(logged in): the same routes with a pool of sessions each logged in to an account of its own, the cart the account's; tote with PASSWORD_COST=%d.\n", loginCost)
	}
	if naive {
		fmt.Fprintln(w, "naive-*: the naive design (totebench -naive, naive.go): Fiber's middleware/session and gob, a map cart, no locking, gofiber/template/html.")
		fmt.Fprintln(w, "redis/req: commands the server sent to Redis per request it served (INFO commandstats; for tote, less the GET and SET run inside its CAS script).")
	} else {
		fmt.Fprintln(w, "redis/req: commands tote sent to Redis per request it served (INFO commandstats, less the GET and SET run inside the CAS script).")
	}
	fmt.Fprintln(w, "errors: responses of 400 or more, and socket errors.")
}

// naivePairs are the stores whose p99 printP99 compares: tote's and the
// naive design's on the same storage. tote's file store has no naive
// counterpart, and is compared with none.
var naivePairs = [][2]string{{"memory", "naive-memory"}, {"redis", "naive-redis"}}

// printP99 compares, for each route, tote's p99 latency with the naive
// design's on the same storage (issue 5: "p99 latency at 64 connections no
// worse than the naive design's"), for the pairs that were both measured.
func printP99(w io.Writer, rows []row, connections int) {
	find := func(store, route string) (row, bool) {
		for _, r := range rows {
			if r.store == store && r.route == route && !r.loggedIn {
				return r, true
			}
		}
		return row{}, false
	}
	header := false
	for _, pair := range naivePairs {
		for _, r := range rows {
			if r.store != pair[0] || r.loggedIn {
				continue
			}
			n, ok := find(pair[1], r.route)
			if !ok {
				continue
			}
			if !header {
				fmt.Fprintf(w, "\np99 at %d connections, tote against the naive design on the same storage (issue 5: no worse than the naive design's):\n", connections)
				header = true
			}
			tp, np := r.res.percentile(99), n.res.percentile(99)
			verdict := "held"
			if tp > np {
				verdict = "WORSE"
			}
			fmt.Fprintf(w, "  %-6s %-22s tote %9s  naive %9s  tote/naive %5.2f  %s\n", pair[0], r.route, ms(tp), ms(np), float64(tp)/float64(max(np, 1)), verdict)
		}
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
}
