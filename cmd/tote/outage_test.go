package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tote/session/filestore/tmpfstest"
	"tote/session/redisstore/redistest"
)

// The tests of a store failure seen from outside, on tote run as a process
// of its own: the errors of an outage are logged one a second with a
// count, and SIGTERM after a failure exits 0.

// TestOutageLogAndStop: while Redis is down, 300 failed requests log a
// handful of error lines, whose counts add up to all of them; SIGTERM
// then stops tote with exit status 0.
func TestOutageLogAndStop(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ch := startChild(t, nil, "REDIS_URL="+srv.URL())
	c := &client{tb: t, base: ch.base}
	if res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`); res.status != http.StatusOK {
		t.Fatalf("POST before the outage: %d %s", res.status, res.body)
	}
	srv.Stop(t)
	const n = 300
	for i := range n {
		if res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`); res.status != http.StatusServiceUnavailable {
			t.Fatalf("POST %d during the outage: %d, want 503", i, res.status)
		}
	}
	time.Sleep(2200 * time.Millisecond) // the flush after a quiet second
	lines, total := errorLines(ch.out, "request failed")
	if lines > 10 {
		t.Errorf("%d failed requests logged %d error lines; want a few (one a second)", n, lines)
	}
	if total != n {
		t.Errorf("the error lines count %d failed requests (lines and their suppressed); want %d", total, n)
	}
	t.Logf("%d failed requests: %d error lines", n, lines)
	if client, _ := errorLines(ch.out, "redis client"); client == 0 || client > 10 {
		t.Errorf("go-redis's own complaints: %d lines in tote's log; want a few (one a second)", client)
	}
	stopChild(t, ch)
}

// TestFullDisk fills the file store's filesystem (a tmpfs) under a
// running tote: changes are refused with 503 and reads still served; when
// space comes back tote takes changes again by itself; when the disk fills
// again, SIGTERM exits 0; and a tote started on the same directory has
// every change that was answered 200.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	mnt, err := tmpfstest.Mount(t, "1m")
	if err != nil {
		t.Skipf("no tmpfs: %v", err)
	}
	dir := filepath.Join(mnt, "data")
	ch := startChild(t, nil, "DATA_DIR="+dir, "NEW_SESSIONS_PER_IP=0")
	c := &client{tb: t, base: ch.base}
	if res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"kindred"}`); res.status != http.StatusOK {
		t.Fatalf("POST before the disk filled: %d %s", res.status, res.body)
	}

	// set changes dune's quantity until a change is refused, and returns
	// the last quantity answered 200.
	acked := 0
	setUntilRefused := func(t *testing.T) {
		t.Helper()
		for i := 0; ; i++ {
			if i > 2000 {
				t.Fatal("no change was refused on a full disk")
			}
			q := 1 + i%3
			res := c.json(http.MethodPut, "/api/cart/items/dune", fmt.Sprintf(`{"quantity":%d}`, q))
			switch res.status {
			case http.StatusOK:
				acked = q
				continue
			case http.StatusServiceUnavailable:
				if code := res.errorCode(t); code != "storage_unavailable" || res.header.Get("Retry-After") == "" {
					t.Fatalf("refused change: %s, Retry-After %q; want storage_unavailable with Retry-After", code, res.header.Get("Retry-After"))
				}
				return
			default:
				t.Fatalf("PUT on a full disk: %d %s", res.status, res.body)
			}
		}
	}
	wantCart := func(t *testing.T, c *client) {
		t.Helper()
		cart := c.cart()
		if cart.quantity("kindred") != 1 || cart.quantity("dune") != acked {
			t.Errorf("cart %q; want kindred 1 and dune %d (the last change answered 200)", lines(cart), acked)
		}
	}

	t.Run("full", func(t *testing.T) {
		free := fill(t, mnt)
		setUntilRefused(t)
		wantCart(t, c) // reads are served from memory
		if res := c.do(http.MethodGet, "/readyz", ""); res.status != http.StatusServiceUnavailable {
			t.Errorf("/readyz on a full disk: %d, want 503", res.status)
		}
		if res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`); res.status != http.StatusServiceUnavailable {
			t.Errorf("a change on a full disk: %d, want 503", res.status)
		}
		free()
		waitFor(t, 5*time.Second, func() bool { return c.do(http.MethodGet, "/readyz", "").status == http.StatusOK })
		if res := c.json(http.MethodPut, "/api/cart/items/dune", `{"quantity":2}`); res.status != http.StatusOK {
			t.Fatalf("a change once space came back: %d %s", res.status, res.body)
		}
		acked = 2
		wantCart(t, c)
	})

	t.Run("SIGTERM on a full disk", func(t *testing.T) {
		free := fill(t, mnt)
		setUntilRefused(t)
		lines, total := errorLines(ch.out, "request failed")
		t.Logf("%d refused changes so far, %d error lines", total, lines)
		stopChild(t, ch)
		free()
		next := startChild(t, nil, "DATA_DIR="+dir)
		wantCart(t, &client{tb: t, base: next.base, cookie: c.cookie})
	})
}

// fill writes a file into the filesystem at dir until it is full, and
// returns what removes it.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
}

// errorLines returns how many ERROR lines of msg the log has, and how many
// errors they stand for: each line with an err, plus the ones it says it
// left out (a summary after a quiet second stands only for those).
func errorLines(log *teeLog, msg string) (lines, total int) {
	for _, r := range log.records(msg) {
		if r["level"] != "ERROR" {
			continue
		}
		lines++
		if _, ok := r["err"]; ok {
			total++ // a line of its own; a summary line has no err
		}
		if n, ok := r["suppressed"].(float64); ok {
			total += int(n)
		}
	}
	return lines, total
}

// stopChild sends SIGTERM to the tote process and wants it to exit 0
// within 15 s.
func stopChild(t *testing.T, ch *child) {
	t.Helper()
	if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch.exited:
		if ch.err != nil {
			t.Errorf("after SIGTERM tote exited with %v, want status 0; its log:\n%s", ch.err, tail(ch.out.String(), 10))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("tote did not stop within 15 s of SIGTERM")
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond until it holds, or fails t after timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so within %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
