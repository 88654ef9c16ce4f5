// Command totebench is tote's load benchmark: it builds tote, runs it on
// each session store (memory, file, and redis on a private redis-server it
// starts), and the naive design of the same cart on memory and on Redis
// (naive-memory, naive-redis: see naive.go), drives their hot routes with
// wrk from a pool of sessions, and prints one table of requests per second,
// p50 and p99 latency, the ratio to a minimal Fiber hello world measured in
// the same run, and Redis commands per request, for guests and, on tote's
// stores, for logged-in sessions; then tote's p99 against the naive
// design's on the same storage, the logged-in rows against the guest rows,
// the catalog page's p99 during a login flood, a line on a new visitor's
// Redis round trips and one contention line per store.
//
//	go run ./cmd/totebench                 # every store and route, about 6 minutes
//	go run ./cmd/totebench -d 10 -stores redis,naive-redis -routes post,cart
//	go run ./cmd/totebench -d 1 -stores memory,redis -contention=false
//
// The load is a shop's: a pool of sessions (-sessions, 512), each with a
// small cart (3 lines), taken in turn by wrk's connections, so that no
// session has two requests in flight. Each wrk thread owns half of the pool
// and walks it round robin: a session's next request leaves only after the
// 255 other sessions of its thread have had one. One session hammered from
// every connection measures the concurrency control instead, and is
// reported apart as contention, with a check that no visit answered 200 was
// lost.
//
// The routes:
//
//	post  POST /api/cart/items {"product_id":"totebench-deep","quantity":1}: a change
//	      (store Get + compare-and-swap). A session's first two requests in each
//	      wrk run, and every 45th after them, are a PUT of that line back to 1
//	      (also a change), so the line never reaches the limit of 99.
//	cart  GET /api/cart: a read (one store Get).
//	page  GET /: the catalog page, which counts a visit (a change) and renders HTML.
//
// tote runs with NEW_SESSIONS_PER_IP=0: the pools come from one loopback
// address, past the default budget of new sessions per client.
//
// With -login (the default), each of tote's stores is measured again after
// its guest rows, on the same tote, with a second pool of sessions, each
// logged in to an account of its own (bench-0, bench-1 ...: POST
// /api/account from a new visitor, which logs the session in) with the
// same 3 lines, in the account's cart. Those rows are labelled "memory
// (logged in)" and so on, and after the table each is compared with the
// guest row of its store and route: its ratio to the hello world over the
// guest row's (target: at least 0.7), and on redis its commands per
// request (target: at most 2 for a read, 3 for a change). Sign-up hashes
// the password: tote runs with PASSWORD_COST=4 (bcrypt's cost, default 10)
// for these pools, so that 512 sign-ups take seconds (see login.go).
//
// With -loginflood (the default), tote runs once more, on memory and, when
// selected, on redis, at the default password cost, with the guest pool
// and -flood-accounts accounts: GET / of the guest pool is measured in -d
// rounds of a one-second run unloaded and one while -flood-clients
// goroutines POST /api/login with the right password in a loop, and the
// table gives the logins per second, the share of 503 overloaded, and the
// page's rate and p99 unloaded and flooded (target: the p99 flooded within
// 2x of unloaded; see flood.go).
//
// The baseline is this same binary (totebench -hello ADDR): Fiber's hello
// world, driven by the same wrk script with cookies, so that the client's
// cost is the same in every run. wrk, tote, redis-server and the baseline
// share the machine's cores, and a shared machine is noisy: each cell is -d
// one-second wrk runs of tote interleaved with as many of the baseline
// (hello, tote, tote, hello, hello, tote ...), after a warm-up, and its ratio
// is tote's rate over the baseline's in those runs. The absolute numbers
// depend on the machine and on whatever else runs on it; the ratios are what
// to compare. Latency percentiles pool the runs' distributions (see
// result.percentile). wrk must be installed (Debian: apt-get install wrk).
//
// The second baseline is the naive design (totebench -naive ADDR
// -naive-store memory|redis), what issue 5's "p99 latency at 64
// connections no worse than the naive design's" compares with: Fiber's
// middleware/session, the cart a map in the session, store.Get and
// sess.Save on every request, no locking, and the same catalog page
// rendered by gofiber/template/html. It is measured exactly as tote is
// (same script, a pool of its own sessions, the same interleaving with the
// hello world); its contention line reports the visits it lost, which its
// design allows.
//
// With -versus BINARY, two builds of tote are compared: on each store the
// build (or -tote) and BINARY run side by side, each with its own port,
// pool of sessions, DATA_DIR and redis-server, and each cell rotates
// one-second runs of the two and of the hello world (see versus.go). The
// table then gives both rates, their ratio, and each one's ratio to the
// hello world. -login and -loginflood do not apply to it.
//
//	go run ./cmd/totebench -tote /tmp/new -versus /tmp/old -stores memory,redis -routes post,cart -contention=false
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	seconds       int      // -d: measured seconds per cell
	warmup        int      // -warmup: seconds of unmeasured load before each cell
	stores        []string // -stores
	routes        []string // -routes
	sessions      int      // -sessions: size of the pool
	threads       int      // -t
	connections   int      // -c
	contention    bool     // -contention
	profileDir    string   // -cpuprofile: a CPU profile of tote per cell
	keep          bool     // -keep: keep the temporary directory
	toteBin       string   // -tote: a tote binary to run instead of building one
	versusBin     string   // -versus: a second tote binary to measure beside it
	toteEnv       []string // -env: more environment for tote (and the naive baseline)
	naiveRead     bool     // -naive-read-save: the naive GET /api/cart saves
	login         bool     // -login: each route again with a pool of logged-in sessions
	loginFlood    bool     // -loginflood: the catalog page's p99 during a login flood
	floodClients  int      // -flood-clients: the login flood's goroutines
	floodAccounts int      // -flood-accounts: the accounts they log in to
}

var (
	allStores = []string{"memory", "file", "redis", "naive-memory", "naive-redis"}
	allRoutes = []string{"post", "cart", "page"}
)

func main() {
	hello := flag.String("hello", "", "serve the Fiber hello world on this address and nothing else (used by totebench itself)")
	naiveAddr := flag.String("naive", "", "serve the naive design's cart (naive.go) on this address and nothing else (used by totebench itself)")
	var nc naiveConfig
	flag.StringVar(&nc.store, "naive-store", "memory", "with -naive: the session storage, memory or redis")
	flag.StringVar(&nc.redisAddr, "naive-redis", "", "with -naive -naive-store redis: the redis-server's `HOST:PORT` (no default)")
	flag.StringVar(&nc.catalog, "naive-catalog", "", "with -naive: a catalog `file`, as tote's CATALOG_FILE (default: the embedded catalog)")
	flag.BoolVar(&nc.readSave, "naive-read-save", true, "the naive design's GET /api/cart saves the session, as its other routes do (store.Get + sess.Save on every request); false: it only reads")
	var o options
	var stores, routes string
	flag.IntVar(&o.seconds, "d", 5, "measured seconds per cell")
	flag.IntVar(&o.warmup, "warmup", 1, "seconds of load before each cell, not measured")
	flag.StringVar(&stores, "stores", strings.Join(allStores, ","), "session stores to run, comma-separated: "+strings.Join(allStores, ","))
	flag.StringVar(&routes, "routes", strings.Join(allRoutes, ","), "routes to drive, comma-separated: post (POST /api/cart/items), cart (GET /api/cart), page (GET /)")
	flag.IntVar(&o.sessions, "sessions", 512, "sessions in the pool")
	flag.IntVar(&o.threads, "t", 2, "wrk threads")
	flag.IntVar(&o.connections, "c", 64, "wrk connections")
	flag.BoolVar(&o.contention, "contention", true, "also measure one session from every connection, per store")
	flag.BoolVar(&o.login, "login", true, fmt.Sprintf("on tote's stores, measure the routes again with a pool of sessions logged in to an account each (tote with PASSWORD_COST=%d), and compare them with the guests' (target: %.1fx)", loginCost, loginTarget))
	flag.BoolVar(&o.loginFlood, "loginflood", true, fmt.Sprintf("measure GET /'s p99 unloaded and during a flood of right-password logins, at the default PASSWORD_COST, on memory and, when selected, redis (target: within %.0fx)", floodTarget))
	flag.IntVar(&o.floodClients, "flood-clients", 32, "with -loginflood: goroutines that POST /api/login in a loop, each on its own connection")
	flag.IntVar(&o.floodAccounts, "flood-accounts", 8, "with -loginflood: accounts that the flood logs in to")
	flag.StringVar(&o.profileDir, "cpuprofile", "", "write a CPU profile of tote for each cell into this directory (tote's DEBUG_ADDR)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (tote's logs, the file store, wrk's script)")
	flag.StringVar(&o.toteBin, "tote", "", "run this tote binary instead of building ./cmd/tote (to compare versions)")
	flag.StringVar(&o.versusBin, "versus", "", "also run this tote `BINARY` on each store, beside tote (-tote or the build), in interleaved runs, and print a table of the two")
	flag.Func("env", "`KEY=VALUE` to add to tote's environment and the naive baseline's, e.g. GOGC=200 (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want KEY=VALUE")
		}
		o.toteEnv = append(o.toteEnv, v)
		return nil
	})
	flag.Parse()
	o.naiveRead = nc.readSave

	if *hello != "" {
		if err := serveHello(*hello); err != nil {
			fmt.Fprintln(os.Stderr, "totebench -hello:", err)
			os.Exit(1)
		}
		return
	}
	if *naiveAddr != "" {
		if err := serveNaive(*naiveAddr, nc); err != nil {
			fmt.Fprintln(os.Stderr, "totebench -naive:", err)
			os.Exit(1)
		}
		return
	}
	var err error
	if o.stores, err = parseList(stores, allStores); err != nil {
		fail(fmt.Errorf("-stores: %w", err))
	}
	if o.routes, err = parseList(routes, allRoutes); err != nil {
		fail(fmt.Errorf("-routes: %w", err))
	}
	if o.versusBin != "" && slices.ContainsFunc(o.stores, isNaive) {
		fail(errors.New("-versus compares two builds of tote: leave the naive-* stores out of -stores"))
	}
	if o.seconds < 1 || o.warmup < 0 || o.sessions < o.threads || o.threads < 1 || o.connections < o.threads {
		fail(errors.New("need -d >= 1, -warmup >= 0, -t >= 1, -c >= -t and -sessions >= -t"))
	}
	if o.floodClients < 1 || o.floodAccounts < 1 {
		fail(errors.New("need -flood-clients >= 1 and -flood-accounts >= 1"))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fail(err)
	}
}

// allNaive reports whether every store is one of the naive baseline's.
func allNaive(stores []string) bool {
	return !slices.ContainsFunc(stores, func(s string) bool { return !isNaive(s) })
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "totebench:", err)
	os.Exit(1)
}

func parseList(s string, known []string) ([]string, error) {
	var out []string
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !slices.Contains(known, v) {
			return nil, fmt.Errorf("unknown %q (want some of %s)", v, strings.Join(known, ","))
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty")
	}
	return out, nil
}

// run is the whole benchmark: build, start the baseline, then each store's
// cells, then the table.
func run(ctx context.Context, o options, out io.Writer) error {
	wrkPath, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk is not installed (Debian: apt-get install wrk)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil && (slices.Contains(o.stores, "redis") || slices.Contains(o.stores, "naive-redis")) {
		return errors.New("redis-server is not installed (Debian: apt-get install redis-server), or leave redis out: -stores memory,file,naive-memory")
	}
	dir, err := os.MkdirTemp("", "totebench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(out, "# keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}

	b := &bench{o: o, dir: dir, wrk: wrkPath, out: out}
	fmt.Fprintf(out, "# totebench: %s\n", b.machine())
	if o.versusBin != "" {
		fmt.Fprintf(out, "# wrk -t%d -c%d; a cell: %ds of warm-up of each build, then %d rounds of one-second runs of tote, versus and the hello world, in rotating order; %d sessions of 3 lines per build; GOMAXPROCS %d\n",
			o.threads, o.connections, o.warmup, o.seconds, o.sessions, runtime.NumCPU())
	} else {
		fmt.Fprintf(out, "# wrk -t%d -c%d; a cell: %ds of warm-up, then %d one-second runs interleaved with %d of the hello world; %d sessions of 3 lines; GOMAXPROCS %d\n",
			o.threads, o.connections, o.warmup, o.seconds, o.seconds, o.sessions, runtime.NumCPU())
	}
	fmt.Fprintln(out, "# tote with NEW_SESSIONS_PER_IP=0: the pools come from one loopback address")
	if o.versusBin != "" {
		if o.login || o.loginFlood {
			fmt.Fprintln(out, "# -versus: no logged-in rows and no login flood")
		}
	} else {
		if o.login && !allNaive(o.stores) {
			fmt.Fprintf(out, "# logged in: after each store's guest rows, the same routes with a second pool of %d sessions, each signed up to an account of its own (bench-<n>) with the 3 lines in the account's cart; tote with PASSWORD_COST=%d (bcrypt's cost, default 10; no measured route hashes)\n",
				o.sessions, loginCost)
		}
		if o.loginFlood {
			fmt.Fprintf(out, "# login flood on %s: tote at the default PASSWORD_COST, %d rounds of GET / unloaded and while %d clients POST /api/login with the right password of %d accounts\n",
				strings.Join(floodStores(o.stores), ","), o.seconds, o.floodClients, o.floodAccounts)
		}
	}
	if slices.ContainsFunc(o.stores, isNaive) {
		saves := "every request saves the session, GET /api/cart included"
		if !o.naiveRead {
			saves = "every request but GET /api/cart saves the session (-naive-read-save=false)"
		}
		fmt.Fprintf(out, "# naive-*: Fiber's middleware/session (gob), the cart a map[string]int, %s; no locking; the catalog page by gofiber/template/html\n", saves)
	}
	if o.toteBin != "" {
		fmt.Fprintln(out, "# tote:", o.toteBin)
		b.tote = o.toteBin
	} else {
		fmt.Fprintln(out, "# building tote ...")
		if b.tote, err = buildTote(ctx, dir); err != nil {
			return err
		}
	}
	if o.versusBin != "" {
		fmt.Fprintln(out, "# versus:", o.versusBin)
		b.versus = o.versusBin
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	if err := b.writeFiles(); err != nil {
		return err
	}

	start := time.Now()
	hello, err := b.startHello(ctx)
	if err != nil {
		return err
	}
	defer hello.stop()
	if b.versus != "" {
		return b.runVersus(ctx, start)
	}
	var rows []row
	var lines []string
	for _, store := range o.stores {
		r, l, err := b.store(ctx, store)
		if err != nil {
			return fmt.Errorf("%s store: %w", store, err)
		}
		rows = append(rows, r...)
		lines = append(lines, l...)
	}
	var floods []floodRow
	if o.loginFlood {
		for _, store := range floodStores(o.stores) {
			f, err := b.loginFlood(ctx, store)
			if err != nil {
				return fmt.Errorf("%s login flood: %w", store, err)
			}
			floods = append(floods, f)
		}
	}
	fmt.Fprintln(out)
	printTable(out, rows)
	printP99(out, rows, o.connections)
	printLogin(out, rows)
	printFlood(out, floods)
	if len(lines) > 0 {
		fmt.Fprintln(out)
		for _, l := range lines {
			fmt.Fprintln(out, l)
		}
	}
	fmt.Fprintf(out, "\n# %s in all\n", time.Since(start).Round(time.Second))
	return nil
}

// machine describes where the benchmark runs.
func (b *bench) machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := ""
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load average " + strings.Join(strings.Fields(string(data))[:3], " ")
	}
	wrkVersion := ""
	if outp, err := exec.Command(b.wrk, "-v").CombinedOutput(); err == nil {
		if f := strings.Fields(string(outp)); len(f) >= 2 {
			wrkVersion = ", " + f[0] + " " + f[1]
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s %s/%s%s%s", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH, wrkVersion, load)
}

// buildTote builds cmd/tote into dir.
func buildTote(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "tote")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "tote/cmd/tote")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build tote/cmd/tote: %w", err)
	}
	return bin, nil
}
