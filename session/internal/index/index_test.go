package index

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tote/session"
)

// t0 is the clock of the tests: every call gets an explicit now.
const t0 = int64(1_000_000_000_000)

// entry returns an entry of version v that expires at expires (0: never).
func entry(v uint64, expires int64, data string, evictable bool) Entry {
	return Entry{Version: v, Expires: expires, Data: []byte(data), Evictable: evictable}
}

// mustCAS stores e under key or fails tb.
func mustCAS(tb testing.TB, x *Index, key string, old uint64, e Entry, now int64) {
	tb.Helper()
	if err := x.CompareAndSwap(key, old, e, now, nil); err != nil {
		tb.Fatalf("CompareAndSwap(%s, %d->%d): %v", key, old, e.Version, err)
	}
}

// wantGet fails tb unless key holds version v with data at now (v 0: no
// live record).
func wantGet(tb testing.TB, x *Index, key string, now int64, v uint64, data string) {
	tb.Helper()
	e, found := x.Get(key, now)
	switch {
	case v == 0 && (found || e.Version != 0 || e.Data != nil):
		tb.Fatalf("Get(%s) = %+v, %v; want nothing", key, e, found)
	case v != 0 && (!found || e.Version != v || string(e.Data) != data):
		tb.Fatalf("Get(%s) = version %d %q, %v; want version %d %q", key, e.Version, e.Data, found, v, data)
	}
}

// wantSize fails tb unless x holds n records of the given keys and data
// lengths in all.
func wantSize(tb testing.TB, x *Index, n int, bytes int64) {
	tb.Helper()
	if x.Len() != n || x.Bytes() != bytes {
		tb.Fatalf("Len, Bytes = %d, %d; want %d, %d", x.Len(), x.Bytes(), n, bytes)
	}
}

// keysInShards returns n keys with prefix, each in a shard of its own.
func keysInShards(tb testing.TB, x *Index, prefix string, n int) []string {
	tb.Helper()
	seen := map[*shard]bool{}
	var keys []string
	for i := 0; len(keys) < n; i++ {
		if i > 100_000 {
			tb.Fatalf("no %d keys in distinct shards", n)
		}
		k := prefix + strconv.Itoa(i)
		if sh := x.shard(k); !seen[sh] {
			seen[sh] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func TestDeadline(t *testing.T) {
	tests := []struct {
		name string
		now  int64
		ttl  time.Duration
		want int64
	}{
		{"ttl 0 never expires", t0, 0, 0},
		{"negative ttl never expires", t0, -time.Second, 0},
		{"ttl added to now", t0, time.Second, t0 + int64(time.Second)},
		{"overflow is the far future", math.MaxInt64 - 10, time.Hour, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Deadline(tt.now, tt.ttl); got != tt.want {
				t.Fatalf("Deadline(%d, %v) = %d, want %d", tt.now, tt.ttl, got, tt.want)
			}
		})
	}
}

// TestSemantics runs sequences of calls against a fresh index each, with
// the clock where each call says.
func TestSemantics(t *testing.T) {
	type op struct {
		do      string // "cas", "del", "get", "put", "remove"
		key     string
		old     uint64 // cas: the version expected; del: the version to delete
		e       Entry  // cas, put: what to store; get: what to find (Version 0: nothing)
		now     int64
		wantErr error
	}
	const k = "session:a"
	later := t0 + 10
	tests := []struct {
		name string
		ops  []op
	}{
		{"missing key is not found", []op{
			{do: "get", key: k, now: t0},
		}},
		{"create then get", []op{
			{do: "cas", key: k, e: entry(1, later, "one", false), now: t0},
			{do: "get", key: k, e: entry(1, 0, "one", false), now: t0},
		}},
		{"create over a live record conflicts", []op{
			{do: "cas", key: k, e: entry(1, later, "one", false), now: t0},
			{do: "cas", key: k, e: entry(2, later, "two", false), now: t0, wantErr: session.ErrConflict},
			{do: "get", key: k, e: entry(1, 0, "one", false), now: t0},
		}},
		{"swap from the live version", []op{
			{do: "cas", key: k, e: entry(1, later, "one", false), now: t0},
			{do: "cas", key: k, old: 1, e: entry(2, later, "two", false), now: t0},
			{do: "get", key: k, e: entry(2, 0, "two", false), now: t0},
		}},
		{"swap from a stale version conflicts", []op{
			{do: "cas", key: k, e: entry(1, later, "one", false), now: t0},
			{do: "cas", key: k, old: 1, e: entry(2, later, "two", false), now: t0},
			{do: "cas", key: k, old: 1, e: entry(3, later, "three", false), now: t0, wantErr: session.ErrConflict},
			{do: "get", key: k, e: entry(2, 0, "two", false), now: t0},
		}},
		{"swap of a missing key conflicts", []op{
			{do: "cas", key: k, old: 1, e: entry(2, later, "two", false), now: t0, wantErr: session.ErrConflict},
			{do: "get", key: k, now: t0},
		}},
		{"a record expires at its deadline", []op{
			{do: "cas", key: k, e: entry(1, later, "one", false), now: t0},
			{do: "get", key: k, e: entry(1, 0, "one", false), now: later - 1},
			{do: "get", key: k, now: later},
		}},
		{"an expired record counts as none", []op{
			{do: "cas", key: k, e: entry(1, later, "one", false), now: t0},
			{do: "cas", key: k, old: 1, e: entry(2, 0, "two", false), now: later, wantErr: session.ErrConflict},
			{do: "cas", key: k, e: entry(1, 0, "again", false), now: later},
			{do: "get", key: k, e: entry(1, 0, "again", false), now: later},
		}},
		{"expires 0 never expires", []op{
			{do: "cas", key: k, e: entry(1, 0, "forever", false), now: t0},
			{do: "get", key: k, e: entry(1, 0, "forever", false), now: math.MaxInt64},
		}},
		{"delete any version", []op{
			{do: "cas", key: k, e: entry(5, later, "five", false), now: t0},
			{do: "del", key: k, old: 0, now: t0},
			{do: "get", key: k, now: t0},
		}},
		{"delete the live version", []op{
			{do: "cas", key: k, e: entry(5, later, "five", false), now: t0},
			{do: "del", key: k, old: 5, now: t0},
			{do: "get", key: k, now: t0},
		}},
		{"delete of a changed record conflicts and keeps it", []op{
			{do: "cas", key: k, e: entry(5, later, "five", false), now: t0},
			{do: "cas", key: k, old: 5, e: entry(6, later, "six", false), now: t0},
			{do: "del", key: k, old: 5, now: t0, wantErr: session.ErrConflict},
			{do: "get", key: k, e: entry(6, 0, "six", false), now: t0},
		}},
		{"versioned delete of a missing key conflicts", []op{
			{do: "del", key: k, old: 5, now: t0, wantErr: session.ErrConflict},
		}},
		{"versioned delete of an expired record conflicts", []op{
			{do: "cas", key: k, e: entry(5, later, "five", false), now: t0},
			{do: "del", key: k, old: 5, now: later, wantErr: session.ErrConflict},
		}},
		{"delete of a missing key is nil", []op{
			{do: "del", key: k, old: 0, now: t0},
		}},
		{"no resurrection after a delete", []op{
			{do: "cas", key: k, e: entry(5, later, "five", false), now: t0},
			{do: "del", key: k, old: 5, now: t0},
			{do: "cas", key: k, old: 5, e: entry(6, later, "six", false), now: t0, wantErr: session.ErrConflict},
			{do: "get", key: k, now: t0},
			{do: "cas", key: k, old: 0, e: entry(1, later, "new", false), now: t0},
			{do: "get", key: k, e: entry(1, 0, "new", false), now: t0},
		}},
		{"put overwrites whatever is there", []op{
			{do: "cas", key: k, e: entry(5, later, "five", false), now: t0},
			{do: "put", key: k, e: entry(2, later, "two", true)},
			{do: "get", key: k, e: entry(2, 0, "two", false), now: t0},
		}},
		{"remove removes, and removing a missing key is fine", []op{
			{do: "put", key: k, e: entry(2, later, "two", false)},
			{do: "remove", key: k},
			{do: "get", key: k, now: t0},
			{do: "remove", key: k},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := New(0, nil)
			for i, o := range tt.ops {
				var err error
				switch o.do {
				case "cas":
					err = x.CompareAndSwap(o.key, o.old, o.e, o.now, nil)
				case "del":
					err = x.Delete(o.key, o.old, o.now, nil)
				case "put":
					x.Put(o.key, o.e)
				case "remove":
					x.Remove(o.key)
				case "get":
					wantGet(t, x, o.key, o.now, o.e.Version, string(o.e.Data))
				default:
					t.Fatalf("op %d: unknown %q", i, o.do)
				}
				if !errors.Is(err, o.wantErr) || (err != nil) != (o.wantErr != nil) {
					t.Fatalf("op %d (%s %s %d): err = %v, want %v", i, o.do, o.key, o.old, err, o.wantErr)
				}
			}
		})
	}
}

// TestCommit checks that commit runs once the version matched, and that a
// failed commit stores nothing.
func TestCommit(t *testing.T) {
	errDisk := errors.New("disk")
	const k = "session:c"
	t.Run("cas runs commit only on a match", func(t *testing.T) {
		x := New(0, nil)
		calls := 0
		commit := func() error { calls++; return nil }
		if err := x.CompareAndSwap(k, 3, entry(4, 0, "x", false), t0, commit); !errors.Is(err, session.ErrConflict) || calls != 0 {
			t.Fatalf("conflicting CAS: err = %v, %d commits; want ErrConflict, 0", err, calls)
		}
		if err := x.CompareAndSwap(k, 0, entry(1, 0, "x", false), t0, commit); err != nil || calls != 1 {
			t.Fatalf("create: err = %v, %d commits; want nil, 1", err, calls)
		}
	})
	t.Run("failed commit of a create stores nothing", func(t *testing.T) {
		x := New(1, nil)
		err := x.CompareAndSwap(k, 0, entry(1, 0, "x", true), t0, func() error { return errDisk })
		if !errors.Is(err, errDisk) {
			t.Fatalf("err = %v, want %v", err, errDisk)
		}
		wantGet(t, x, k, t0, 0, "")
		wantSize(t, x, 0, 0)
		// The place taken under the cap was given back.
		mustCAS(t, x, "session:other", 0, entry(1, 0, "y", false), t0)
		if x.Evicted() != 0 {
			t.Fatalf("Evicted = %d, want 0", x.Evicted())
		}
	})
	t.Run("failed commit of a swap keeps the old record", func(t *testing.T) {
		x := New(0, nil)
		mustCAS(t, x, k, 0, entry(1, 0, "old", false), t0)
		if err := x.CompareAndSwap(k, 1, entry(2, 0, "newer", false), t0, func() error { return errDisk }); !errors.Is(err, errDisk) {
			t.Fatalf("err = %v, want %v", err, errDisk)
		}
		wantGet(t, x, k, t0, 1, "old")
		wantSize(t, x, 1, int64(len(k)+len("old")))
	})
	t.Run("delete commits only what it removes", func(t *testing.T) {
		x := New(0, nil)
		calls := 0
		commit := func() error { calls++; return nil }
		if err := x.Delete(k, 0, t0, commit); err != nil || calls != 0 {
			t.Fatalf("delete of a missing key: err = %v, %d commits; want nil, 0", err, calls)
		}
		mustCAS(t, x, k, 0, entry(1, 0, "x", false), t0)
		if err := x.Delete(k, 1, t0, func() error { return errDisk }); !errors.Is(err, errDisk) {
			t.Fatalf("failed delete: err = %v, want %v", err, errDisk)
		}
		wantGet(t, x, k, t0, 1, "x")
		if err := x.Delete(k, 1, t0, commit); err != nil || calls != 1 {
			t.Fatalf("delete: err = %v, %d commits; want nil, 1", err, calls)
		}
		wantGet(t, x, k, t0, 0, "")
	})
}

// TestAccounting follows Len and Bytes through every way a record comes and
// goes.
func TestAccounting(t *testing.T) {
	var evicted []string
	x := New(3, func(key string) { evicted = append(evicted, key) })
	size := func(key, data string) int64 { return int64(len(key) + len(data)) }
	steps := []struct {
		name  string
		do    func(t *testing.T)
		n     int
		bytes int64
	}{
		{"empty", func(t *testing.T) {}, 0, 0},
		{"create", func(t *testing.T) { mustCAS(t, x, "k1", 0, entry(1, t0+10, "aaaa", true), t0) },
			1, size("k1", "aaaa")},
		{"update to longer data", func(t *testing.T) { mustCAS(t, x, "k1", 1, entry(2, t0+10, "aaaaaaaa", true), t0) },
			1, size("k1", "aaaaaaaa")},
		{"update to shorter data", func(t *testing.T) { mustCAS(t, x, "k1", 2, entry(3, t0+10, "a", true), t0) },
			1, size("k1", "a")},
		{"second and third", func(t *testing.T) {
			mustCAS(t, x, "key2", 0, entry(1, t0+20, "bb", true), t0)
			mustCAS(t, x, "key3", 0, entry(1, t0+5, "ccc", false), t0)
		}, 3, size("k1", "a") + size("key2", "bb") + size("key3", "ccc")},
		{"conflict changes nothing", func(t *testing.T) {
			if err := x.CompareAndSwap("key2", 7, entry(8, 0, "zzzzzz", false), t0, nil); !errors.Is(err, session.ErrConflict) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
		}, 3, size("k1", "a") + size("key2", "bb") + size("key3", "ccc")},
		{"create at the cap evicts k1", func(t *testing.T) { mustCAS(t, x, "k4", 0, entry(1, 0, "dddd", false), t0) },
			3, size("key2", "bb") + size("key3", "ccc") + size("k4", "dddd")},
		{"delete", func(t *testing.T) {
			if err := x.Delete("k4", 1, t0, nil); err != nil {
				t.Fatal(err)
			}
		}, 2, size("key2", "bb") + size("key3", "ccc")},
		{"put a new key and over an old one", func(t *testing.T) {
			x.Put("p", entry(1, 0, "pp", false))
			x.Put("key2", entry(9, t0+20, "b", true))
		}, 3, size("key3", "ccc") + size("p", "pp") + size("key2", "b")},
		{"sweep the expired key3", func(t *testing.T) {
			if n := x.Sweep(t0 + 5); n != 1 {
				t.Fatalf("Sweep = %d, want 1", n)
			}
		}, 2, size("p", "pp") + size("key2", "b")},
		{"remove", func(t *testing.T) { x.Remove("p"); x.Remove("p") }, 1, size("key2", "b")},
		{"create over an expired record replaces it", func(t *testing.T) {
			mustCAS(t, x, "key2", 0, entry(1, 0, "fresh", false), t0+20)
		}, 1, size("key2", "fresh")},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do(t)
			wantSize(t, x, st.n, st.bytes)
		})
	}
	if !slices.Equal(evicted, []string{"k1"}) || x.Evicted() != 1 {
		t.Errorf("evicted %q, Evicted() = %d; want [k1], 1", evicted, x.Evicted())
	}
}

func TestSweep(t *testing.T) {
	x := New(0, nil)
	for i := range 10 {
		mustCAS(t, x, fmt.Sprint("short-", i), 0, entry(1, t0+int64(i), "x", i%2 == 0), t0)
	}
	mustCAS(t, x, "never", 0, entry(1, 0, "x", false), t0)
	tests := []struct {
		now       int64
		swept     int
		remaining int
	}{
		{t0 - 1, 0, 11},
		{t0 + 1, 2, 9}, // short-0 and short-1 expire at or before t0+1
		{t0 + 1, 0, 9},
		{t0 + 9, 8, 1},
		{math.MaxInt64, 0, 1},
	}
	for _, tt := range tests {
		if n := x.Sweep(tt.now); n != tt.swept || x.Len() != tt.remaining {
			t.Fatalf("Sweep(t0%+d) = %d, Len %d; want %d, %d", tt.now-t0, n, x.Len(), tt.swept, tt.remaining)
		}
	}
	wantGet(t, x, "never", math.MaxInt64, 1, "x")
}

// TestCap checks which record makes room for a new key at the cap.
func TestCap(t *testing.T) {
	type rec struct {
		key       string // a key from keys(), each in a shard of its own: "k0".."k9"
		expires   int64
		evictable bool
	}
	tests := []struct {
		name        string
		max         int
		recs        []rec
		now         int64
		wantErr     error
		wantGone    []string // what left to make room
		wantEvicted int64    // live records evicted
	}{
		{
			name: "the evictable record closest to expiry, across shards",
			max:  5,
			recs: []rec{{"k0", t0 + 50, true}, {"k1", t0 + 30, true}, {"k2", t0 + 10, false}, {"k3", t0 + 20, true}, {"k4", t0 + 40, true}},
			now:  t0, wantGone: []string{"k3"}, wantEvicted: 1,
		},
		{
			name: "never a record that is not evictable",
			max:  3,
			recs: []rec{{"k0", t0 + 1, false}, {"k1", t0 + 2, false}, {"k2", t0 + 900, true}},
			now:  t0, wantGone: []string{"k2"}, wantEvicted: 1,
		},
		{
			name: "full of records that are not evictable",
			max:  3,
			recs: []rec{{"k0", t0 + 1, false}, {"k1", 0, false}, {"k2", t0 + 900, false}},
			now:  t0, wantErr: session.ErrFull,
		},
		{
			name: "an expired record that is not evictable is swept",
			max:  3,
			recs: []rec{{"k0", t0 + 1, false}, {"k1", 0, false}, {"k2", t0 + 900, false}},
			now:  t0 + 1, wantGone: []string{"k0"},
		},
		{
			name: "an expired evictable record goes first and is not counted",
			max:  3,
			recs: []rec{{"k0", t0 + 5, true}, {"k1", t0 + 1, true}, {"k2", 0, false}},
			now:  t0 + 1, wantGone: []string{"k1"},
		},
		{
			name: "a record that never expires is evicted last",
			max:  3,
			recs: []rec{{"k0", 0, true}, {"k1", t0 + 900, true}, {"k2", 0, false}},
			now:  t0, wantGone: []string{"k1"}, wantEvicted: 1,
		},
		{
			name: "only evictable records that never expire",
			max:  2,
			recs: []rec{{"k0", 0, true}, {"k1", 0, false}},
			now:  t0, wantGone: []string{"k0"}, wantEvicted: 1,
		},
		{
			name: "an evictable record in the far future",
			max:  2,
			recs: []rec{{"k0", math.MaxInt64, true}, {"k1", 0, false}},
			now:  t0, wantGone: []string{"k0"}, wantEvicted: 1,
		},
		{
			name: "below the cap nothing goes",
			max:  4,
			recs: []rec{{"k0", t0 + 1, true}, {"k1", t0 + 2, true}, {"k2", t0 + 3, true}},
			now:  t0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var told []string
			x := New(tt.max, func(key string) { told = append(told, key) })
			keys := keysInShards(t, x, "k", 11)
			name := func(k string) string { // "k3" -> keys[3]
				i, _ := strconv.Atoi(k[1:])
				return keys[i]
			}
			for _, r := range tt.recs {
				mustCAS(t, x, name(r.key), 0, entry(1, r.expires, "data-"+r.key, r.evictable), t0)
			}
			newKey := keys[10]
			err := x.CompareAndSwap(newKey, 0, entry(1, 0, "new", true), tt.now, nil)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("create at the cap: err = %v, want %v", err, tt.wantErr)
			}
			if x.Len() > tt.max {
				t.Errorf("Len = %d, above the cap %d", x.Len(), tt.max)
			}
			var gone []string
			for _, r := range tt.recs {
				if _, ok := x.shard(name(r.key)).items[name(r.key)]; !ok {
					gone = append(gone, r.key)
				} else if r.expires == 0 || r.expires > tt.now {
					wantGet(t, x, name(r.key), tt.now, 1, "data-"+r.key)
				}
			}
			if !slices.Equal(gone, tt.wantGone) {
				t.Errorf("gone %v, want %v", gone, tt.wantGone)
			}
			if tt.wantErr != nil {
				wantGet(t, x, newKey, tt.now, 0, "")
			} else {
				wantGet(t, x, newKey, tt.now, 1, "new")
			}
			if x.Evicted() != tt.wantEvicted {
				t.Errorf("Evicted = %d, want %d", x.Evicted(), tt.wantEvicted)
			}
			// Every record that left to make room was told to onEvict, and
			// nothing else.
			var wantTold []string
			for _, g := range tt.wantGone {
				for _, r := range tt.recs {
					if r.key == g && r.evictable {
						wantTold = append(wantTold, name(g))
					}
				}
			}
			if !slices.Equal(told, wantTold) {
				t.Errorf("onEvict told %q, want %q", told, wantTold)
			}
		})
	}
}

// TestCapUpdates checks that a key already held needs no room at the cap.
func TestCapUpdates(t *testing.T) {
	x := New(2, func(key string) { t.Errorf("evicted %s", key) })
	mustCAS(t, x, "a", 0, entry(1, 0, "x", false), t0)
	mustCAS(t, x, "b", 0, entry(1, t0+10, "x", false), t0)
	mustCAS(t, x, "a", 1, entry(2, 0, "y", false), t0)
	// The expired record of a key is replaced in place by a create.
	mustCAS(t, x, "b", 0, entry(1, 0, "again", false), t0+10)
	if err := x.Delete("a", 2, t0, nil); err != nil {
		t.Fatal(err)
	}
	mustCAS(t, x, "c", 0, entry(1, 0, "z", false), t0) // the deleted key's place
	if err := x.CompareAndSwap("d", 0, entry(1, 0, "z", false), t0, nil); !errors.Is(err, session.ErrFull) {
		t.Fatalf("create in a full index: err = %v, want ErrFull", err)
	}
	wantSize(t, x, 2, int64(len("b")+len("again")+len("c")+len("z")))
}

// TestEvictionOrder fills an index at its cap with evictable records and
// checks that each create evicts the one closest to expiry.
func TestEvictionOrder(t *testing.T) {
	var told []string
	x := New(20, func(key string) { told = append(told, key) })
	var want []string
	for i := range 20 {
		k := fmt.Sprint("e", i)
		// Expiries in a scrambled order: (i*7)%20.
		mustCAS(t, x, k, 0, entry(1, t0+100+int64((i*7)%20), "x", true), t0)
	}
	for d := range 20 {
		for i := range 20 {
			if (i*7)%20 == d {
				want = append(want, fmt.Sprint("e", i))
			}
		}
	}
	for i := range 20 {
		mustCAS(t, x, fmt.Sprint("n", i), 0, entry(1, 0, "x", false), t0)
	}
	if !slices.Equal(told, want) {
		t.Fatalf("evicted in order %q, want %q", told, want)
	}
	if x.Evicted() != 20 || x.Len() != 20 {
		t.Fatalf("Evicted %d, Len %d; want 20, 20", x.Evicted(), x.Len())
	}
	if err := x.CompareAndSwap("one-more", 0, entry(1, 0, "x", true), t0, nil); !errors.Is(err, session.ErrFull) {
		t.Fatalf("err = %v, want ErrFull", err)
	}
}

func TestRange(t *testing.T) {
	x := New(0, nil)
	want := map[string]Entry{}
	for i := range 200 {
		k := fmt.Sprint("r", i)
		e := entry(uint64(i+1), t0+int64(i), fmt.Sprint("data", i), i%3 == 0)
		mustCAS(t, x, k, 0, e, t0)
		want[k] = e
	}
	x.Put("expired", entry(9, t0-1, "old", false))
	want["expired"] = entry(9, t0-1, "old", false)
	got := map[string]Entry{}
	x.Range(func(key string, e Entry) {
		if _, dup := got[key]; dup {
			t.Errorf("Range gave %s twice", key)
		}
		got[key] = e
		// fn runs without the shard's lock: it may use the index.
		x.Get(key, t0)
	})
	if len(got) != len(want) {
		t.Fatalf("Range gave %d records, want %d (expired ones included)", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g.Version != w.Version || g.Expires != w.Expires || string(g.Data) != string(w.Data) || g.Evictable != w.Evictable {
			t.Errorf("Range gave %s = %+v, want %+v", k, g, w)
		}
	}
}

// TestConcurrent has goroutines increment a few counters with CAS loops
// while others create keys in an index with a small cap; run it with -race.
func TestConcurrent(t *testing.T) {
	const (
		max       = 16
		counters  = 4
		adders    = 8
		each      = 200
		creators  = 8
		creations = 300
	)
	var evictions atomic.Int64
	x := New(max, func(string) { evictions.Add(1) })
	now := t0
	for c := range counters {
		mustCAS(t, x, fmt.Sprint("counter-", c), 0, entry(1, 0, "0", false), now)
	}
	var wg sync.WaitGroup
	var over atomic.Int64 // the most records seen at once
	for a := range adders {
		wg.Go(func() {
			key := fmt.Sprint("counter-", a%counters)
			for done := 0; done < each; {
				e, ok := x.Get(key, now)
				if !ok {
					t.Errorf("%s gone", key)
					return
				}
				n, _ := strconv.Atoi(string(e.Data))
				err := x.CompareAndSwap(key, e.Version, entry(e.Version+1, 0, strconv.Itoa(n+1), false), now, nil)
				switch {
				case err == nil:
					done++
				case !errors.Is(err, session.ErrConflict):
					t.Errorf("CompareAndSwap(%s): %v", key, err)
					return
				}
			}
		})
	}
	var created, full atomic.Int64
	for c := range creators {
		wg.Go(func() {
			for i := range creations {
				key := fmt.Sprintf("new-%d-%d", c, i)
				err := x.CompareAndSwap(key, 0, entry(1, now+1+int64(i), "x", true), now, nil)
				switch {
				case err == nil:
					created.Add(1)
				case errors.Is(err, session.ErrFull):
					full.Add(1)
				default:
					t.Errorf("create %s: %v", key, err)
					return
				}
				if n := int64(x.Len()); n > over.Load() {
					over.Store(n) // racy maximum, good enough to catch an excess
				}
				if i%10 == 0 {
					x.Delete(fmt.Sprintf("new-%d-%d", c, i/2), 0, now, nil)
				}
			}
		})
	}
	wg.Wait()
	if n := x.Len(); n > max {
		t.Fatalf("Len = %d at the end, above the cap %d", n, max)
	}
	if m := over.Load(); m > max {
		t.Errorf("Len reached %d, above the cap %d", m, max)
	}
	var sum uint64
	for c := range counters {
		e, ok := x.Get(fmt.Sprint("counter-", c), now)
		if !ok {
			t.Fatalf("counter-%d gone", c)
		}
		n, _ := strconv.Atoi(string(e.Data))
		if uint64(n) != e.Version-1 {
			t.Errorf("counter-%d = %d at version %d", c, n, e.Version)
		}
		sum += uint64(n)
	}
	if sum != adders*each {
		t.Errorf("counters add up to %d, want %d", sum, adders*each)
	}
	if x.Evicted() != evictions.Load() {
		t.Errorf("Evicted = %d, onEvict told %d", x.Evicted(), evictions.Load())
	}
	// The counters are not evictable and stayed; every other place was
	// taken by creations, and what is left adds up.
	var held int
	var bytes int64
	x.Range(func(key string, e Entry) { held++; bytes += int64(len(key) + len(e.Data)) })
	if held != x.Len() || bytes != x.Bytes() {
		t.Errorf("Range saw %d records of %d bytes; Len, Bytes = %d, %d", held, bytes, x.Len(), x.Bytes())
	}
	t.Logf("%d created, %d refused as full, %d evicted", created.Load(), full.Load(), x.Evicted())
}
