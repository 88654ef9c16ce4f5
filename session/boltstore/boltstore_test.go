package boltstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"tote/session"
	"tote/session/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) session.Store {
		return openStore(tb, tb.TempDir(), Options{})
	})
}

// openStore opens a store in dir that is closed when tb ends.
func openStore(tb testing.TB, dir string, o Options) *Store {
	tb.Helper()
	s, err := Open(dir, o)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// mustCAS stores data under id or fails tb.
func mustCAS(tb testing.TB, s *Store, id string, old, next uint64, data []byte, ttl time.Duration) {
	tb.Helper()
	if err := s.CompareAndSwap(context.Background(), id, old, next, data, ttl); err != nil {
		tb.Fatalf("CompareAndSwap(%s, %d->%d): %v", id, old, next, err)
	}
}

// mustGet fails tb unless id holds version and data.
func mustGet(tb testing.TB, s *Store, id string, version uint64, data []byte) {
	tb.Helper()
	rec, found, err := s.Get(context.Background(), id)
	if err != nil || !found {
		tb.Fatalf("Get(%s): found=%v err=%v, want found", id, found, err)
	}
	if rec.Version != version || !bytes.Equal(rec.Data, data) {
		tb.Fatalf("Get(%s) = version %d %q, want version %d %q", id, rec.Version, rec.Data, version, data)
	}
}

// mustNotFind fails tb unless id is not found, without error.
func mustNotFind(tb testing.TB, s *Store, id string) {
	tb.Helper()
	rec, found, err := s.Get(context.Background(), id)
	if err != nil || found || rec.Version != 0 || rec.Data != nil {
		tb.Fatalf("Get(%s) = %+v, %v, %v; want zero record, false, nil", id, rec, found, err)
	}
}

// putRaw writes value under key straight into the bucket, bypassing the
// encoding and the version check.
func putRaw(tb testing.TB, s *Store, key string, value []byte) {
	tb.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketName).Put([]byte(key), value)
	})
	if err != nil {
		tb.Fatalf("put %s: %v", key, err)
	}
}

// rawLen counts the keys in the bucket, expired or not.
func rawLen(tb testing.TB, s *Store) int {
	tb.Helper()
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketName).ForEach(func(k, v []byte) error { n++; return nil })
	})
	if err != nil {
		tb.Fatalf("count keys: %v", err)
	}
	return n
}

// checkConsistent runs bbolt's own consistency check over the database.
func checkConsistent(tb testing.TB, s *Store) {
	tb.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		tb.Fatalf("database is inconsistent: %v", err)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "data")
	s := openStore(t, dir, Options{})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("data directory mode = %v, want no group or other access", perm)
	}
	if want := filepath.Join(dir, FileName); s.Path() != want {
		t.Errorf("Path() = %s, want %s", s.Path(), want)
	}
	if _, err := os.Stat(s.Path()); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	binary := make([]byte, 10000)
	for i := range binary {
		binary[i] = byte(i * 13)
	}
	records := []struct {
		name    string
		id      string
		version uint64
		data    []byte
		ttl     time.Duration
	}{
		{"text", "cart-1", 1, []byte(`{"items":[1,2,3]}`), time.Hour},
		{"binary", "cart-2", 1<<40 + 3, binary, time.Hour},
		{"empty", "cart-3", 7, []byte{}, time.Hour},
		{"no expiry", "cart-4", 2, []byte("forever"), 0},
	}

	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		mustCAS(t, s, r.id, 0, r.version, r.data, r.ttl)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, dir, Options{})
	for _, r := range records {
		t.Run(r.name, func(t *testing.T) {
			mustGet(t, s, r.id, r.version, r.data)
			// The record can be swapped from where it was left.
			mustCAS(t, s, r.id, r.version, r.version+1, []byte("next"), time.Hour)
		})
	}
	checkConsistent(t, s)
}

// helperEnv names the variable that turns TestHelperProcess into the child
// of TestUncleanStop: its value is the data directory.
const helperEnv = "TOTE_BOLTSTORE_HELPER_DIR"

// helperRecords is how many records the child acknowledges before "ready".
const helperRecords = 200

func helperID(i int) string { return fmt.Sprintf("acked-%04d", i) }

func helperData(i int) []byte { return []byte(fmt.Sprintf("payload %d %s", i, strings.Repeat("x", i))) }

// TestHelperProcess is not a test: it is the child process of
// TestUncleanStop, and returns at once unless started by it.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		return
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "helper: "+format+"\n", args...)
		os.Exit(2)
	}
	// Never outlive a parent that failed to kill us.
	time.AfterFunc(30*time.Second, func() { fail("not killed within 30s") })

	s, err := Open(dir, Options{SweepEvery: 20 * time.Millisecond})
	if err != nil {
		fail("%v", err)
	}
	ctx := context.Background()
	const workers = 16
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < helperRecords; i += workers {
				if err := s.CompareAndSwap(ctx, helperID(i), 0, uint64(i+1), helperData(i), time.Hour); err != nil {
					fail("write %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Println("ready")

	// Keep writing, and rewriting, until killed, so that the kill lands in
	// the middle of transactions.
	var n atomic.Int64
	for range workers {
		go func() {
			for {
				i := n.Add(1)
				id := fmt.Sprintf("more-%d", i%500)
				rec, _, err := s.Get(ctx, id)
				if err != nil {
					fail("get %s: %v", id, err)
				}
				err = s.CompareAndSwap(ctx, id, rec.Version, rec.Version+1, helperData(int(i%300)), time.Hour)
				if err != nil && !errors.Is(err, session.ErrConflict) {
					fail("write %s: %v", id, err)
				}
			}
		}()
	}
	select {}
}

func TestUncleanStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, stdout) // drain until the child dies
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })

	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("child exited before ready: %v\n%s", err, stderr.Bytes())
	case <-time.After(20 * time.Second):
		t.Fatalf("child not ready within 20s\n%s", stderr.Bytes())
	}

	// While the child runs, the database is taken: a second process cannot
	// open it, and is told so.
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("Open succeeded while another process holds the database")
	} else if !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("Open while held: %v, want an error saying it is in use", err)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Exited() {
			t.Fatalf("child ended with %v, want killed by a signal\n%s", err, stderr.Bytes())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("child not dead 10s after SIGKILL")
	}

	s := openStore(t, dir, Options{})
	checkConsistent(t, s)
	for i := range helperRecords {
		mustGet(t, s, helperID(i), uint64(i+1), helperData(i))
	}
	// Whatever else the child got in is readable too.
	more := rawLen(t, s) - helperRecords
	for i := range 500 {
		id := fmt.Sprintf("more-%d", i)
		if _, _, err := s.Get(context.Background(), id); err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after reopen: %v", err)
	}
	t.Logf("%d acknowledged records intact, %d more written before the kill", helperRecords, more)
}

func TestSweep(t *testing.T) {
	const short = 200 * time.Millisecond

	t.Run("explicit sweep removes expired records and keeps live ones", func(t *testing.T) {
		s := openStore(t, t.TempDir(), Options{SweepEvery: time.Hour})
		for i := range 5 {
			mustCAS(t, s, fmt.Sprint("short-", i), 0, 1, []byte("x"), short)
		}
		mustCAS(t, s, "live", 0, 1, []byte("keep"), time.Hour)
		mustCAS(t, s, "forever", 0, 1, []byte("keep"), 0)
		if n, err := s.Sweep(); n != 0 || err != nil {
			t.Fatalf("Sweep before expiry = %d, %v; want 0, nil", n, err)
		}
		time.Sleep(short + 100*time.Millisecond)
		mustNotFind(t, s, "short-0") // expired, though not yet swept
		if got := rawLen(t, s); got != 7 {
			t.Fatalf("%d keys before the sweep, want 7", got)
		}
		if n, err := s.Sweep(); n != 5 || err != nil {
			t.Fatalf("Sweep = %d, %v; want 5, nil", n, err)
		}
		if got := rawLen(t, s); got != 2 {
			t.Fatalf("%d keys after the sweep, want 2", got)
		}
		mustGet(t, s, "live", 1, []byte("keep"))
		mustGet(t, s, "forever", 1, []byte("keep"))
	})

	t.Run("background sweeper purges without a call", func(t *testing.T) {
		s := openStore(t, t.TempDir(), Options{SweepEvery: 50 * time.Millisecond})
		for i := range 5 {
			mustCAS(t, s, fmt.Sprint("short-", i), 0, 1, []byte("x"), short)
		}
		mustCAS(t, s, "live", 0, 1, []byte("keep"), time.Hour)
		waitFor(t, 3*time.Second, func() bool { return rawLen(t, s) == 1 })
		mustGet(t, s, "live", 1, []byte("keep"))
	})

	t.Run("large bucket is swept in chunks", func(t *testing.T) {
		s := openStore(t, t.TempDir(), Options{SweepEvery: time.Hour})
		past := time.Now().Add(-time.Second).UnixNano()
		future := time.Now().Add(time.Hour).UnixNano()
		const total = 3*sweepScan + 17
		dead := 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketName)
			for i := range total {
				exp := future
				if i%3 != 0 {
					exp = past
					dead++
				}
				if err := b.Put([]byte(fmt.Sprintf("k%06d", i)), encode(exp, 1, []byte("d"))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.Sweep(); n != dead || err != nil {
			t.Fatalf("Sweep = %d, %v; want %d, nil", n, err, dead)
		}
		if got := rawLen(t, s); got != total-dead {
			t.Fatalf("%d keys left, want %d", got, total-dead)
		}
	})
}

func TestOpenWhileOpen(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir, Options{})
	start := time.Now()
	s, err := Open(dir, Options{})
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("second Open of an open database succeeded")
	}
	if elapsed > 1500*time.Millisecond {
		t.Errorf("second Open took %v, want at most 1.5s", elapsed)
	}
	path := filepath.Join(dir, FileName)
	for _, want := range []string{path, "in use by another process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestCorruptValue(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		value []byte
	}{
		{"3 bytes", []byte{1, 2, 3}},
		{"empty", []byte{}},
		{"15 bytes", make([]byte, 15)},
		{"version 0", encode(time.Now().Add(time.Hour).UnixNano(), 0, []byte("data"))},
	}
	s := openStore(t, t.TempDir(), Options{SweepEvery: time.Hour})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprint("corrupt-", i)
			putRaw(t, s, id, tt.value)
			mustNotFind(t, s, id)
			if err := s.CompareAndSwap(ctx, id, 1, 2, []byte("x"), time.Hour); !errors.Is(err, session.ErrConflict) {
				t.Fatalf("swap with old=1 over a corrupt value: err = %v, want ErrConflict", err)
			}
			mustCAS(t, s, id, 0, 1, []byte("fresh"), time.Hour)
			mustGet(t, s, id, 1, []byte("fresh"))
		})
	}
	t.Run("sweep deletes corrupt values", func(t *testing.T) {
		for i, tt := range tests {
			putRaw(t, s, fmt.Sprint("corrupt-", i), tt.value)
		}
		if n, err := s.Sweep(); n != len(tests) || err != nil {
			t.Fatalf("Sweep = %d, %v; want %d, nil", n, err, len(tests))
		}
	})
}

func TestDataIsCopied(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{})
	buf := []byte("original")
	mustCAS(t, s, "id", 0, 1, buf, time.Hour)
	copy(buf, "CLOBBER!") // the caller reuses its buffer
	mustGet(t, s, "id", 1, []byte("original"))
	rec, _, _ := s.Get(ctx, "id")
	rec.Data[0] = 'X' // the caller scribbles on what Get returned
	mustGet(t, s, "id", 1, []byte("original"))
}

func TestInvalidArguments(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want error // nil: any error
	}{
		{"Get with canceled context", func() error { _, _, err := s.Get(canceled, "id"); return err }, context.Canceled},
		{"CompareAndSwap with canceled context", func() error { return s.CompareAndSwap(canceled, "id", 0, 1, nil, time.Hour) }, context.Canceled},
		{"Ping with canceled context", func() error { return s.Ping(canceled) }, context.Canceled},
		{"empty id", func() error { return s.CompareAndSwap(ctx, "", 0, 1, nil, time.Hour) }, nil},
		{"next version 0", func() error { return s.CompareAndSwap(ctx, "id", 0, 0, nil, time.Hour) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || errors.Is(err, session.ErrConflict) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if got := rawLen(t, s); got != 0 {
		t.Fatalf("%d keys stored by refused calls, want 0", got)
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{SweepEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mustCAS(t, s, "id", 0, 1, []byte("x"), time.Hour)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("sweeper still running after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if _, _, err := s.Get(ctx, "id"); err == nil {
		t.Error("Get after Close succeeded")
	}
	if err := s.CompareAndSwap(ctx, "id", 1, 2, nil, time.Hour); err == nil || errors.Is(err, session.ErrConflict) {
		t.Errorf("CompareAndSwap after Close: err = %v, want a system error", err)
	}
}

// BenchmarkCompareAndSwapParallel measures writes from 64 concurrent
// connections, which the group commit coalesces into shared fsyncs.
func BenchmarkCompareAndSwapParallel(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, b.TempDir(), Options{})
	var conn atomic.Int64
	data := make([]byte, 512)
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprint("bench-", conn.Add(1))
		var version uint64
		for pb.Next() {
			if err := s.CompareAndSwap(ctx, id, version, version+1, data, time.Hour); err != nil {
				b.Error(err)
				return
			}
			version++
		}
	})
}

// BenchmarkGetParallel measures reads from 64 concurrent connections.
func BenchmarkGetParallel(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, b.TempDir(), Options{})
	const ids = 1000
	for i := range ids {
		mustCAS(b, s, fmt.Sprint("bench-", i), 0, 1, make([]byte, 512), time.Hour)
	}
	var conn atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprint("bench-", conn.Add(1)%ids)
		for pb.Next() {
			if _, found, err := s.Get(ctx, id); !found || err != nil {
				b.Errorf("Get: found=%v err=%v", found, err)
				return
			}
		}
	})
}
