package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// flood.go: -loginflood, the catalog page's latency while logins flood in.
//
// tote checks passwords with bcrypt, a bounded number at a time, and
// answers 503 overloaded past a short queue, so that logins never take
// every core from the pages. The login flood measures that: tote at the
// default PASSWORD_COST (bcrypt's 10, what a deployment runs), the guest
// pool of sessions (no hashing) and a handful of accounts; then -d rounds,
// each a one-second wrk run of GET / on the guest pool unloaded, and one
// while -flood-clients goroutines of totebench, each on its own keep-alive
// connection, POST /api/login with the right password of one of the
// accounts in a loop, as fast as they are answered, in an order that
// alternates from round to round. The flood starts floodRamp before its
// wrk run, so that tote's queue of password checks is full when the run
// starts, and ends when the run has: every client waits for its answer in
// flight, so that the next run starts with no password check left.
//
// Each login is a new visitor's (no cookie), so each success stores a new
// session. With the right password the failed-login throttle (429
// too_many_attempts) cannot trigger; a 429 would be too_many_sessions.

// floodRamp is how long the flood runs before its wrk run starts.
const floodRamp = 250 * time.Millisecond

// floodTarget is the most that the page's p99 under the flood may be, as a
// multiple of its p99 unloaded.
const floodTarget = 2.0

// floodCount is what a login flood's requests were answered.
type floodCount struct {
	ok         int64            // 200: a login
	overloaded int64            // 503 overloaded: the queue of password checks full
	throttled  int64            // 429: too_many_attempts or too_many_sessions
	other      map[string]int64 // any other answer, by "status code", and transport errors
	latency    []time.Duration  // of each 200
	elapsed    time.Duration    // from the flood's start to its last answer
}

// answers returns the requests answered or failed.
func (c floodCount) answers() int64 {
	n := c.ok + c.overloaded + c.throttled
	for _, v := range c.other {
		n += v
	}
	return n
}

// others returns the answers other than 200, 503 overloaded and 429.
func (c floodCount) others() int64 {
	var n int64
	for _, v := range c.other {
		n += v
	}
	return n
}

// rate returns the logins (200s) per second.
func (c floodCount) rate() float64 { return float64(c.ok) / max(c.elapsed, time.Microsecond).Seconds() }

// tries returns the answers per second.
func (c floodCount) tries() float64 {
	return float64(c.answers()) / max(c.elapsed, time.Microsecond).Seconds()
}

// overloadShare returns the share of answers that were 503 overloaded.
func (c floodCount) overloadShare() float64 {
	return float64(c.overloaded) / float64(max(c.answers(), 1))
}

// percentile returns the p-th percentile of the logins' latency.
func (c floodCount) percentile(p float64) time.Duration {
	if len(c.latency) == 0 {
		return 0
	}
	l := slices.Sorted(slices.Values(c.latency))
	i := int(float64(len(l))*p/100+0.5) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// add merges another flood's count into c.
func (c *floodCount) add(o floodCount) {
	c.ok += o.ok
	c.overloaded += o.overloaded
	c.throttled += o.throttled
	for k, v := range o.other {
		if c.other == nil {
			c.other = map[string]int64{}
		}
		c.other[k] += v
	}
	c.latency = append(c.latency, o.latency...)
	c.elapsed += o.elapsed
}

// count counts one answer: its status, the JSON error's code in its body,
// and how long it took.
func (c *floodCount) count(status int, body []byte, took time.Duration) {
	switch status {
	case http.StatusOK:
		c.ok++
		c.latency = append(c.latency, took)
		return
	case http.StatusTooManyRequests:
		c.throttled++
		return
	case http.StatusServiceUnavailable:
		if errorCode(body) == "overloaded" {
			c.overloaded++
			return
		}
	}
	c.countOther(strconv.Itoa(status) + " " + errorCode(body))
}

// countOther counts an answer that is not a login, an overload nor a
// throttle: "status code", or a transport error.
func (c *floodCount) countOther(kind string) {
	if c.other == nil {
		c.other = map[string]int64{}
	}
	c.other[kind]++
}

// errorCode returns the code of tote's JSON error body
// {"error":{"code":"..."}}, or "" if body is not one.
func errorCode(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error.Code
}

// flood is a login flood in progress.
type flood struct {
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	count floodCount
}

// startFlood starts clients goroutines, each with a keep-alive connection
// of its own, that POST /api/login to base, each as users[i % len(users)]
// with the right password, one request after the other until end.
func startFlood(base string, users []string, clients int) *flood {
	f := &flood{start: time.Now(), stop: make(chan struct{})}
	for i := range clients {
		f.wg.Add(1)
		go f.client(base, credentialsBody(users[i%len(users)], true))
	}
	return f
}

// client is one of the flood's goroutines: it logs in with body until
// stop, then adds its count to the flood's.
func (f *flood) client(base, body string) {
	defer f.wg.Done()
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	var c floodCount
	for {
		select {
		case <-f.stop:
			f.mu.Lock()
			f.count.add(c)
			f.mu.Unlock()
			return
		default:
		}
		req, err := http.NewRequest("POST", base+"/api/login", strings.NewReader(body))
		if err != nil {
			panic(err) // base is tote's http://ADDR
		}
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			c.countOther("transport error")
			time.Sleep(10 * time.Millisecond) // not a busy loop against a refused connection
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil {
			c.countOther("transport error")
			continue
		}
		c.count(resp.StatusCode, data, time.Since(t0))
	}
}

// end stops the flood, waits for every answer in flight and returns the
// count of all answers.
func (f *flood) end() floodCount {
	close(f.stop)
	f.wg.Wait()
	f.count.elapsed = time.Since(f.start)
	return f.count
}

// seconds formats a duration of about a second or more in seconds, and a
// shorter one as ms does.
func seconds(d time.Duration) string {
	if d < time.Second {
		return ms(d)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// floodRow is the login flood's measure on one store.
type floodRow struct {
	store    string
	clients  int    // the flood's goroutines
	accounts int    // the accounts they log in to
	cost     string // tote's PASSWORD_COST: "default" or -env's
	unloaded result // GET / with no flood
	flooded  result // GET / during the flood
	logins   floodCount
}

// p99Ratio is the page's p99 under the flood over its p99 unloaded.
func (f floodRow) p99Ratio() float64 {
	return float64(f.flooded.percentile(99)) / float64(max(f.unloaded.percentile(99), time.Microsecond))
}

// floodStores returns the stores of the login flood: memory, and redis
// when it is among stores.
func floodStores(stores []string) []string {
	out := []string{"memory"}
	if slices.Contains(stores, "redis") {
		out = append(out, "redis")
	}
	return out
}

// envValue returns the last value of key in env (KEY=VALUE), or "".
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// loginFlood runs tote on store at the default password cost, with the
// guest pool and -flood-accounts accounts, and measures GET / unloaded
// and during a login flood, in -d interleaved rounds.
func (b *bench) loginFlood(ctx context.Context, store string) (floodRow, error) {
	fr := floodRow{store: store, clients: b.o.floodClients, accounts: b.o.floodAccounts, cost: "default"}
	if v := envValue(b.o.toteEnv, "PASSWORD_COST"); v != "" {
		fr.cost = v + " (-env)"
	}
	t, err := b.startTarget(store, "-flood", b.tote)
	if err != nil {
		return fr, err
	}
	defer t.stop()
	fmt.Fprintf(b.out, "# %s-flood: signing up %d accounts (PASSWORD_COST %s) ...\n", store, fr.accounts, fr.cost)
	users, err := t.client.signUpAll("flood", fr.accounts)
	if err != nil {
		return fr, err
	}
	url := t.base + "/"
	if b.o.warmup > 0 {
		if _, err := b.runWrk(ctx, url, "page", t.idFile, b.o.warmup); err != nil {
			return fr, err
		}
	}
	for k := range b.o.seconds {
		for _, flooded := range rotation(k, 2) {
			if flooded == 0 {
				r, err := b.runWrk(ctx, url, "page", t.idFile, 1)
				if err != nil {
					return fr, err
				}
				fr.unloaded.add(r)
				continue
			}
			f := startFlood(t.base, users, fr.clients)
			time.Sleep(floodRamp)
			r, err := b.runWrk(ctx, url, "page", t.idFile, 1)
			fr.logins.add(f.end())
			if err != nil {
				return fr, err
			}
			fr.flooded.add(r)
		}
	}
	if err := t.check(); err != nil {
		return fr, err
	}
	fmt.Fprintf(b.out, "# %s login flood: %.1f logins/s, %.0f%% 503; GET / p99 %s unloaded, %s flooded (%.2f)\n", store,
		fr.logins.rate(), 100*fr.logins.overloadShare(), ms(fr.unloaded.percentile(99)), ms(fr.flooded.percentile(99)), fr.p99Ratio())
	return fr, nil
}

// printFlood prints the login flood's table: per store, the flood's logins
// and refusals, and the catalog page's rate and p99 unloaded and flooded,
// with the verdict on the p99's ratio (target: at most floodTarget).
func printFlood(w io.Writer, rows []floodRow) {
	if len(rows) == 0 {
		return
	}
	width := len("store")
	for _, r := range rows {
		width = max(width, len(r.store))
	}
	f := rows[0]
	fmt.Fprintf(w, "\nlogin flood: GET / (HTML, a visit) of the guest pool, unloaded and while %d clients POST /api/login with the right password of %d accounts, PASSWORD_COST %s (target: p99 flooded within %.0fx of unloaded):\n",
		f.clients, f.accounts, f.cost, floodTarget)
	fmt.Fprintf(w, "  %-*s %8s %7s %6s %5s %6s %9s %9s %8s %8s %9s %9s %6s %s\n", width, "store",
		"logins/s", "tries/s", "503", "429", "other", "login p50", "login p99", "page/s", "flood/s", "page p99", "flood p99", "x p99", "errors")
	for _, r := range rows {
		ratio := r.p99Ratio()
		fmt.Fprintf(w, "  %-*s %8.1f %7.0f %5.1f%% %5d %6d %9s %9s %8.0f %8.0f %9s %9s %6.2f %6s %s\n", width, r.store,
			r.logins.rate(), r.logins.tries(), 100*r.logins.overloadShare(), r.logins.throttled, r.logins.others(),
			seconds(r.logins.percentile(50)), seconds(r.logins.percentile(99)),
			r.unloaded.rps(), r.flooded.rps(), ms(r.unloaded.percentile(99)), ms(r.flooded.percentile(99)), ratio,
			fmt.Sprintf("%d/%d", r.unloaded.statusErrors+r.unloaded.socketErrors, r.flooded.statusErrors+r.flooded.socketErrors),
			verdict(ratio <= floodTarget))
	}
	fmt.Fprintln(w, "  logins/s: 200s per second of flood; tries/s: answers per second; 503: their share that was 503 overloaded (the queue of password checks full);")
	fmt.Fprintln(w, "  429: throttled (with right passwords only too_many_sessions can be); other: any other answer or a transport error; login p50/p99: of the 200s.")
	fmt.Fprintln(w, "  page/s, page p99: GET / with no flood; flood/s, flood p99: during the flood, in interleaved rounds; x p99: flood p99 over page p99;")
	fmt.Fprintln(w, "  errors: the page's responses of 400 or more and socket errors, unloaded/flooded.")
	for _, r := range rows {
		if len(r.logins.other) == 0 {
			continue
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.logins.other)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.logins.other[k]))
		}
		fmt.Fprintf(w, "  %s, the flood's other answers: %s\n", r.store, strings.Join(parts, ", "))
	}
}
