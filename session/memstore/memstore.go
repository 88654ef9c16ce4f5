// Package memstore is an in-process session.Store for tests, development and
// throwaway runs: nothing survives the process.
//
// It is built for the request hot path: the records live in a fixed number of
// shards, each a map behind its own lock and chosen by a hash of the session
// id, so concurrent requests for different sessions rarely contend. Records
// are checked for expiry on every read and purged by a background sweeper.
package memstore

import (
	"bytes"
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"
	"unsafe"

	"tote/session"
)

// shardCount is the number of independently locked shards; a power of two so
// that a shard is picked with a mask.
const shardCount = 64

// Store is an in-memory session.Store. The zero value is not usable; call New.
type Store struct {
	seed   maphash.Seed
	base   time.Time // expiry deadlines are monotonic offsets from base
	shards [shardCount]shard

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// shard is one lock and the records it guards, padded to its own cache line
// so that neighbouring shards' locks do not share one.
type shard struct {
	mu sync.RWMutex
	m  map[string]entry
	_  [(cacheLine - (unsafe.Sizeof(sync.RWMutex{})+unsafe.Sizeof(map[string]entry(nil)))%cacheLine) % cacheLine]byte
}

// cacheLine is the cache line size assumed for padding shards.
const cacheLine = 64

// entry is one stored record. data is never modified after it is stored, so
// it may be read after the shard lock is released.
type entry struct {
	version uint64
	expires int64 // nanoseconds since Store.base; math.MaxInt64: never
	data    []byte
}

var _ session.Store = (*Store)(nil)

// New returns an empty store that sweeps expired sessions every sweepEvery
// (<= 0: one minute). Close stops the sweeper.
func New(sweepEvery time.Duration) *Store {
	if sweepEvery <= 0 {
		sweepEvery = time.Minute
	}
	s := &Store{
		seed: maphash.MakeSeed(),
		base: time.Now(),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].m = make(map[string]entry)
	}
	go s.sweeper(sweepEvery)
	return s
}

// Get returns a copy of the live record stored under id. An expired record is
// not found even if the sweeper has not purged it yet.
func (s *Store) Get(ctx context.Context, id string) (session.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return session.Record{}, false, err
	}
	sh := s.shard(id)
	sh.mu.RLock()
	e, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok || e.expired(s.now()) {
		return session.Record{}, false, nil
	}
	return session.Record{Version: e.version, Data: bytes.Clone(e.data)}, true, nil
}

// CompareAndSwap stores a copy of data under id with version next, to expire
// after ttl, if the live version under id is old (0: no live record). A ttl
// <= 0 means the record never expires. Otherwise it returns
// session.ErrConflict and stores nothing.
func (s *Store) CompareAndSwap(ctx context.Context, id string, old, next uint64, data []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Copy before taking the lock: the caller may reuse its buffer.
	e := entry{version: next, data: bytes.Clone(data)}
	sh := s.shard(id)
	sh.mu.Lock()
	now := s.now()
	var cur uint64
	if prev, ok := sh.m[id]; ok && !prev.expired(now) {
		cur = prev.version
	}
	if cur != old {
		sh.mu.Unlock()
		return session.ErrConflict
	}
	e.expires = deadline(now, ttl)
	sh.m[id] = e
	sh.mu.Unlock()
	return nil
}

// Ping reports whether the store answers, which an in-process store always
// does unless ctx is done.
func (s *Store) Ping(ctx context.Context) error {
	return ctx.Err()
}

// Close stops the sweeper and waits for it to exit. It is safe to call more
// than once. The records stay readable and writable after Close, but expired
// ones are no longer purged.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}

// Sweep removes every expired record now and returns how many it removed.
// The sweeper calls it periodically; it locks one shard at a time.
func (s *Store) Sweep() int {
	removed := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now := s.now()
		for id, e := range sh.m {
			if e.expired(now) {
				delete(sh.m, id)
				removed++
			}
		}
		sh.mu.Unlock()
	}
	return removed
}

// Len returns the number of records held: the live ones and the expired ones
// not yet swept. It is meant for tests and metrics.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

func (s *Store) sweeper(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

func (s *Store) shard(id string) *shard {
	return &s.shards[maphash.String(s.seed, id)&(shardCount-1)]
}

// now is the monotonic time since the store was made, immune to wall-clock
// jumps.
func (s *Store) now() int64 {
	return int64(time.Since(s.base))
}

func (e entry) expired(now int64) bool {
	return e.expires <= now
}

// deadline returns now+ttl, or math.MaxInt64 (never) for ttl <= 0 or on
// overflow.
func deadline(now int64, ttl time.Duration) int64 {
	if ttl <= 0 || int64(ttl) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(ttl)
}
