package redisstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"tote/session"
	"tote/session/redisstore"
	"tote/session/redisstore/redistest"
	"tote/session/storetest"
)

// failBound is how long a call may take to fail when Redis is stopped or hung.
// The timeouts make it about 0.6 s at worst (two attempts of 300 ms); the
// bound leaves room for a slow machine and -race.
const failBound = 1500 * time.Millisecond

func TestMain(m *testing.M) {
	// The outage tests make go-redis log every failed dial; that is
	// expected here and would bury the test output.
	goredis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// open opens a store and closes it at the end of the test.
func open(tb testing.TB, o redisstore.Options) *redisstore.Store {
	tb.Helper()
	s, err := redisstore.Open(o)
	if err != nil {
		tb.Fatalf("Open(%+v): %v", o, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStoreSuite(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		s := open(t, redisstore.Options{URL: srv.URL()})
		storetest.Run(t, func(testing.TB) session.Store { return s })
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := redistest.StartCluster(t)
		s := open(t, redisstore.Options{ClusterAddrs: c.Addrs()})
		storetest.Run(t, func(testing.TB) session.Store { return s })
	})
}

// TestOneRoundTrip counts, with INFO commandstats, the commands each call
// sends: exactly one (GET, EVALSHA or PING).
func TestOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	s := open(t, redisstore.Options{URL: srv.URL()})

	// Warm up: connect, and load the scripts (the first CompareAndSwap or
	// versioned Delete may be EVALSHA answered NOSCRIPT, then EVAL).
	mustCAS(t, s, "warm", 0, 1, "w")
	if err := s.Delete(ctx, "warm", 1); err != nil { // loads the delete script
		t.Fatal(err)
	}
	mustCAS(t, s, "rt", 0, 1, "v1")

	// A script's own commands show in commandstats too: a CompareAndSwap is
	// one EVALSHA from the client plus the GET (and SET) the script runs
	// inside Redis.
	tests := []struct {
		name string
		call func() error
		want map[string]int64
	}{
		{"get found", func() error { return wantGet(ctx, s, "rt", true) }, map[string]int64{"get": 1}},
		{"get missing", func() error { return wantGet(ctx, s, "rt-missing", false) }, map[string]int64{"get": 1}},
		{"create", func() error {
			return s.CompareAndSwap(ctx, "rt-new", 0, session.Write{Version: 1, Data: []byte("n"), TTL: time.Minute})
		}, map[string]int64{"evalsha": 1, "get": 1, "set": 1}},
		{"swap", func() error {
			return s.CompareAndSwap(ctx, "rt", 1, session.Write{Version: 2, Data: []byte("v2"), TTL: time.Minute})
		}, map[string]int64{"evalsha": 1, "get": 1, "set": 1}},
		{"conflict", func() error {
			if err := s.CompareAndSwap(ctx, "rt", 1, session.Write{Version: 2, Data: []byte("stale"), TTL: time.Minute}); !errors.Is(err, session.ErrConflict) {
				return fmt.Errorf("stale swap: err = %v, want ErrConflict", err)
			}
			return nil
		}, map[string]int64{"evalsha": 1, "get": 1}},
		{"delete a version", func() error { return s.Delete(ctx, "rt", 2) }, map[string]int64{"evalsha": 1, "get": 1, "del": 1}},
		{"delete of a missing version conflicts", func() error {
			if err := s.Delete(ctx, "rt", 2); !errors.Is(err, session.ErrConflict) {
				return fmt.Errorf("delete of a deleted record: err = %v, want ErrConflict", err)
			}
			return nil
		}, map[string]int64{"evalsha": 1, "get": 1}},
		{"delete any version", func() error { return s.Delete(ctx, "rt-new", 0) }, map[string]int64{"del": 1}},
		{"ping", func() error { return s.Ping(ctx) }, map[string]int64{"ping": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetStats(t)
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			if got := srv.CommandCalls(t); !maps.Equal(got, tt.want) {
				t.Fatalf("commands run = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRedisStopped(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, redisstore.Options{URL: srv.URL()})
	mustCAS(t, s, "before", 0, 1, "x")

	srv.Stop(t)
	for _, op := range ops(s, "stopped") {
		t.Run(op.name, func(t *testing.T) {
			took, err := timed(op.call)
			t.Logf("%s with Redis stopped: %v after %v", op.name, err, took.Round(time.Millisecond))
			if err == nil || errors.Is(err, session.ErrConflict) {
				t.Fatalf("%s with Redis stopped: err = %v, want a connection error", op.name, err)
			}
			if took > failBound {
				t.Fatalf("%s with Redis stopped took %v to fail, want < %v", op.name, took, failBound)
			}
		})
	}

	srv.Restart(t)
	mustRecover(t, s, "after-restart")
}

// TestRedisHung: a Redis that accepts connections but answers nothing
// (SIGSTOP) fails every call within the timeouts, and the store works again
// when it resumes.
func TestRedisHung(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, redisstore.Options{URL: srv.URL()})
	mustCAS(t, s, "kept", 0, 1, "kept")

	srv.Pause(t)
	for _, op := range ops(s, "hung") {
		t.Run(op.name, func(t *testing.T) {
			took, err := timed(op.call)
			t.Logf("%s with Redis hung: %v after %v", op.name, err, took.Round(time.Millisecond))
			if err == nil || errors.Is(err, session.ErrConflict) {
				t.Fatalf("%s with Redis hung: err = %v, want a timeout", op.name, err)
			}
			if took > failBound {
				t.Fatalf("%s with Redis hung took %v to fail, want < %v", op.name, took, failBound)
			}
		})
	}

	srv.Resume(t)
	mustRecover(t, s, "after-resume")
	// A pause loses nothing.
	if err := wantGet(context.Background(), s, "kept", true); err != nil {
		t.Fatal(err)
	}
}

// TestRedisHungConcurrent: on a hung Redis, many calls at once (more than
// fit in the pipelines in flight) each fail within the bound too: a call
// queued behind pipelines that wait out their timeouts gives up waiting
// instead of then waiting out its own.
func TestRedisHungConcurrent(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, redisstore.Options{URL: srv.URL()})
	mustCAS(t, s, "kept", 0, 1, "kept")

	srv.Pause(t)
	const calls = 64
	var wg sync.WaitGroup
	took := make([]time.Duration, calls)
	errs := make([]error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := ops(s, fmt.Sprintf("hung-%d", i))[i%2].call // Get and CompareAndSwap
			took[i], errs[i] = timed(call)
		}()
		time.Sleep(5 * time.Millisecond) // arriving while the first pipelines wait
	}
	wg.Wait()
	slowest := slices.Max(took)
	t.Logf("%d calls on a hung Redis: slowest failed after %v", calls, slowest.Round(time.Millisecond))
	for i, err := range errs {
		if err == nil || errors.Is(err, session.ErrConflict) {
			t.Errorf("call %d on a hung Redis: err = %v, want a timeout", i, err)
		}
		if took[i] > failBound {
			t.Errorf("call %d on a hung Redis took %v to fail, want < %v", i, took[i], failBound)
		}
	}

	srv.Resume(t)
	mustRecover(t, s, "after-concurrent-hang")
	if err := wantGet(context.Background(), s, "kept", true); err != nil {
		t.Fatal(err)
	}
}

// TestLongOutage: after enough failed dials go-redis stops dialing and
// fails calls at once, probing Redis every second in the background. Once
// Redis is back the store must recover within that probe interval, not stay
// broken.
func TestLongOutage(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	s := open(t, redisstore.Options{URL: srv.URL()})
	mustCAS(t, s, "before", 0, 1, "x")
	srv.Stop(t)

	// More failed dials than the pool size (10 per GOMAXPROCS), which is
	// what opens go-redis's dial breaker.
	calls := int64(2 * 10 * runtime.GOMAXPROCS(0))
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n.Add(1) <= calls {
				if _, _, err := s.Get(ctx, "before"); err == nil {
					t.Error("Get succeeded with Redis stopped")
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d failing Gets in %v", calls, time.Since(start).Round(time.Millisecond))

	srv.Restart(t)
	restarted := time.Now()
	failures := 0
	for {
		err := s.Ping(ctx)
		if err == nil {
			break
		}
		failures++
		if time.Since(restarted) > 3*time.Second {
			t.Fatalf("store still failing %v after Redis restarted: %v", time.Since(restarted), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(restarted)
	t.Logf("recovered %v after restart (%d failed pings before)", took.Round(time.Millisecond), failures)
	if took > 2500*time.Millisecond {
		t.Fatalf("recovery took %v, want < 2.5s", took)
	}
	mustRecover(t, s, "after-long-outage")
}

// TestOpenWhileDown: Open does not contact Redis, so tote starts while Redis
// is down; calls fail until it is up, then work.
func TestOpenWhileDown(t *testing.T) {
	ctx := context.Background()
	t.Run("url", func(t *testing.T) {
		srv := redistest.Start(t)
		srv.Stop(t)
		s := open(t, redisstore.Options{URL: srv.URL()})
		if took, err := timed(func() error { return s.Ping(ctx) }); err == nil || took > failBound {
			t.Fatalf("Ping with Redis down: err = %v after %v, want an error within %v", err, took, failBound)
		}
		srv.Restart(t)
		mustRecover(t, s, "opened-while-down")
	})
	t.Run("cluster", func(t *testing.T) {
		a, b := redistest.Start(t), redistest.Start(t)
		addrs := []string{a.Addr(), b.Addr()}
		a.Stop(t)
		b.Stop(t)
		s := open(t, redisstore.Options{ClusterAddrs: addrs})
		for _, op := range ops(s, "cluster-down") {
			if took, err := timed(op.call); err == nil || errors.Is(err, session.ErrConflict) || took > failBound {
				t.Errorf("%s with the cluster down: err = %v after %v, want an error within %v", op.name, err, took, failBound)
			}
		}
	})
}

func TestOpenRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts redisstore.Options
		want string // in the error text
	}{
		{"neither", redisstore.Options{}, "neither URL nor ClusterAddrs"},
		{"both", redisstore.Options{URL: "redis://127.0.0.1:1/0", ClusterAddrs: []string{"127.0.0.1:2"}}, "both URL and ClusterAddrs"},
		{"http scheme", redisstore.Options{URL: "http://x"}, `scheme "http"`},
		{"no scheme", redisstore.Options{URL: "127.0.0.1:1"}, "URL"},
		{"port not a number", redisstore.Options{URL: "redis://:badport"}, `invalid port ":badport"`},
		{"port out of range", redisstore.Options{URL: "redis://127.0.0.1:70000/0"}, `invalid port "70000"`},
		{"database not a number", redisstore.Options{URL: "redis://127.0.0.1:1/abc"}, "invalid database number"},
		{"unknown query option", redisstore.Options{URL: "redis://127.0.0.1:1/0?colour=blue"}, "unexpected option: colour"},
		{"bad query duration", redisstore.Options{URL: "redis://127.0.0.1:1/0?read_timeout=soon"}, "read_timeout"},
		{"cluster addr without port", redisstore.Options{ClusterAddrs: []string{"127.0.0.1"}}, `ClusterAddrs[0] "127.0.0.1"`},
		{"cluster addr without host", redisstore.Options{ClusterAddrs: []string{"127.0.0.1:1", ":7000"}}, `ClusterAddrs[1] ":7000"`},
		{"empty cluster addr", redisstore.Options{ClusterAddrs: []string{""}}, `ClusterAddrs[0] ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisstore.Open(tt.opts)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%+v) succeeded, want an error naming %q", tt.opts, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open(%+v) error = %q, want it to name %q", tt.opts, err, tt.want)
			}
		})
	}
}

// TestErrorsHidePassword: a URL's password never shows in Open's errors (they
// end up in logs).
func TestErrorsHidePassword(t *testing.T) {
	for _, u := range []string{
		"redis://user:s3cret@127.0.0.1:1/abc",
		"redis://user:s3cret@127.0.0.1:1/0?colour=blue",
		"redis://user:s3cret@:badport",
		"http://user:s3cret@x",
	} {
		_, err := redisstore.Open(redisstore.Options{URL: u})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error = %v, want an error without the password", u, err)
		}
	}
}

// TestKeyLayout checks what lands in Redis: the key is the prefix and the
// id, the value the 8-byte big-endian version and the data, with the ttl of
// the last write.
func TestKeyLayout(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	tests := []struct {
		name, prefix, wantPrefix string
	}{
		{"default prefix", "", "tote:"},
		{"own prefix", "cart:", "cart:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, redisstore.Options{URL: srv.URL(), Prefix: tt.prefix})
			id := "session:layout-" + strings.ReplaceAll(tt.name, " ", "-")
			key := tt.wantPrefix + id

			mustCAS(t, s, id, 0, 7, "payload")
			wantValue(t, rdb, key, 7, "payload")
			wantPTTL(t, rdb, key, 90*time.Second)

			if err := s.CompareAndSwap(ctx, id, 7, session.Write{Version: 8, Data: []byte("second"), TTL: 30 * time.Second}); err != nil {
				t.Fatal(err)
			}
			wantValue(t, rdb, key, 8, "second")
			wantPTTL(t, rdb, key, 30*time.Second)

			if n, err := rdb.Exists(ctx, id).Result(); err != nil || n != 0 {
				t.Fatalf("EXISTS %s (no prefix) = %d, %v; want 0", id, n, err)
			}

			// TTL 0: the key never expires (an account).
			if err := s.CompareAndSwap(ctx, id, 8, session.Write{Version: 9, Data: []byte("forever")}); err != nil {
				t.Fatal(err)
			}
			wantValue(t, rdb, key, 9, "forever")
			if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl != -1 {
				t.Fatalf("PTTL %s = %v, %v; want -1 (no expiry)", key, ttl, err)
			}
		})
	}
}

// TestForeignValues: a value that is not a record (too short to hold the
// version, or version 0) reads as not found, refuses a swap from a version,
// and can be replaced by a create.
func TestForeignValues(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := open(t, redisstore.Options{URL: srv.URL()})
	tests := []struct {
		name  string
		value string
	}{
		{"empty", ""},
		{"short", "abc"},
		{"seven bytes", "1234567"},
		{"version zero", "\x00\x00\x00\x00\x00\x00\x00\x00data"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("foreign-%d", i)
			key := redisstore.DefaultPrefix + id
			if err := rdb.Set(ctx, key, tt.value, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			rec, found, err := s.Get(ctx, id)
			if err != nil || found || rec.Version != 0 || rec.Data != nil {
				t.Fatalf("Get = %+v, %v, %v; want zero record, false, nil", rec, found, err)
			}
			if err := s.CompareAndSwap(ctx, id, 5, session.Write{Version: 6, Data: []byte("x"), TTL: time.Minute}); !errors.Is(err, session.ErrConflict) {
				t.Fatalf("swap from version 5: err = %v, want ErrConflict", err)
			}
			if got, err := rdb.Get(ctx, key).Result(); err != nil || got != tt.value {
				t.Fatalf("after refused swap the value is %q, %v; want it unchanged %q", got, err, tt.value)
			}
			mustCAS(t, s, id, 0, 1, "created")
			wantValue(t, rdb, key, 1, "created")
		})
	}
}

func TestCompareAndSwapRejectsBadArguments(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, redisstore.Options{URL: srv.URL()})
	rdb := srv.Client(t)
	tests := []struct {
		name string
		next uint64
		ttl  time.Duration
	}{
		{"negative ttl", 1, -time.Second},
		{"next version 0", 0, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "bad-" + strings.ReplaceAll(tt.name, " ", "-")
			err := s.CompareAndSwap(context.Background(), id, 0, session.Write{Version: tt.next, Data: []byte("x"), TTL: tt.ttl})
			if err == nil || errors.Is(err, session.ErrConflict) {
				t.Fatalf("CompareAndSwap(next %d, ttl %v): err = %v, want an argument error", tt.next, tt.ttl, err)
			}
			if n, _ := rdb.Exists(context.Background(), redisstore.DefaultPrefix+id).Result(); n != 0 {
				t.Fatalf("CompareAndSwap(next %d, ttl %v) stored a key", tt.next, tt.ttl)
			}
		})
	}
}

func TestCloseTwice(t *testing.T) {
	srv := redistest.Start(t)
	s, err := redisstore.Open(redisstore.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := s.Get(context.Background(), "x"); err == nil {
		t.Fatal("Get after Close succeeded, want an error")
	}
}

type op struct {
	name string
	call func() error
}

// ops are the store's calls that need Redis, on ids made from tag.
func ops(s *redisstore.Store, tag string) []op {
	ctx := context.Background()
	return []op{
		{"Get", func() error { _, _, err := s.Get(ctx, tag+"-get"); return err }},
		{"CompareAndSwap", func() error {
			return s.CompareAndSwap(ctx, tag+"-cas", 0, session.Write{Version: 1, Data: []byte("x"), TTL: time.Minute})
		}},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
}

// timed calls f and says how long it took.
func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// mustRecover checks that the store works again after Redis came back: the
// first call may still fail once (a connection broken by the outage), then
// every call must succeed.
func mustRecover(tb testing.TB, s *redisstore.Store, id string) {
	tb.Helper()
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		tb.Logf("first Ping after Redis came back failed (allowed once): %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		tb.Fatalf("Ping after Redis came back: %v", err)
	}
	mustCAS(tb, s, id, 0, 1, "back")
	if err := s.CompareAndSwap(ctx, id, 1, session.Write{Version: 2, Data: []byte("again"), TTL: time.Minute}); err != nil {
		tb.Fatalf("swap after Redis came back: %v", err)
	}
	rec, found, err := s.Get(ctx, id)
	if err != nil || !found || rec.Version != 2 || string(rec.Data) != "again" {
		tb.Fatalf("Get after Redis came back = %+v, %v, %v; want version 2 \"again\"", rec, found, err)
	}
}

func mustCAS(tb testing.TB, s session.Store, id string, old, next uint64, data string) {
	tb.Helper()
	if err := s.CompareAndSwap(context.Background(), id, old, session.Write{Version: next, Data: []byte(data), TTL: 90 * time.Second}); err != nil {
		tb.Fatalf("CompareAndSwap(%s, %d -> %d): %v", id, old, next, err)
	}
}

func wantGet(ctx context.Context, s session.Store, id string, wantFound bool) error {
	_, found, err := s.Get(ctx, id)
	if err != nil || found != wantFound {
		return fmt.Errorf("Get(%s): found=%v err=%v, want found=%v", id, found, err, wantFound)
	}
	return nil
}

func wantValue(tb testing.TB, rdb *goredis.Client, key string, version uint64, data string) {
	tb.Helper()
	got, err := rdb.Get(context.Background(), key).Bytes()
	if err != nil {
		tb.Fatalf("GET %s: %v", key, err)
	}
	want := binary.BigEndian.AppendUint64(nil, version)
	want = append(want, data...)
	if !bytes.Equal(got, want) {
		tb.Fatalf("GET %s = %q, want %q (8-byte big-endian version %d, then the data)", key, got, want, version)
	}
}

func wantPTTL(tb testing.TB, rdb *goredis.Client, key string, ttl time.Duration) {
	tb.Helper()
	got, err := rdb.PTTL(context.Background(), key).Result()
	if err != nil {
		tb.Fatalf("PTTL %s: %v", key, err)
	}
	if got > ttl || got < ttl-2*time.Second {
		tb.Fatalf("PTTL %s = %v, want close to (and not above) %v", key, got, ttl)
	}
}
