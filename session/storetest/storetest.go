// Package storetest is the behaviour every session.Store must show, run by
// the tests of each implementation against a real instance of it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tote/session"
)

// Run runs the suite against stores made by open. open is called once per
// subtest and must return an empty store whose clock is the real clock; the
// subtests use ids of their own, so open may return the same backing store.
func Run(t *testing.T, open func(tb testing.TB) session.Store) {
	ctx := context.Background()
	const ttl = time.Minute

	t.Run("missing id is not found", func(t *testing.T) {
		s := open(t)
		rec, found, err := s.Get(ctx, uniq(t, "missing"))
		if err != nil || found || rec.Version != 0 || rec.Data != nil {
			t.Fatalf("Get(missing) = %+v, %v, %v; want zero record, false, nil", rec, found, err)
		}
	})

	t.Run("create then get", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "create")
		if err := s.CompareAndSwap(ctx, id, 0, 1, []byte("hello"), ttl); err != nil {
			t.Fatalf("create: %v", err)
		}
		mustGet(t, s, id, 1, "hello")
	})

	t.Run("create over existing conflicts", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "dup")
		if err := s.CompareAndSwap(ctx, id, 0, 1, []byte("first"), ttl); err != nil {
			t.Fatal(err)
		}
		err := s.CompareAndSwap(ctx, id, 0, 1, []byte("second"), ttl)
		if !errors.Is(err, session.ErrConflict) {
			t.Fatalf("second create: err = %v, want ErrConflict", err)
		}
		mustGet(t, s, id, 1, "first")
	})

	t.Run("swap with right version", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "swap")
		if err := s.CompareAndSwap(ctx, id, 0, 1, []byte("v1"), ttl); err != nil {
			t.Fatal(err)
		}
		if err := s.CompareAndSwap(ctx, id, 1, 2, []byte("v2"), ttl); err != nil {
			t.Fatalf("swap 1->2: %v", err)
		}
		mustGet(t, s, id, 2, "v2")
	})

	t.Run("swap with stale version conflicts", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "stale")
		if err := s.CompareAndSwap(ctx, id, 0, 1, []byte("v1"), ttl); err != nil {
			t.Fatal(err)
		}
		if err := s.CompareAndSwap(ctx, id, 1, 2, []byte("v2"), ttl); err != nil {
			t.Fatal(err)
		}
		err := s.CompareAndSwap(ctx, id, 1, 3, []byte("stale"), ttl)
		if !errors.Is(err, session.ErrConflict) {
			t.Fatalf("stale swap: err = %v, want ErrConflict", err)
		}
		mustGet(t, s, id, 2, "v2")
	})

	t.Run("swap of missing record conflicts", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "gone")
		err := s.CompareAndSwap(ctx, id, 7, 8, []byte("resurrected"), ttl)
		if !errors.Is(err, session.ErrConflict) {
			t.Fatalf("swap of missing: err = %v, want ErrConflict", err)
		}
		if _, found, err := s.Get(ctx, id); found || err != nil {
			t.Fatalf("Get after refused swap: found=%v err=%v, want nothing stored", found, err)
		}
	})

	t.Run("binary data round trips", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "binary")
		data := make([]byte, 4096)
		for i := range data {
			data[i] = byte(i * 7)
		}
		if err := s.CompareAndSwap(ctx, id, 0, 1<<40+3, data, ttl); err != nil {
			t.Fatal(err)
		}
		rec, found, err := s.Get(ctx, id)
		if err != nil || !found || rec.Version != 1<<40+3 || !bytes.Equal(rec.Data, data) {
			t.Fatalf("Get = version %d, %d bytes, found=%v, err=%v; want the 4096 bytes stored at version %d",
				rec.Version, len(rec.Data), found, err, uint64(1<<40+3))
		}
	})

	t.Run("record expires after ttl", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "expire")
		if err := s.CompareAndSwap(ctx, id, 0, 1, []byte("short"), 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		mustGet(t, s, id, 1, "short")
		time.Sleep(600 * time.Millisecond)
		if _, found, err := s.Get(ctx, id); found || err != nil {
			t.Fatalf("Get after ttl: found=%v err=%v, want not found", found, err)
		}
		// An expired record counts as absent: it can be created again, and a
		// swap against its old version is refused.
		if err := s.CompareAndSwap(ctx, id, 1, 2, []byte("stale"), ttl); !errors.Is(err, session.ErrConflict) {
			t.Fatalf("swap of expired record: err = %v, want ErrConflict", err)
		}
		if err := s.CompareAndSwap(ctx, id, 0, 1, []byte("again"), ttl); err != nil {
			t.Fatalf("create over expired record: %v", err)
		}
		mustGet(t, s, id, 1, "again")
	})

	t.Run("write renews ttl", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "slide")
		short := 500 * time.Millisecond
		if err := s.CompareAndSwap(ctx, id, 0, 1, []byte("a"), short); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if err := s.CompareAndSwap(ctx, id, 1, 2, []byte("b"), short); err != nil {
			t.Fatal(err)
		}
		time.Sleep(350 * time.Millisecond) // 650 ms after the first write, 350 ms after the second
		mustGet(t, s, id, 2, "b")
	})

	t.Run("concurrent swaps: exactly one winner per version", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "race")
		if err := s.CompareAndSwap(ctx, id, 0, 1, []byte("0"), ttl); err != nil {
			t.Fatal(err)
		}
		// 8 writers each add 25 increments with read-modify-CAS loops; every
		// successful CAS is one increment, so the final count is exact.
		const writers, each = 8, 25
		var wg sync.WaitGroup
		var conflicts atomic.Int64
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for done := 0; done < each; {
					rec, found, err := s.Get(ctx, id)
					if err != nil || !found {
						t.Errorf("Get: found=%v err=%v", found, err)
						return
					}
					var n int
					fmt.Sscan(string(rec.Data), &n)
					err = s.CompareAndSwap(ctx, id, rec.Version, rec.Version+1, []byte(fmt.Sprint(n+1)), ttl)
					switch {
					case err == nil:
						done++
					case errors.Is(err, session.ErrConflict):
						conflicts.Add(1)
					default:
						t.Errorf("CompareAndSwap: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		mustGet(t, s, id, 1+writers*each, fmt.Sprint(writers*each))
		t.Logf("%d increments, %d conflicts retried", writers*each, conflicts.Load())
	})

	t.Run("ping", func(t *testing.T) {
		if err := open(t).Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func mustGet(tb testing.TB, s session.Store, id string, version uint64, data string) {
	tb.Helper()
	rec, found, err := s.Get(context.Background(), id)
	if err != nil || !found {
		tb.Fatalf("Get(%s): found=%v err=%v, want found", id, found, err)
	}
	if rec.Version != version || string(rec.Data) != data {
		tb.Fatalf("Get(%s) = version %d %q, want version %d %q", id, rec.Version, rec.Data, version, data)
	}
}

var seq atomic.Int64

// uniq returns an id no other subtest or run uses.
func uniq(tb testing.TB, name string) string {
	return fmt.Sprintf("storetest-%s-%d-%d", name, time.Now().UnixNano(), seq.Add(1))
}
