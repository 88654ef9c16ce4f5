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
		if err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("hello"), TTL: ttl}); err != nil {
			t.Fatalf("create: %v", err)
		}
		mustGet(t, s, id, 1, "hello")
	})

	t.Run("create over existing conflicts", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "dup")
		if err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("first"), TTL: ttl}); err != nil {
			t.Fatal(err)
		}
		err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("second"), TTL: ttl})
		if !errors.Is(err, session.ErrConflict) {
			t.Fatalf("second create: err = %v, want ErrConflict", err)
		}
		mustGet(t, s, id, 1, "first")
	})

	t.Run("swap with right version", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "swap")
		if err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("v1"), TTL: ttl}); err != nil {
			t.Fatal(err)
		}
		if err := s.CompareAndSwap(ctx, id, 1, session.Write{Version: 2, Data: []byte("v2"), TTL: ttl}); err != nil {
			t.Fatalf("swap 1->2: %v", err)
		}
		mustGet(t, s, id, 2, "v2")
	})

	t.Run("swap with stale version conflicts", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "stale")
		if err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("v1"), TTL: ttl}); err != nil {
			t.Fatal(err)
		}
		if err := s.CompareAndSwap(ctx, id, 1, session.Write{Version: 2, Data: []byte("v2"), TTL: ttl}); err != nil {
			t.Fatal(err)
		}
		err := s.CompareAndSwap(ctx, id, 1, session.Write{Version: 3, Data: []byte("stale"), TTL: ttl})
		if !errors.Is(err, session.ErrConflict) {
			t.Fatalf("stale swap: err = %v, want ErrConflict", err)
		}
		mustGet(t, s, id, 2, "v2")
	})

	t.Run("swap of missing record conflicts", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "gone")
		err := s.CompareAndSwap(ctx, id, 7, session.Write{Version: 8, Data: []byte("resurrected"), TTL: ttl})
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
		if err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1<<40 + 3, Data: data, TTL: ttl}); err != nil {
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
		if err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("short"), TTL: 300 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		mustGet(t, s, id, 1, "short")
		time.Sleep(600 * time.Millisecond)
		if _, found, err := s.Get(ctx, id); found || err != nil {
			t.Fatalf("Get after ttl: found=%v err=%v, want not found", found, err)
		}
		// An expired record counts as absent: it can be created again, and a
		// swap against its old version is refused.
		if err := s.CompareAndSwap(ctx, id, 1, session.Write{Version: 2, Data: []byte("stale"), TTL: ttl}); !errors.Is(err, session.ErrConflict) {
			t.Fatalf("swap of expired record: err = %v, want ErrConflict", err)
		}
		if err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("again"), TTL: ttl}); err != nil {
			t.Fatalf("create over expired record: %v", err)
		}
		mustGet(t, s, id, 1, "again")
	})

	t.Run("write renews ttl", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "slide")
		short := 500 * time.Millisecond
		if err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("a"), TTL: short}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if err := s.CompareAndSwap(ctx, id, 1, session.Write{Version: 2, Data: []byte("b"), TTL: short}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(350 * time.Millisecond) // 650 ms after the first write, 350 ms after the second
		mustGet(t, s, id, 2, "b")
	})

	t.Run("concurrent swaps: exactly one winner per version", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "race")
		if err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("0"), TTL: ttl}); err != nil {
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
					err = s.CompareAndSwap(ctx, id, rec.Version, session.Write{Version: rec.Version + 1, Data: []byte(fmt.Sprint(n + 1)), TTL: ttl})
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

	t.Run("delete", func(t *testing.T) {
		// Each case starts from a record at version 1 (unless missing), may
		// change it to version 2, then deletes.
		tests := []struct {
			name     string
			missing  bool   // no record to start with
			changed  bool   // swapped to version 2 before the delete
			version  uint64 // what Delete is given
			wantErr  error
			wantKept uint64 // the version left behind; 0: none
		}{
			{name: "unconditional", version: 0},
			{name: "unconditional after a change", changed: true, version: 0},
			{name: "versioned", version: 1},
			{name: "versioned, the changed version", changed: true, version: 2},
			{name: "versioned on a changed record conflicts", changed: true, version: 1, wantErr: session.ErrConflict, wantKept: 2},
			{name: "versioned with a version never stored conflicts", version: 9, wantErr: session.ErrConflict, wantKept: 1},
			{name: "versioned on a missing record conflicts", missing: true, version: 1, wantErr: session.ErrConflict},
			{name: "unconditional on a missing record", missing: true, version: 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				id := uniq(t, "delete")
				if !tt.missing {
					mustCAS(t, s, id, 0, session.Write{Version: 1, Data: []byte("v1"), TTL: ttl})
				}
				if tt.changed {
					mustCAS(t, s, id, 1, session.Write{Version: 2, Data: []byte("v2"), TTL: ttl})
				}
				err := s.Delete(ctx, id, tt.version)
				if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
					t.Fatalf("Delete(%d) = %v, want %v", tt.version, err, tt.wantErr)
				}
				if tt.wantKept != 0 {
					mustGet(t, s, id, tt.wantKept, fmt.Sprint("v", tt.wantKept))
				} else {
					mustNotFind(t, s, id)
				}
			})
		}
	})

	t.Run("no resurrection after delete", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "resurrect")
		mustCAS(t, s, id, 0, session.Write{Version: 1, Data: []byte("v1"), TTL: ttl})
		mustCAS(t, s, id, 1, session.Write{Version: 2, Data: []byte("v2"), TTL: ttl})
		if err := s.Delete(ctx, id, 0); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		// A writer that read version 2 before the delete cannot write it
		// back.
		err := s.CompareAndSwap(ctx, id, 2, session.Write{Version: 3, Data: []byte("back"), TTL: ttl})
		if !errors.Is(err, session.ErrConflict) {
			t.Fatalf("swap from the deleted version: err = %v, want ErrConflict", err)
		}
		mustNotFind(t, s, id)
		// A create is a new record.
		mustCAS(t, s, id, 0, session.Write{Version: 7, Data: []byte("new"), TTL: ttl})
		mustGet(t, s, id, 7, "new")
		if err := s.Delete(ctx, id, 7); err != nil {
			t.Fatalf("versioned Delete of the new record: %v", err)
		}
		mustNotFind(t, s, id)
	})

	t.Run("ttl 0 never expires", func(t *testing.T) {
		s := open(t)
		forever, short := uniq(t, "forever"), uniq(t, "short")
		const shortTTL = 300 * time.Millisecond
		mustCAS(t, s, forever, 0, session.Write{Version: 1, Data: []byte("account")})
		mustCAS(t, s, short, 0, session.Write{Version: 1, Data: []byte("session"), TTL: shortTTL})
		// Once the short record, written after it, has expired, the record
		// without a TTL is still there.
		waitGone(t, s, short, 10*shortTTL)
		mustGet(t, s, forever, 1, "account")
		// A later write with a TTL gives it one.
		mustCAS(t, s, forever, 1, session.Write{Version: 2, Data: []byte("now with ttl"), TTL: shortTTL})
		mustGet(t, s, forever, 2, "now with ttl")
		waitGone(t, s, forever, 10*shortTTL)
	})

	t.Run("evictable records behave the same without a cap", func(t *testing.T) {
		s := open(t)
		id := uniq(t, "evictable")
		mustCAS(t, s, id, 0, session.Write{Version: 1, Data: []byte("visits"), TTL: ttl, Evictable: true})
		mustGet(t, s, id, 1, "visits")
		err := s.CompareAndSwap(ctx, id, 0, session.Write{Version: 1, Data: []byte("dup"), TTL: ttl, Evictable: true})
		if !errors.Is(err, session.ErrConflict) {
			t.Fatalf("create over an evictable record: err = %v, want ErrConflict", err)
		}
		mustCAS(t, s, id, 1, session.Write{Version: 2, Data: []byte("cart"), TTL: ttl})
		mustCAS(t, s, id, 2, session.Write{Version: 3, Data: []byte("visits again"), TTL: ttl, Evictable: true})
		mustGet(t, s, id, 3, "visits again")
		// Many evictable records are all kept.
		ids := make([]string, 50)
		for i := range ids {
			ids[i] = uniq(t, "evictable-many")
			mustCAS(t, s, ids[i], 0, session.Write{Version: 1, Data: []byte("v"), TTL: ttl, Evictable: true})
		}
		for _, id := range ids {
			mustGet(t, s, id, 1, "v")
		}
		if err := s.Delete(ctx, id, 3); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		mustNotFind(t, s, id)
	})

	t.Run("ping", func(t *testing.T) {
		if err := open(t).Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func mustCAS(tb testing.TB, s session.Store, id string, old uint64, w session.Write) {
	tb.Helper()
	if err := s.CompareAndSwap(context.Background(), id, old, w); err != nil {
		tb.Fatalf("CompareAndSwap(%s, %d->%d): %v", id, old, w.Version, err)
	}
}

func mustNotFind(tb testing.TB, s session.Store, id string) {
	tb.Helper()
	rec, found, err := s.Get(context.Background(), id)
	if err != nil || found || rec.Version != 0 || rec.Data != nil {
		tb.Fatalf("Get(%s) = %+v, %v, %v; want zero record, false, nil", id, rec, found, err)
	}
}

// waitGone polls until id is no longer found, for at most timeout.
func waitGone(tb testing.TB, s session.Store, id string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, found, err := s.Get(context.Background(), id)
		if err != nil {
			tb.Fatalf("Get(%s): %v", id, err)
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s still there %v after its write", id, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// uniq returns a key no other subtest or run uses.
func uniq(tb testing.TB, name string) string {
	return fmt.Sprintf("session:storetest-%s-%d-%d", name, time.Now().UnixNano(), seq.Add(1))
}
