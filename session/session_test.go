package session_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tote/session"
	"tote/session/filestore"
	"tote/session/memstore"
)

func memStore(tb testing.TB) session.Store {
	s := memstore.New(memstore.Options{})
	tb.Cleanup(func() { s.Close() })
	return s
}

func fileStore(tb testing.TB) session.Store {
	s, err := filestore.Open(tb.TempDir(), filestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

var stores = []struct {
	name string
	open func(testing.TB) session.Store
}{
	{"memory", memStore},
	{"file", fileStore},
}

func visit(d *session.Data) error { d.Visits++; return nil }

func TestUpdateStoresOnlyChanges(t *testing.T) {
	ctx := context.Background()
	m := session.NewManager(memStore(t), session.Options{})

	s, saved, err := m.Update(ctx, "", func(*session.Data) error { return nil })
	if err != nil || saved || s.ID != "" {
		t.Fatalf("no change for a new visitor: id %q saved %v err %v; want nothing stored", s.ID, saved, err)
	}
	s, saved, err = m.Update(ctx, "", visit)
	if err != nil || !saved || !session.ValidID(s.ID) || s.Data.Visits != 1 {
		t.Fatalf("first visit: %+v saved %v err %v", s, saved, err)
	}
	id := s.ID
	if s, saved, _ = m.Update(ctx, id, func(*session.Data) error { return nil }); saved || s.ID != id || s.Data.Visits != 1 {
		t.Errorf("no change: saved %v, id %q, visits %d", saved, s.ID, s.Data.Visits)
	}
	refused := errors.New("refused")
	if _, saved, err = m.Update(ctx, id, func(d *session.Data) error { d.Visits = 99; return refused }); saved || !errors.Is(err, refused) {
		t.Errorf("refused change: saved %v err %v", saved, err)
	}
	if s, _ := m.Load(ctx, id); s.Data.Visits != 1 {
		t.Errorf("visits %d after a refused change, want 1", s.Data.Visits)
	}
}

func TestUnknownIDsAreNeverAdopted(t *testing.T) {
	ctx := context.Background()
	store := memStore(t)
	m := session.NewManager(store, session.Options{})
	garbage := session.NewID()
	if err := store.CompareAndSwap(ctx, garbage, 0, session.Write{Version: 1, Data: []byte("not a session"), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{session.NewID(), "short", "../../etc/passwd", garbage} {
		s, err := m.Load(ctx, id)
		if err != nil || s.ID != "" || !s.Data.IsZero() {
			t.Errorf("Load(%q) = %+v, %v; want an empty session with no id", id, s, err)
		}
		s, saved, err := m.Update(ctx, id, visit)
		if err != nil || !saved || s.ID == id || s.Data.Visits != 1 {
			t.Errorf("Update(%q): id %q saved %v err %v visits %d; want a fresh id", id, s.ID, saved, err, s.Data.Visits)
		}
	}
}

// TestConcurrentUpdates: every Update that returns nil is counted, on one
// manager (one instance) and on two sharing a store (two instances).
func TestConcurrentUpdates(t *testing.T) {
	for _, st := range stores {
		for _, instances := range []int{1, 2} {
			t.Run(st.name, func(t *testing.T) {
				ctx := context.Background()
				store := st.open(t)
				managers := make([]*session.Manager, instances)
				for i := range managers {
					managers[i] = session.NewManager(store, session.Options{})
				}
				s, _, err := managers[0].Update(ctx, "", visit)
				if err != nil {
					t.Fatal(err)
				}
				const n = 50
				var ok, conflicts atomic.Int64
				var wg sync.WaitGroup
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, _, err := managers[i%instances].Update(ctx, s.ID, visit)
						switch {
						case err == nil:
							ok.Add(1)
						case errors.Is(err, session.ErrConflict):
							conflicts.Add(1)
						default:
							t.Error(err)
						}
					}()
				}
				wg.Wait()
				got, _ := managers[0].Load(ctx, s.ID)
				if got.Data.Visits != 1+ok.Load() {
					t.Errorf("%d updates succeeded but visits went 1 -> %d: updates were lost", ok.Load(), got.Data.Visits)
				}
				if instances == 1 && conflicts.Load() != 0 {
					t.Errorf("%d conflicts on one instance: its requests should take turns", conflicts.Load())
				}
				t.Logf("%d instance(s): %d of %d succeeded, %d conflicts", instances, ok.Load(), n, conflicts.Load())
			})
		}
	}
}

// rival is a store on which another writer changes the session between
// every read and write of ours: a session contended for good.
type rival struct{ session.Store }

func (r rival) CompareAndSwap(ctx context.Context, key string, old uint64, w session.Write) error {
	if rec, found, _ := r.Store.Get(ctx, key); found {
		r.Store.CompareAndSwap(ctx, key, rec.Version, session.Write{Version: rec.Version + 1, Data: rec.Data, TTL: w.TTL})
	}
	return r.Store.CompareAndSwap(ctx, key, old, w)
}

func TestContendedUpdateGivesUpWithConflict(t *testing.T) {
	ctx := context.Background()
	store := memStore(t)
	var conflicts atomic.Int64
	m := session.NewManager(store, session.Options{Hooks: session.Hooks{Conflict: func() { conflicts.Add(1) }}})
	s, _, err := m.Update(ctx, "", visit)
	if err != nil {
		t.Fatal(err)
	}
	contended := session.NewManager(rival{store}, session.Options{Attempts: 4, Hooks: session.Hooks{Conflict: func() { conflicts.Add(1) }}})
	start := time.Now()
	_, saved, err := contended.Update(ctx, s.ID, func(d *session.Data) error { d.Visits += 100; return nil })
	if !errors.Is(err, session.ErrConflict) || saved {
		t.Fatalf("Update on a contended session: saved %v err %v; want ErrConflict", saved, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("gave up after %v: retries must be bounded", took)
	}
	if got, _ := m.Load(ctx, s.ID); got.Data.Visits != 1 || conflicts.Load() != 1 {
		t.Errorf("visits %d, conflicts %d; want 1 and 1 (nothing of the refused update stored)", got.Data.Visits, conflicts.Load())
	}
}

// TestClearedSessionIsNotResurrected: a change that read the session
// before another request cleared the cart is re-run on the cleared data.
func TestClearedCartIsNotResurrected(t *testing.T) {
	ctx := context.Background()
	store := memStore(t)
	m := session.NewManager(store, session.Options{})
	other := session.NewManager(store, session.Options{}) // another instance
	s, _, _ := m.Update(ctx, "", func(d *session.Data) error { d.Visits = 10; return nil })
	first := true
	_, _, err := m.Update(ctx, s.ID, func(d *session.Data) error {
		if first { // the other instance resets the session after we read it
			first = false
			if _, _, err := other.Update(ctx, s.ID, func(d *session.Data) error { d.Visits = 0; return nil }); err != nil {
				return err
			}
		}
		d.Visits++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Load(ctx, s.ID); got.Data.Visits != 1 {
		t.Errorf("visits %d; want 1: the stale read of 10 must not come back", got.Data.Visits)
	}
}

// failing is a store that cannot be reached.
type failing struct{ session.Store }

var errDown = errors.New("connection refused")

func (failing) Get(context.Context, string) (session.Record, bool, error) {
	return session.Record{}, false, errDown
}

func TestStoreFailureIsUnavailable(t *testing.T) {
	m := session.NewManager(failing{memStore(t)}, session.Options{})
	id := session.NewID()
	if _, err := m.Load(context.Background(), id); !errors.Is(err, session.ErrUnavailable) || !errors.Is(err, errDown) {
		t.Errorf("Load: %v; want ErrUnavailable wrapping the cause", err)
	}
	if _, saved, err := m.Update(context.Background(), id, visit); saved || !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("Update: saved %v err %v; want ErrUnavailable", saved, err)
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := session.NewID()
		if !session.ValidID(id) || len(id) != session.IDLength || seen[id] {
			t.Fatalf("NewID() = %q: invalid or repeated", id)
		}
		seen[id] = true
	}
	for _, id := range []string{"", "abc", session.NewID() + "x", session.NewID()[:31] + "!", session.NewID()[:31] + "="} {
		if session.ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}
