// Package redistest starts real redis-server processes for tests: a single
// server or a three-master Redis Cluster, each on free loopback ports, with no
// persistence, stopped when the test ends. It only ever talks to servers it
// started itself; a Redis that is already running (say on 127.0.0.1:6379) is
// never used.
//
// When redis-server or redis-cli is not installed the test is skipped, except
// when the environment variable CI is "true": there a missing dependency fails
// the test.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

const (
	startTimeout = 10 * time.Second      // until a started server answers PING
	pollInterval = 15 * time.Millisecond // between readiness probes
	stopTimeout  = 5 * time.Second       // until a killed server is reaped
	bindAttempts = 3                     // ports tried when redis cannot bind
)

// Server is a redis-server this helper started.
type Server struct {
	bin   string
	dir   string
	port  int
	extra []string // further redis-server arguments (cluster mode)

	log *syncBuffer // stdout and stderr of every run, for failure messages

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil when stopped
	exited chan struct{} // closed when cmd has been reaped
}

// Start starts a redis-server on a free 127.0.0.1 port, with no persistence
// (--save "" --appendonly no) and its own --dir in tb.TempDir(), and waits
// until it answers PING. It is stopped when tb's cleanup runs.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, nil)
}

// start starts a server with further redis-server arguments made by extraArgs
// (given the server, its port and directory chosen), if not nil.
func start(tb testing.TB, extraArgs func(tb testing.TB, s *Server) []string) *Server {
	tb.Helper()
	s := &Server{bin: need(tb, "redis-server"), dir: tb.TempDir(), log: &syncBuffer{}}
	tb.Cleanup(s.kill)
	var err error
	for attempt := 1; attempt <= bindAttempts; attempt++ {
		s.port = freePort(tb)
		if extraArgs != nil {
			s.extra = extraArgs(tb, s)
		}
		if err = s.launch(); err == nil {
			return s
		}
		if !errors.Is(err, errBind) {
			break
		}
	}
	tb.Fatalf("redistest: starting redis-server: %v\n%s", err, s.log.tail())
	return nil
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns "redis://127.0.0.1:PORT/0".
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Stop kills the server, as a crash would; its data is gone (there is no
// persistence). Calls to the port then fail with "connection refused".
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("redistest: stopping %s: %v\n%s", s.Addr(), err, s.log.tail())
	}
}

// Restart starts the server again on the same port, stopping it first if it
// runs, and waits until it is ready. The new server starts empty.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("redistest: stopping %s: %v\n%s", s.Addr(), err, s.log.tail())
	}
	var err error
	// The port was ours a moment ago, but another process may have taken it
	// or the kernel may still hold it for a short while: try for a second.
	for deadline := time.Now().Add(time.Second); ; {
		if err = s.launch(); err == nil {
			return
		}
		if !errors.Is(err, errBind) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("redistest: restarting redis-server on %s: %v\n%s", s.Addr(), err, s.log.tail())
}

// Pause stops the server process with SIGSTOP: Redis then hangs, accepting
// connections (the kernel does) but answering nothing.
func (s *Server) Pause(tb testing.TB) {
	tb.Helper()
	s.signal(tb, syscall.SIGSTOP)
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume(tb testing.TB) {
	tb.Helper()
	s.signal(tb, syscall.SIGCONT)
}

// Client returns a plain go-redis client of the server, for inspecting it.
// It is closed when tb's cleanup runs. Its dial and retry settings are
// reduced from go-redis's defaults so that a call to a stopped server fails
// in milliseconds rather than seconds, and it honours context deadlines.
func (s *Server) Client(tb testing.TB) *goredis.Client {
	tb.Helper()
	c := goredis.NewClient(&goredis.Options{
		Addr:          s.Addr(),
		DialTimeout:   time.Second,
		DialerRetries: 1,
		ReadTimeout:   2 * time.Second,
		MaxRetries:    1,
		// Honour the deadline of the caller's context, say on a paused server.
		ContextTimeoutEnabled: true,
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// CommandCalls returns, from INFO commandstats, how many times each command
// ran since the server started or since ResetStats: "get" -> 3,
// "evalsha" -> 1, "client|setinfo" -> 2. It asks on a connection of its own
// with no handshake, so no command of a client library is counted, and it
// leaves out the "info" and "config|resetstat" entries that CommandCalls and
// ResetStats themselves add.
func (s *Server) CommandCalls(tb testing.TB) map[string]int64 {
	tb.Helper()
	calls, err := CommandCalls(s.Addr())
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return calls
}

// CommandCalls returns the calls of each command that the Redis at addr has
// run, from INFO commandstats, as (*Server).CommandCalls does.
func CommandCalls(addr string) (map[string]int64, error) {
	reply, err := Do(addr, "INFO", "commandstats")
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats on %s: %w", addr, err)
	}
	calls := map[string]int64{}
	for _, line := range strings.Split(reply, "\n") {
		// cmdstat_get:calls=3,usec=12,usec_per_call=4.00,rejected_calls=0,failed_calls=0
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name = strings.ToLower(strings.TrimPrefix(name, "cmdstat_"))
		if name == "info" || name == "config|resetstat" {
			continue
		}
		for _, field := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("INFO commandstats on %s: bad line %q", addr, line)
				}
				calls[name] = n
			}
		}
	}
	return calls, nil
}

// ResetStats resets the server's statistics (CONFIG RESETSTAT), so that
// CommandCalls counts from now on.
func (s *Server) ResetStats(tb testing.TB) {
	tb.Helper()
	if _, err := s.do("CONFIG", "RESETSTAT"); err != nil {
		tb.Fatalf("redistest: CONFIG RESETSTAT on %s: %v", s.Addr(), err)
	}
}

// Cluster is a Redis Cluster of three masters (no replicas) this helper
// started.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts three redis-servers in cluster mode (each with its own
// --cluster-config-file in a temporary directory, on free client and bus
// ports), joins them with `redis-cli --cluster create ... --cluster-replicas 0
// --cluster-yes`, and waits until every node reports cluster_state:ok. The
// servers are stopped when tb's cleanup runs.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	cli := need(tb, "redis-cli")
	clusterArgs := func(tb testing.TB, s *Server) []string {
		bus := freePort(tb)
		for bus == s.port {
			bus = freePort(tb)
		}
		return []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-node-timeout", "5000",
		}
	}
	c := &Cluster{}
	for range 3 {
		c.nodes = append(c.nodes, start(tb, clusterArgs))
	}

	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.Command(cli, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = sysProcAttr()
	if err := runWithTimeout(cmd, 30*time.Second); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out.String())
	}

	deadline := time.Now().Add(startTimeout)
	for _, n := range c.nodes {
		for {
			info, err := n.do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster node %s not ok after %v: %v\n%s\nredis-cli:\n%s",
					n.Addr(), startTimeout, err, info, out.String())
			}
			time.Sleep(pollInterval)
		}
	}
	return c
}

// Addrs returns the host:port of the three masters.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// need returns the path of the binary name, or ends the test: a skip, or a
// failure when CI is "true".
func need(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s not installed (CI=true, so this fails instead of skipping): %v", name, err)
	}
	tb.Skipf("%s not installed", name)
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// errBind marks a start that failed because the port was taken.
var errBind = errors.New("port in use")

// launch starts the process on s.port and waits until it answers PING. On
// any failure the process is killed.
func (s *Server) launch() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
	}
	args = append(args, s.extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = sysProcAttr()
	fmt.Fprintf(s.log, "--- redistest: %s %s\n", s.bin, strings.Join(args, " "))
	logStart := s.log.Len()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			out := s.log.since(logStart)
			if strings.Contains(out, "Address already in use") || strings.Contains(out, "Failed listening on port") {
				return fmt.Errorf("%w: redis-server exited: %s", errBind, cmd.ProcessState)
			}
			return fmt.Errorf("redis-server exited before answering PING: %s", cmd.ProcessState)
		default:
		}
		reply, err := s.do("PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return fmt.Errorf("no PONG from %s after %v: %v %q", s.Addr(), startTimeout, err, reply)
		}
		time.Sleep(pollInterval)
	}
}

// stop kills the process, if it runs, and waits until it is reaped.
func (s *Server) stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	// SIGKILL also ends a paused (SIGSTOPped) process.
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("pid %d still running %v after SIGKILL", cmd.Process.Pid, stopTimeout)
	}
}

// kill is the cleanup: stop, reporting nothing.
func (s *Server) kill() { _ = s.stop() }

func (s *Server) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		tb.Fatalf("redistest: %v to %s: the server is not running", sig, s.Addr())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("redistest: %v to %s: %v", sig, s.Addr(), err)
	}
}

// do sends one command to s (see Do).
func (s *Server) do(args ...string) (string, error) { return Do(s.Addr(), args...) }

// Do sends one command to the Redis at addr on a new connection, without
// any handshake (so that nothing but the command shows in INFO
// commandstats), and returns the reply: a status or bulk string, or an
// integer as text. An error reply is an error.
func Do(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write(req.Bytes()); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("unexpected reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("unexpected reply %q", line)
	}
}

// runWithTimeout runs cmd, killing it after d.
func runWithTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running after %v; killed", d)
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a process's
// stdout and stderr and the reads of failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// since returns what was written after the first n bytes.
func (b *syncBuffer) since(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[n:])
}

// tail returns the last few kilobytes written, for a failure message.
func (b *syncBuffer) tail() string {
	const max = 4 << 10
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.buf.Bytes()
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return "redis-server output:\n" + string(out)
}
