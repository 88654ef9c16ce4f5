package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"tote/session"
	"tote/session/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) session.Store {
		return newStore(tb, time.Minute)
	})
}

// newStore returns a store that is closed when tb ends.
func newStore(tb testing.TB, sweepEvery time.Duration) *Store {
	tb.Helper()
	s := New(Options{SweepEvery: sweepEvery})
	tb.Cleanup(func() { s.Close() })
	return s
}

// mustCAS stores data under id or fails tb.
func mustCAS(tb testing.TB, s *Store, id string, old, next uint64, data string, ttl time.Duration) {
	tb.Helper()
	if err := s.CompareAndSwap(context.Background(), id, old, session.Write{Version: next, Data: []byte(data), TTL: ttl}); err != nil {
		tb.Fatalf("CompareAndSwap(%s, %d->%d): %v", id, old, next, err)
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()

	t.Run("explicit sweep removes only expired records", func(t *testing.T) {
		s := newStore(t, time.Hour)
		const short = 10
		for i := range short {
			mustCAS(t, s, fmt.Sprint("short-", i), 0, 1, "x", 50*time.Millisecond)
		}
		mustCAS(t, s, "live", 0, 1, "keep", time.Minute)
		mustCAS(t, s, "forever", 0, 1, "keep", 0)
		if got := s.Len(); got != short+2 {
			t.Fatalf("Len before expiry = %d, want %d", got, short+2)
		}
		time.Sleep(120 * time.Millisecond)
		if got := s.Len(); got != short+2 {
			t.Fatalf("Len after expiry, before sweep = %d, want %d (nothing swept yet)", got, short+2)
		}
		if n := s.Sweep(); n != short {
			t.Fatalf("Sweep() = %d, want %d", n, short)
		}
		if got := s.Len(); got != 2 {
			t.Fatalf("Len after sweep = %d, want 2", got)
		}
		for _, id := range []string{"live", "forever"} {
			if rec, found, err := s.Get(ctx, id); err != nil || !found || string(rec.Data) != "keep" {
				t.Fatalf("Get(%s) after sweep = %+v, %v, %v; want the live record", id, rec, found, err)
			}
		}
		if n := s.Sweep(); n != 0 {
			t.Fatalf("second Sweep() = %d, want 0", n)
		}
	})

	t.Run("background sweeper purges without a call", func(t *testing.T) {
		s := newStore(t, 20*time.Millisecond)
		for i := range 5 {
			mustCAS(t, s, fmt.Sprint("bg-", i), 0, 1, "x", 30*time.Millisecond)
		}
		mustCAS(t, s, "live", 0, 1, "keep", time.Minute)
		waitFor(t, 2*time.Second, func() bool { return s.Len() == 1 })
		if _, found, _ := s.Get(ctx, "live"); !found {
			t.Fatal("live record was swept")
		}
	})
}

func TestClose(t *testing.T) {
	s := New(Options{SweepEvery: time.Millisecond})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("sweeper goroutine still running after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The records stay usable after Close.
	mustCAS(t, s, "after-close", 0, 1, "x", time.Minute)
	if _, found, err := s.Get(context.Background(), "after-close"); !found || err != nil {
		t.Fatalf("Get after Close: found=%v err=%v", found, err)
	}
}

func TestDataIsCopied(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, time.Minute)
	buf := []byte("original")
	if err := s.CompareAndSwap(ctx, "id", 0, session.Write{Version: 1, Data: buf, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CLOBBER!") // the caller reuses its buffer
	rec, _, _ := s.Get(ctx, "id")
	if string(rec.Data) != "original" {
		t.Fatalf("stored data changed with the caller's buffer: %q", rec.Data)
	}
	rec.Data[0] = 'X' // the caller scribbles on what Get returned
	rec, _, _ = s.Get(ctx, "id")
	if string(rec.Data) != "original" {
		t.Fatalf("stored data changed with a returned slice: %q", rec.Data)
	}
}

func TestCanceledContext(t *testing.T) {
	s := newStore(t, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, _, err := s.Get(ctx, "id"); return err }},
		{"CompareAndSwap", func() error {
			return s.CompareAndSwap(ctx, "id", 0, session.Write{Version: 1, Data: nil, TTL: time.Minute})
		}},
		{"Delete", func() error { return s.Delete(ctx, "id", 0) }},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != context.Canceled {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		})
	}
	if s.Len() != 0 {
		t.Fatal("a canceled CompareAndSwap stored a record")
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
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkGetAndSwap models the request hot path: many connections, each
// reading its own session and writing it back.
func BenchmarkGetAndSwap(b *testing.B) {
	ctx := context.Background()
	s := newStore(b, time.Minute)
	var conn atomic.Int64
	data := make([]byte, 512)
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprint("bench-", conn.Add(1))
		for pb.Next() {
			rec, _, err := s.Get(ctx, id)
			if err != nil {
				b.Error(err)
				return
			}
			if err := s.CompareAndSwap(ctx, id, rec.Version, session.Write{Version: rec.Version + 1, Data: data, TTL: time.Minute}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestCap checks the cap end to end; the index's own tests cover which
// record goes.
func TestCap(t *testing.T) {
	ctx := context.Background()
	s := New(Options{Max: 3})
	t.Cleanup(func() { s.Close() })
	write := func(ttl time.Duration, evictable bool) session.Write {
		return session.Write{Version: 1, Data: []byte("x"), TTL: ttl, Evictable: evictable}
	}
	steps := []struct {
		name      string
		key       string
		w         session.Write
		wantErr   error
		wantGone  string // a key evicted by this write
		wantEvict int64
	}{
		{name: "account", key: "account:a", w: write(0, false)},
		{name: "bare session", key: "session:soon", w: write(time.Minute, true)},
		{name: "later bare session", key: "session:later", w: write(time.Hour, true)},
		{name: "at the cap the soonest bare session goes", key: "session:cart", w: write(time.Hour, false), wantGone: "session:soon", wantEvict: 1},
		{name: "then the other", key: "session:cart2", w: write(time.Hour, false), wantGone: "session:later", wantEvict: 2},
		{name: "then nothing is evictable", key: "session:cart3", w: write(time.Hour, false), wantErr: session.ErrFull, wantEvict: 2},
		{name: "an evictable one neither", key: "session:bare", w: write(time.Hour, true), wantErr: session.ErrFull, wantEvict: 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := s.CompareAndSwap(ctx, st.key, 0, st.w)
			if !errors.Is(err, st.wantErr) || (err != nil) != (st.wantErr != nil) {
				t.Fatalf("create %s: err = %v, want %v", st.key, err, st.wantErr)
			}
			_, found, _ := s.Get(ctx, st.key)
			if found != (st.wantErr == nil) {
				t.Fatalf("%s found = %v after the create", st.key, found)
			}
			if st.wantGone != "" {
				if _, found, _ := s.Get(ctx, st.wantGone); found {
					t.Fatalf("%s still there, want it evicted", st.wantGone)
				}
			}
			if s.Evicted() != st.wantEvict || s.Len() > 3 {
				t.Fatalf("Evicted = %d, Len = %d; want %d, at most 3", s.Evicted(), s.Len(), st.wantEvict)
			}
		})
	}
	// An update needs no room, and a delete makes some.
	if err := s.CompareAndSwap(ctx, "account:a", 1, session.Write{Version: 2, Data: []byte("y")}); err != nil {
		t.Fatalf("update at the cap: %v", err)
	}
	if err := s.Delete(ctx, "session:cart", 0); err != nil {
		t.Fatal(err)
	}
	mustCAS(t, s, "session:cart3", 0, 1, "x", time.Hour)
}
