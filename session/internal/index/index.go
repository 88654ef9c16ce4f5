// Package index is the in-memory table of records that the embedded stores
// (memstore, and filestore in front of its log) keep: each key's version,
// expiry and data, the compare-and-swap and delete of session.Store, a sweep
// of expired records, and a cap on their number at which evictable records
// make room for new ones, the closest to expiry first.
//
// The records are spread over shards, each a map behind its own lock, so
// that the file store can copy them for a snapshot one shard at a time
// without stopping every writer.
package index

import (
	"container/heap"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"tote/session"
)

// shardCount is the number of shards; a power of two.
const shardCount = 64

// Entry is one record. Data is never modified once stored, so it may be read
// after the lock is released.
type Entry struct {
	Version   uint64
	Expires   int64 // unix nanoseconds; 0: never
	Data      []byte
	Evictable bool
}

// Expired reports whether e has expired at now (unix nanoseconds).
func (e *Entry) Expired(now int64) bool { return e.Expires != 0 && e.Expires <= now }

// deadline returns e's expiry for ordering: a record that never expires
// comes after every other.
func (e *Entry) deadline() int64 {
	if e.Expires == 0 {
		return math.MaxInt64
	}
	return e.Expires
}

// Deadline returns the expiry of a record written at now with ttl: 0 (never)
// for ttl <= 0, and the far future on overflow.
func Deadline(now int64, ttl time.Duration) int64 {
	switch {
	case ttl <= 0:
		return 0
	case int64(ttl) > math.MaxInt64-now:
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// Index is the table. Its methods are safe for concurrent use.
type Index struct {
	seed    maphash.Seed
	shards  [shardCount]shard
	max     int64 // 0: no cap
	count   atomic.Int64
	bytes   atomic.Int64 // len(key) + len(data) of every record held
	evicted atomic.Int64
	evictMu sync.Mutex // one eviction at a time
	// onEvict is called with the evicted key's shard locked, before the
	// record leaves memory (the file store logs the deletion).
	onEvict func(key string)
}

type shard struct {
	mu    sync.RWMutex
	items map[string]*item
	heap  byExpiry // the evictable items, closest to expiry first
}

type item struct {
	Entry
	key string
	pos int // in the shard's heap; -1 when not evictable
}

// New returns an empty index that holds at most max records (0: no cap).
// onEvict, if not nil, is told of every record evicted to make room.
func New(max int, onEvict func(key string)) *Index {
	x := &Index{seed: maphash.MakeSeed(), max: int64(max), onEvict: onEvict}
	for i := range x.shards {
		x.shards[i].items = make(map[string]*item)
	}
	return x
}

func (x *Index) shard(key string) *shard {
	return &x.shards[maphash.String(x.seed, key)&(shardCount-1)]
}

// Get returns the live entry under key.
func (x *Index) Get(key string, now int64) (Entry, bool) {
	sh := x.shard(key)
	sh.mu.RLock()
	it, ok := sh.items[key]
	var e Entry
	if ok {
		e = it.Entry
	}
	sh.mu.RUnlock()
	if !ok || e.Expired(now) {
		return Entry{}, false
	}
	return e, true
}

// CompareAndSwap stores e under key if the live version under key is old (0:
// no live record; an expired one counts as none), and returns
// session.ErrConflict otherwise. commit, if not nil, runs with the key's
// shard locked once the version has matched: if it fails, nothing is stored
// and its error is returned. A new key in a full index evicts the evictable
// record closest to expiry first, or fails with session.ErrFull.
func (x *Index) CompareAndSwap(key string, old uint64, e Entry, now int64, commit func() error) error {
	sh := x.shard(key)
	for {
		sh.mu.Lock()
		it, had := sh.items[key]
		var cur uint64
		if had && !it.Expired(now) {
			cur = it.Version
		}
		if cur != old {
			sh.mu.Unlock()
			return session.ErrConflict
		}
		// A new key takes its place under the cap before it is stored, so
		// that concurrent creates never hold more places than there are.
		reserved := !had && x.max > 0
		if reserved && !x.reserve() {
			sh.mu.Unlock()
			if err := x.makeRoom(now); err != nil {
				return err
			}
			continue
		}
		if commit != nil {
			if err := commit(); err != nil {
				if reserved {
					x.count.Add(-1)
				}
				sh.mu.Unlock()
				return err
			}
		}
		x.put(sh, key, it, e, reserved)
		sh.mu.Unlock()
		return nil
	}
}

// reserve counts a new record if the index is below its cap, and reports
// whether it did. The count never goes above the cap, not even for a
// moment.
func (x *Index) reserve() bool {
	for {
		n := x.count.Load()
		if n >= x.max {
			return false
		}
		if x.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Delete removes the record under key if its live version is version (0:
// any), and returns session.ErrConflict otherwise; see session.Store.
// commit runs as in CompareAndSwap, when there is a record to delete.
func (x *Index) Delete(key string, version uint64, now int64, commit func() error) error {
	sh := x.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it, had := sh.items[key]
	live := had && !it.Expired(now)
	switch {
	case version != 0 && (!live || it.Version != version):
		return session.ErrConflict
	case !had:
		return nil
	}
	if commit != nil {
		if err := commit(); err != nil {
			return err
		}
	}
	x.remove(sh, it)
	return nil
}

// Put stores e under key whatever is there, and Remove removes key: the
// file store's replay of its log.
func (x *Index) Put(key string, e Entry) {
	sh := x.shard(key)
	sh.mu.Lock()
	x.put(sh, key, sh.items[key], e, false)
	sh.mu.Unlock()
}

// Remove removes the record under key, if any.
func (x *Index) Remove(key string) {
	sh := x.shard(key)
	sh.mu.Lock()
	if it, ok := sh.items[key]; ok {
		x.remove(sh, it)
	}
	sh.mu.Unlock()
}

// put stores e under key in sh, whose lock is held; it is the item there,
// or nil. counted: a new item's place is already in x.count.
func (x *Index) put(sh *shard, key string, it *item, e Entry, counted bool) {
	if it == nil {
		it = &item{key: key, pos: -1}
		sh.items[key] = it
		if !counted {
			x.count.Add(1)
		}
		x.bytes.Add(int64(len(key)))
	} else {
		x.bytes.Add(-int64(len(it.Data)))
	}
	it.Entry = e
	x.bytes.Add(int64(len(e.Data)))
	switch {
	case e.Evictable && it.pos < 0:
		heap.Push(&sh.heap, it)
	case e.Evictable:
		heap.Fix(&sh.heap, it.pos)
	case it.pos >= 0:
		heap.Remove(&sh.heap, it.pos)
	}
}

// remove removes it from sh, whose lock is held.
func (x *Index) remove(sh *shard, it *item) {
	if it.pos >= 0 {
		heap.Remove(&sh.heap, it.pos)
	}
	delete(sh.items, it.key)
	x.count.Add(-1)
	x.bytes.Add(-int64(len(it.key) + len(it.Data)))
}

// makeRoom evicts records until the index is below its cap: expired ones
// first, then the evictable record closest to expiry. It returns
// session.ErrFull if nothing can be evicted.
func (x *Index) makeRoom(now int64) error {
	x.evictMu.Lock()
	defer x.evictMu.Unlock()
	for x.count.Load() >= x.max {
		// The shard whose evictable record expires first; an expired
		// record of any kind would go at the next sweep, so a sweep is
		// tried once before giving up.
		var victim *shard
		var first int64
		for i := range x.shards {
			sh := &x.shards[i]
			sh.mu.RLock()
			if len(sh.heap) > 0 && (victim == nil || sh.heap[0].deadline() < first) {
				victim, first = sh, sh.heap[0].deadline()
			}
			sh.mu.RUnlock()
		}
		if victim == nil {
			if x.Sweep(now) > 0 {
				continue
			}
			return session.ErrFull
		}
		victim.mu.Lock()
		if len(victim.heap) > 0 {
			it := victim.heap[0]
			if x.onEvict != nil {
				x.onEvict(it.key)
			}
			x.remove(victim, it)
			if !it.Expired(now) {
				x.evicted.Add(1)
			}
		}
		victim.mu.Unlock()
	}
	return nil
}

// Sweep removes every record that has expired at now and returns how many.
func (x *Index) Sweep(now int64) int {
	removed := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		for _, it := range sh.items {
			if it.Expired(now) {
				x.remove(sh, it)
				removed++
			}
		}
		sh.mu.Unlock()
	}
	return removed
}

// Range calls fn for every record held, expired ones included, one shard at
// a time: the records of a shard are copied under its lock and fn runs
// without it, so fn may be slow. A record changed during Range is seen in
// one of its states.
func (x *Index) Range(fn func(key string, e Entry)) {
	type kv struct {
		key string
		e   Entry
	}
	var batch []kv
	for i := range x.shards {
		sh := &x.shards[i]
		batch = batch[:0]
		sh.mu.RLock()
		for key, it := range sh.items {
			batch = append(batch, kv{key, it.Entry})
		}
		sh.mu.RUnlock()
		for _, r := range batch {
			fn(r.key, r.e)
		}
	}
}

// Len returns the number of records held: the live ones and the expired
// ones not yet swept.
func (x *Index) Len() int { return int(x.count.Load()) }

// Bytes returns the length of the keys and data of every record held.
func (x *Index) Bytes() int64 { return x.bytes.Load() }

// Evicted returns how many live records have been evicted to make room.
func (x *Index) Evicted() int64 { return x.evicted.Load() }

// byExpiry is a heap of items, the closest to expiry first.
type byExpiry []*item

func (h byExpiry) Len() int           { return len(h) }
func (h byExpiry) Less(i, j int) bool { return h[i].deadline() < h[j].deadline() }
func (h byExpiry) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}

func (h *byExpiry) Push(v any) {
	it := v.(*item)
	it.pos = len(*h)
	*h = append(*h, it)
}

func (h *byExpiry) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.pos = -1
	return it
}
