package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests of "Limits and abuse": connections (descriptors, per client
// address), new sessions per client address, the lifetime of visits-only
// sessions, and SESSION_MAX.

// teeLog collects tote's output (its JSON log) for a test; it takes
// concurrent writes.
type teeLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *teeLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *teeLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records returns the log's JSON lines whose msg is msg, decoded.
func (b *teeLog) records(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// startToteLogged is startTote (the real run() on a loopback port) that
// also keeps everything tote writes to its stdout.
func startToteLogged(tb testing.TB, env map[string]string) (*instance, *teeLog) {
	tb.Helper()
	if env["ADDR"] == "" {
		env["ADDR"] = "127.0.0.1:0"
	}
	if env["PASSWORD_COST"] == "" {
		env["PASSWORD_COST"] = "4"
	}
	out := &teeLog{}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{done: make(chan error, 1), stop: cancel}
	go func() {
		err := run(ctx, []string{"tote"}, func(k string) string { return env[k] }, pw)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		in.done <- err
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(pr, out))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		close(addr)
		io.Copy(out, pr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			tb.Fatalf("tote did not start: %v", <-in.done)
		}
		in.base = "http://" + a
	case <-time.After(10 * time.Second):
		tb.Fatal("tote did not start within 10 s")
	}
	tb.Cleanup(func() { in.shutdown(tb) })
	return in, out
}

// child is tote run as a separate process (the test binary with
// TOTE_AS_MAIN=1, see TestMain), possibly under a wrapper such as prlimit.
type child struct {
	cmd    *exec.Cmd
	base   string
	addr   string
	out    *teeLog       // its stdout: the JSON log
	exited chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's, once exited is closed
}

// startChild runs tote as a child process, after the command words of
// wrap (none: directly), with env added to the test's environment, and
// waits until it listens.
func startChild(t *testing.T, wrap []string, env ...string) *child {
	t.Helper()
	args := append(append([]string{}, wrap...), os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), append([]string{"TOTE_AS_MAIN=1", "ADDR=127.0.0.1:0", "PASSWORD_COST=4"}, env...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd, out: &teeLog{}, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stdout, ch.out))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		io.Copy(ch.out, stdout)
		ch.err = cmd.Wait()
		close(ch.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-ch.exited
	})
	select {
	case a := <-addr:
		ch.addr, ch.base = a, "http://"+a
		return ch
	case <-ch.exited:
		t.Fatalf("the tote process exited at start: %v", ch.err)
	case <-time.After(20 * time.Second):
		t.Fatal("the tote process did not start within 20 s")
	}
	return nil
}

// alive reports whether the child process is still running.
func (ch *child) alive() bool {
	select {
	case <-ch.exited:
		return false
	default:
		return true
	}
}

// kill kills the child process with SIGKILL and waits until it has exited.
func (ch *child) kill() {
	ch.cmd.Process.Signal(syscall.SIGKILL)
	<-ch.exited
}

// openFiles returns how many file descriptors process pid has open.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// flood opens n idle TCP connections to addr (each sends nothing) and
// returns them; the test closes them. Connections that the server refuses
// at once are still returned (their reads end).
func flood(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	d := net.Dialer{Timeout: 2 * time.Second}
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Logf("dial %d: %v", len(conns), err)
			break
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() { closeAll(conns) })
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// waitHealthy waits until GET /healthz and GET /api/products answer 200
// on fresh connections, within d.
func waitHealthy(t *testing.T, base string, d time.Duration) {
	t.Helper()
	cl := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(d)
	for _, path := range []string{"/healthz", "/api/products"} {
		for {
			res, err := cl.Get(base + path)
			if err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("status %d", res.StatusCode)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s does not answer 200 %v after the flood ended: %v", path, d, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestDescriptorFlood runs tote as a process with 64 file descriptors
// (prlimit) and floods it with 200 idle connections: it refuses what it
// cannot serve and does not exit. Then it lowers the process's limit to
// a few descriptors above those it holds, so that accepting fails with
// EMFILE, and floods it again: tote logs the failure, waits, and accepts
// again once the connections are gone.
func TestDescriptorFlood(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("descriptor limits are tested on Linux")
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prlimit (util-linux) is missing")
		}
		t.Skip("no prlimit (util-linux)")
	}
	ch := startChild(t, []string{prlimit, "--nofile=64:64", "--"}, "SESSION_STORE=memory")
	pid := ch.cmd.Process.Pid
	listening := ch.out.records("listening")
	if len(listening) != 1 || listening[0]["connections"] != float64(16) {
		t.Fatalf("listening line %v; want connections 16 (64 descriptors less 48)", listening)
	}

	t.Run("refused past the descriptors it has", func(t *testing.T) {
		conns := flood(t, ch.addr, 200)
		time.Sleep(300 * time.Millisecond)
		if !ch.alive() {
			t.Fatalf("tote exited during the flood: %v\n%s", ch.err, ch.out)
		}
		// The connections past the 16 it serves are answered 503 and
		// closed at once.
		refused := 0
		for _, c := range conns[len(conns)-20:] {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			b, _ := io.ReadAll(c)
			if bytes.HasPrefix(b, []byte("HTTP/1.1 503 ")) {
				refused++
			}
		}
		if refused != 20 {
			t.Errorf("%d of the last 20 connections were answered 503 and closed; want all", refused)
		}
		if len(ch.out.records("connections refused")) != 1 {
			t.Errorf("the log says %d times that connections were refused; want once (a minute)", len(ch.out.records("connections refused")))
		}
		closeAll(conns)
		waitHealthy(t, ch.base, 3*time.Second)
	})

	t.Run("accept fails with EMFILE", func(t *testing.T) {
		held := openFiles(t, pid)
		limit := held + 4
		if out, err := exec.Command(prlimit, "--pid", strconv.Itoa(pid), fmt.Sprintf("--nofile=%d:%d", limit, limit)).CombinedOutput(); err != nil {
			t.Fatalf("prlimit --pid: %v: %s", err, out)
		}
		conns := flood(t, ch.addr, 200)
		deadline := time.Now().Add(5 * time.Second)
		for len(ch.out.records("accept failed: out of file descriptors or memory; retrying")) == 0 {
			if !ch.alive() {
				t.Fatalf("tote exited during the flood: %v\n%s", ch.err, ch.out)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no accept failed with %d descriptors (%d held) and 200 connections", limit, held)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Second) // a few retries, each failing
		if !ch.alive() {
			t.Fatalf("tote exited when accepting failed: %v\n%s", ch.err, ch.out)
		}
		t.Logf("%d descriptors held, limit %d: %s", held, limit, ch.out.records("accept failed: out of file descriptors or memory; retrying")[0]["err"])
		closeAll(conns)
		waitHealthy(t, ch.base, 3*time.Second)
		if !ch.alive() {
			t.Fatalf("tote exited: %v", ch.err)
		}
	})
}

// rawRequest sends one GET on conn and reads its answer.
func rawRequest(conn net.Conn, path string) (*http.Response, error) {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: tote\r\n\r\n", path); err != nil {
		return nil, err
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res, nil
}

// TestMaxConnsPerIP: with MAX_CONNS_PER_IP=5, a sixth connection from the
// same address is closed at once (after a 429), the five are served, and a
// connection is taken again once one of them closes.
func TestMaxConnsPerIP(t *testing.T) {
	in, log := startToteLogged(t, map[string]string{"SESSION_STORE": "memory", "MAX_CONNS_PER_IP": "5"})
	addr := strings.TrimPrefix(in.base, "http://")
	var five []net.Conn
	for i := range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		five = append(five, c)
		if res, err := rawRequest(c, "/healthz"); err != nil || res.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v; want 200", i+1, res, err)
		}
	}

	sixth, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sixth.Close()
	start := time.Now()
	sixth.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(sixth) // to EOF: the server closes it
	if err != nil {
		t.Fatalf("the sixth connection was not closed: %v (read %q)", err, b)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the sixth connection was closed after %v; want at once", took)
	}
	if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 429 ")) {
		t.Errorf("the sixth connection got %q; want nothing or a 429", b)
	}
	waitFor(t, 2*time.Second, func() bool { return len(log.records("connections refused")) > 0 })
	if r := log.records("connections refused")[0]; r["level"] != "WARN" || !strings.Contains(fmt.Sprint(r["detail"]), "MaxConnsPerIP=5") {
		t.Errorf("the log line of the refusal: %v", r)
	}

	for i, c := range five {
		if res, err := rawRequest(c, "/api/products"); err != nil || res.StatusCode != 200 {
			t.Errorf("connection %d after the sixth was refused: %v %v; want 200", i+1, res, err)
		}
	}

	five[0].Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		res, err := rawRequest(c, "/healthz")
		c.Close()
		if err == nil && res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new connection served after one of the five closed: %v %v", res, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue returns the value of the unlabelled metric name in a
// /metrics body, failing the test if it is absent.
func metricValue(tb testing.TB, body []byte, name string) float64 {
	tb.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		tb.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func (in *instance) metric(tb testing.TB, name string) float64 {
	tb.Helper()
	return metricValue(tb, in.client(tb).do(http.MethodGet, "/metrics", "").body, name)
}

// sessionCookies returns the session_id cookies a response set.
func (r *response) sessionCookies() []string {
	var out []string
	for _, v := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(v, cookieName+"=") {
			out = append(out, v)
		}
	}
	return out
}

// wantPageNotStored checks a page served to a visitor who was not given a
// session: 200, counting the visit as 1, with no session cookie.
func wantPageNotStored(t *testing.T, c *client, path string) {
	t.Helper()
	res, doc := c.page(path)
	if res.status != 200 || text(t, doc, "#visit-count") != "1 time" || len(res.sessionCookies()) != 0 {
		t.Errorf("GET %s: %d, visits %q, Set-Cookie %q; want 200, 1 time, no session cookie", path, res.status, text(t, doc, "#visit-count"), res.sessionCookies())
	}
}

// wantTooManySessions checks a 429 too_many_sessions with a Retry-After
// of at least a second and no session cookie.
func wantTooManySessions(t *testing.T, res *response, what string) {
	t.Helper()
	if res.status != 429 || res.errorCode(t) != "too_many_sessions" || len(res.sessionCookies()) != 0 {
		t.Errorf("%s: %d %s, Set-Cookie %q; want 429 too_many_sessions, no cookie", what, res.status, res.body, res.sessionCookies())
	}
	if s, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("%s: Retry-After %q; want a number of seconds", what, res.header.Get("Retry-After"))
	}
}

// TestNewSessionsPerIP: NEW_SESSIONS_PER_IP=5 lets five cookieless visitors
// of one address start a session; the sixth is served the page without
// one, and a change that would start one is 429; a visitor with a session
// is not limited.
func TestNewSessionsPerIP(t *testing.T) {
	for _, store := range []string{"memory", "file"} {
		t.Run(store, func(t *testing.T) {
			in := startTote(t, map[string]string{"SESSION_STORE": store, "DATA_DIR": t.TempDir(), "NEW_SESSIONS_PER_IP": "5"})
			var first []*client
			for i := range 5 {
				c := in.client(t)
				res, doc := c.page("/")
				if res.status != 200 || len(res.sessionCookies()) != 1 || text(t, doc, "#visit-count") != "1 time" {
					t.Fatalf("visitor %d: %d, Set-Cookie %q; want 200 with a session cookie", i+1, res.status, res.sessionCookies())
				}
				first = append(first, c)
			}
			sixth := in.client(t)
			wantPageNotStored(t, sixth, "/")
			wantPageNotStored(t, sixth, "/cart")
			wantPageNotStored(t, in.client(t), "/products/dune")

			wantTooManySessions(t, in.client(t).json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`), "a cookieless add")
			wantTooManySessions(t, in.client(t).json(http.MethodPost, "/api/account", `{"username":"budget-a","password":"long enough pw"}`), "a cookieless sign-up")

			// A visitor with a session is not limited: its page views
			// count, its adds and its sign-up (a new id) work.
			c := first[0]
			if res, doc := c.page("/"); res.status != 200 || text(t, doc, "#visit-count") != "2 times" {
				t.Errorf("a visitor with a session: %d, %q; want 200, 2 times", res.status, text(t, doc, "#visit-count"))
			}
			if res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":2}`); res.status != 200 {
				t.Errorf("an add of a visitor with a session: %d %s", res.status, res.body)
			}
			if res := c.json(http.MethodPost, "/api/account", `{"username":"budget-b","password":"long enough pw"}`); res.status != 201 {
				t.Errorf("a sign-up of a visitor with a session: %d %s", res.status, res.body)
			}
			if got := c.cart(); got.quantity("dune") != 2 || got.User == nil {
				t.Errorf("after the sign-up: %q, user %v", lines(got), got.User)
			}
			// A cookieless login of that account is a new session too.
			wantTooManySessions(t, in.client(t).json(http.MethodPost, "/api/login", `{"username":"budget-b","password":"long enough pw"}`), "a cookieless login")

			if n := in.metric(t, "tote_sessions_created_total"); n != 6 { // five visitors, and the sign-up's session
				t.Errorf("tote_sessions_created_total %v, want 6", n)
			}
			if n := in.metric(t, "tote_sessions_refused_total"); n < 6 {
				t.Errorf("tote_sessions_refused_total %v, want at least 6", n)
			}
		})
	}
}

// TestNewSessionsPerForwardedClient: behind a trusted proxy the budget is
// the X-Forwarded-For client's; without TRUSTED_PROXIES X-Forwarded-For
// is ignored.
func TestNewSessionsPerForwardedClient(t *testing.T) {
	visit := func(in *instance, xff string) *response {
		c := in.client(t)
		return c.do(http.MethodGet, "/", "", "X-Forwarded-For", xff)
	}
	t.Run("trusted proxy", func(t *testing.T) {
		in := startTote(t, map[string]string{"SESSION_STORE": "memory", "NEW_SESSIONS_PER_IP": "5", "TRUSTED_PROXIES": "127.0.0.1/32"})
		for _, client := range []string{"203.0.113.7", "198.51.100.23"} {
			for i := range 5 {
				// The proxy appends the address it saw; what the client
				// wrote to its left is not believed.
				if res := visit(in, fmt.Sprintf("10.9.9.%d, %s", i, client)); len(res.sessionCookies()) != 1 {
					t.Fatalf("client %s, visit %d: no session cookie", client, i+1)
				}
			}
			if res := visit(in, "10.9.9.99, "+client); res.status != 200 || len(res.sessionCookies()) != 0 {
				t.Errorf("client %s, visit 6: %d, Set-Cookie %q; want 200 and no session", client, res.status, res.sessionCookies())
			}
		}
		// A trusted hop on the right is skipped: the client is the
		// right-most address that is not a proxy.
		if res := visit(in, "203.0.113.7, 127.0.0.1"); len(res.sessionCookies()) != 0 {
			t.Errorf("203.0.113.7 behind two proxies got a sixth session")
		}
		// The proxy's own requests (no X-Forwarded-For) are the proxy's.
		if res := in.client(t).do(http.MethodGet, "/", ""); len(res.sessionCookies()) != 1 {
			t.Errorf("a request of the proxy itself was refused")
		}
	})
	t.Run("no trusted proxy", func(t *testing.T) {
		in := startTote(t, map[string]string{"SESSION_STORE": "memory", "NEW_SESSIONS_PER_IP": "5"})
		for i := range 5 {
			if res := visit(in, fmt.Sprintf("203.0.113.%d", i)); len(res.sessionCookies()) != 1 {
				t.Fatalf("visit %d: no session cookie", i+1)
			}
		}
		if res := visit(in, "198.51.100.1"); len(res.sessionCookies()) != 0 {
			t.Errorf("X-Forwarded-For was believed without TRUSTED_PROXIES: a sixth session from one peer")
		}
	})
}

// wantMaxAge checks a session cookie's Max-Age against ttl (a second or
// two may have passed since it was set).
func wantMaxAge(t *testing.T, res *response, ttl time.Duration, what string) {
	t.Helper()
	want := int(ttl / time.Second)
	if res.setCookie == nil || res.setCookie.MaxAge > want || res.setCookie.MaxAge < want-2 {
		t.Errorf("%s: cookie %v; want Max-Age %d", what, res.setCookie, want)
	}
}

// TestEmptySessionTTL: a session that holds only visits lives
// EMPTY_SESSION_TTL (or SESSION_TTL, if shorter), and its cookie says so;
// once it holds a cart it lives SESSION_TTL.
func TestEmptySessionTTL(t *testing.T) {
	for _, store := range []string{"memory", "file"} {
		t.Run(store, func(t *testing.T) {
			env := func(kv ...string) map[string]string {
				m := map[string]string{"SESSION_STORE": store, "DATA_DIR": t.TempDir()}
				for i := 0; i+1 < len(kv); i += 2 {
					m[kv[i]] = kv[i+1]
				}
				return m
			}
			t.Run("cookies", func(t *testing.T) {
				in := startTote(t, env("EMPTY_SESSION_TTL", "1h"))
				c := in.client(t)
				res, _ := c.page("/")
				wantMaxAge(t, res, time.Hour, "a visits-only session")
				res, _ = c.page("/cart")
				wantMaxAge(t, res, time.Hour, "a visits-only session's second page")
				res = c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
				wantMaxAge(t, res, 336*time.Hour, "after an add")
				res, _ = c.page("/")
				wantMaxAge(t, res, 336*time.Hour, "a page view of a session with a cart")
				res = c.do(http.MethodDelete, "/api/cart", "")
				wantMaxAge(t, res, time.Hour, "after the cart is cleared")

				def := startTote(t, env())
				res, _ = def.client(t).page("/")
				wantMaxAge(t, res, 24*time.Hour, "a visits-only session by default")

				short := startTote(t, env("EMPTY_SESSION_TTL", "1h", "SESSION_TTL", "30m"))
				c = short.client(t)
				res, _ = c.page("/")
				wantMaxAge(t, res, 30*time.Minute, "a visits-only session with a shorter SESSION_TTL")
				res = c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
				wantMaxAge(t, res, 30*time.Minute, "an add with a shorter SESSION_TTL")
			})
			t.Run("expiry", func(t *testing.T) {
				in := startTote(t, env("EMPTY_SESSION_TTL", "1s"))
				visits, shopper := in.client(t), in.client(t)
				res, _ := visits.page("/")
				wantMaxAge(t, res, time.Second, "a visits-only session")
				shopper.page("/")
				shopper.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
				time.Sleep(1500 * time.Millisecond)
				if got := visits.cart(); got.Visits != 0 || got.ExpiresAt != nil {
					t.Errorf("a visits-only session after its EMPTY_SESSION_TTL: %d visits, expires_at %v; want gone", got.Visits, got.ExpiresAt)
				}
				if got := shopper.cart(); got.quantity("dune") != 1 || got.Visits != 1 {
					t.Errorf("a session with a cart after EMPTY_SESSION_TTL: %q, %d visits; want dune:1, 1 visit", lines(got), got.Visits)
				}
			})
		})
	}
}

// TestSessionMax: with SESSION_MAX=3 the store evicts visits-only sessions,
// the one closest to expiry first, and never a session with a cart or a
// login (or an account); with nothing left to evict, a new visitor is
// served without a session and a cookieless change is 429.
func TestSessionMax(t *testing.T) {
	for _, store := range []string{"memory", "file"} {
		t.Run(store, func(t *testing.T) {
			in := startTote(t, map[string]string{"SESSION_STORE": store, "DATA_DIR": t.TempDir(), "SESSION_MAX": "3", "NEW_SESSIONS_PER_IP": "0"})
			visitor := func() *client {
				c := in.client(t)
				if res, _ := c.page("/"); len(res.sessionCookies()) != 1 {
					t.Fatalf("a new visitor with room in the store got no session")
				}
				time.Sleep(5 * time.Millisecond) // expiries apart
				return c
			}
			gone := func(c *client) bool { return c.cart().ExpiresAt == nil }

			a, b, c := visitor(), visitor(), visitor()
			if res, doc := a.page("/"); text(t, doc, "#visit-count") != "2 times" || len(res.sessionCookies()) != 1 {
				t.Fatal("a's second visit was not stored")
			}
			// The store is full: b's session is the closest to expiry (a's
			// was renewed), so the next visitor evicts b.
			d := visitor()
			if !gone(b) || gone(a) || gone(c) || gone(d) {
				t.Fatalf("after a fourth visitor: a gone %v, b %v, c %v, d %v; want b only", gone(a), gone(b), gone(c), gone(d))
			}
			// b's cookie now loads as a new visitor.
			if _, doc := b.page("/"); text(t, doc, "#visit-count") != "1 time" {
				t.Errorf("the evicted session's cookie: %q visits; want a new visitor's 1 time", text(t, doc, "#visit-count"))
			}
			// That evicted c (the closest to expiry), leaving a, d, b.
			if !gone(c) || gone(a) || gone(d) {
				t.Fatalf("b's return did not evict c alone: a gone %v, c %v, d %v", gone(a), gone(c), gone(d))
			}

			// A cart and a login take the place of visits-only sessions.
			shopper := in.client(t)
			if res := shopper.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":2}`); res.status != 200 {
				t.Fatalf("an add with visits-only sessions to evict: %d %s", res.status, res.body)
			}
			member := in.client(t)
			if res := member.json(http.MethodPost, "/api/account", `{"username":"max-member","password":"long enough pw"}`); res.status != 201 {
				t.Fatalf("a sign-up with visits-only sessions to evict: %d %s", res.status, res.body)
			}
			for name, cl := range map[string]*client{"a": a, "b": b, "d": d} {
				if !gone(cl) {
					t.Errorf("visits-only session %s is still there, with a cart, an account and its session in a store of 3", name)
				}
			}

			// Full of what may not be evicted.
			wantPageNotStored(t, in.client(t), "/")
			wantTooManySessions(t, in.client(t).json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`), "a cookieless add in a full store")
			if got := shopper.cart(); got.quantity("dune") != 2 {
				t.Errorf("the cart was evicted: %q", lines(got))
			}
			if res := member.do(http.MethodGet, "/api/account", ""); res.status != 200 {
				t.Errorf("the login was evicted: GET /api/account %d", res.status)
			}
			// The sessions that are stored still change.
			if res := shopper.json(http.MethodPost, "/api/cart/items", `{"product_id":"kindred"}`); res.status != 200 {
				t.Errorf("an add of a stored session in a full store: %d %s", res.status, res.body)
			}
			if res, doc := shopper.page("/"); res.status != 200 || text(t, doc, "#visit-count") != "1 time" || len(res.sessionCookies()) != 1 {
				t.Errorf("a page of a stored session in a full store: %d %q", res.status, text(t, doc, "#visit-count"))
			}

			if n := in.metric(t, "tote_sessions_evicted_total"); n != 5 { // b, c, then a, d and b
				t.Errorf("tote_sessions_evicted_total %v, want 5", n)
			}
			if n := in.metric(t, "tote_store_records"); n != 3 {
				t.Errorf("tote_store_records %v, want 3", n)
			}
		})
	}
}
