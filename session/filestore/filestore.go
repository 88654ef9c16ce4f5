// Package filestore is the default session.Store: embedded and persistent,
// an append-only log file (tote.log) in a data directory with every live
// session also held in memory.
//
// Reads never touch the disk. A write checks the version in memory, applies
// the change there, appends one record to the log and returns once the log
// is fsynced: an acknowledged write survives a crash of the process or of
// the machine. Concurrent writes share one write and one fdatasync (a group
// commit by a single flusher goroutine), so a busy shop pays one small
// sequential write per batch instead of a B-tree transaction. A change is
// visible to Get from the moment it is applied, a few hundred microseconds
// before it is durable; a change built on it is appended after it, so
// whatever a crash keeps is a prefix of the history, never a later state
// without the one it was built on.
//
// Open replays the log to rebuild memory; a torn record at the end (a write
// that was never acknowledged) is cut off. When the log has grown to more
// than twice the size of the live records, it is compacted in the background:
// the live sessions are written to a new file, the records appended meanwhile
// are copied after them, and the new file replaces the old one by rename.
// Expired sessions are never served, are swept from memory periodically, and
// leave the file at the next compaction.
//
// The cost of this design is memory: every live session's data is resident
// (about 100 bytes of overhead per session on top of its data). For a store
// too big for one machine's memory, use Redis.
//
// If a write or fsync of the log fails, nothing more can be promised about
// what is on disk, so the store stops: every later call returns an error
// (tote answers 503 and /readyz fails) until the process is restarted, and
// the restart replays what was durable. No acknowledged write is lost.
package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"tote/session"
)

// FileName is the name of the log file inside the data directory.
const FileName = "tote.log"

// lockName is the file whose lock keeps a second process out of the data
// directory. The log itself cannot carry the lock: compaction replaces it.
const lockName = "tote.lock"

// lockTimeout is how long Open waits for another holder of the directory.
const lockTimeout = time.Second

// shardCount is the number of independently locked shards of the in-memory
// index; a power of two so that a shard is picked with a mask.
const shardCount = 64

// defaultCompactMin is the smallest log worth compacting.
const defaultCompactMin = 64 << 20

// Options configure Open.
type Options struct {
	// SweepEvery is how often expired sessions are dropped from memory;
	// <= 0: one minute.
	SweepEvery time.Duration

	// CompactMin is the log size below which the log is never compacted;
	// <= 0: 64 MiB. Above it, the log is compacted once it is more than
	// twice the size of the live records.
	CompactMin int64
}

// Store is a session.Store in a log file. Its methods are safe for
// concurrent use.
type Store struct {
	dir, path  string
	lock       *os.File
	seed       maphash.Seed
	shards     [shardCount]shard
	live       atomic.Int64 // encoded size of every record in memory, expired or not
	compactMin int64
	imported   int
	cut        int64 // bytes of a torn end cut off by Open

	// The log's tail, filled by writers and drained by the flusher.
	wmu     sync.Mutex
	pending []byte                // records appended but not yet written
	batch   *batch                // what the writers of pending wait for
	failed  atomic.Pointer[error] // set under wmu: a write or fsync failed, or the store closed
	kick    chan struct{}

	// Owned by the flusher goroutine after Open.
	f          *os.File
	size       atomic.Int64 // bytes in f; written by the flusher only
	spare      []byte
	compacting chan compacted // non-nil while a snapshot is being written
	tailFrom   int64          // with compacting: where in f the records after the snapshot start
	nextTry    int64          // after a failed compaction, the size at which to try again
	compacts   atomic.Int64
	compactErr atomic.Int64 // compactions that failed

	stop      chan struct{}
	done      chan struct{} // closed when the flusher has exited
	swept     chan struct{} // closed when the sweeper has exited
	closeOnce sync.Once
	closeErr  error
}

// shard is one lock and the entries it guards, padded to its own cache line.
type shard struct {
	mu sync.RWMutex
	m  map[string]entry
	_  [(cacheLine - (unsafe.Sizeof(sync.RWMutex{})+unsafe.Sizeof(map[string]entry(nil)))%cacheLine) % cacheLine]byte
}

const cacheLine = 64

// batch is the records that one write and fsync make durable. done is
// closed when they are, or when that failed (err).
type batch struct {
	done chan struct{}
	err  error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// entry is one session in memory. data is never modified once stored, so it
// may be read after the shard lock is released.
type entry struct {
	version uint64
	expires int64 // unix nanoseconds; 0: never
	data    []byte
}

func (e entry) expired(now int64) bool { return e.expires != 0 && e.expires <= now }

// errClosed is what calls on a closed store return.
var errClosed = errors.New("filestore: store is closed")

var _ session.Store = (*Store)(nil)

// Open opens or creates dir/tote.log (creating dir with 0o700 if missing),
// replays it, and starts the flusher and the sweeper. If another process
// holds the directory it fails within about a second with an error that
// says so ("... is in use by another process").
//
// A directory that holds a tote.db from the bbolt store of earlier versions
// and no tote.log is imported first: its live sessions become the log, and
// tote.db is renamed tote.db.imported.
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: create data directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName), filepath.Join(dir, FileName), lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	s := &Store{
		dir:        dir,
		path:       filepath.Join(dir, FileName),
		lock:       lock,
		seed:       maphash.MakeSeed(),
		compactMin: o.CompactMin,
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		swept:      make(chan struct{}),
	}
	if s.compactMin <= 0 {
		s.compactMin = defaultCompactMin
	}
	s.batch = newBatch()
	for i := range s.shards {
		s.shards[i].m = make(map[string]entry)
	}
	if err := s.open(); err != nil {
		lock.Close()
		return nil, err
	}
	every := o.SweepEvery
	if every <= 0 {
		every = time.Minute
	}
	go s.flusher()
	go s.sweeper(every)
	return s, nil
}

// Path returns the log file's path.
func (s *Store) Path() string { return s.path }

// Imported returns how many sessions Open imported from a bbolt tote.db.
func (s *Store) Imported() int { return s.imported }

// Cut returns how many bytes Open cut off the end of the log: the torn end
// of a write that a crash interrupted, which was never acknowledged. Replay
// stops at the first record that does not check out, so damage in the
// middle of the file would cut more; a cut larger than a few writes is
// worth a look (tote logs it).
func (s *Store) Cut() int64 { return s.cut }

// Get returns a copy of the live record stored under id. An expired record
// is not found even if the sweeper has not dropped it yet.
func (s *Store) Get(ctx context.Context, id string) (session.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return session.Record{}, false, err
	}
	if err := s.failure(); err != nil {
		return session.Record{}, false, err
	}
	sh := s.shard(id)
	sh.mu.RLock()
	e, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok || e.expired(time.Now().UnixNano()) {
		return session.Record{}, false, nil
	}
	return session.Record{Version: e.version, Data: bytes.Clone(e.data)}, true, nil
}

// CompareAndSwap stores data under id with version next, to expire after
// ttl, if the live version under id is old (0: no live record; an expired
// record counts as none). A ttl <= 0 means the record never expires.
// Otherwise it returns session.ErrConflict and stores nothing.
//
// It returns once the record is durable in the log. Concurrent calls share
// one write and one fsync. If the write fails, the store stops and the error
// says so; whether that change is found after a restart is then unknown (a
// compaction may have copied it from memory), as with a store over a
// network that times out.
func (s *Store) CompareAndSwap(ctx context.Context, id string, old, next uint64, data []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case id == "":
		return errors.New("filestore: empty session id")
	case len(id) > maxID:
		return fmt.Errorf("filestore: session id of %d bytes, more than %d", len(id), maxID)
	case len(data) > maxData:
		return fmt.Errorf("filestore: record of %d bytes, more than %d", len(data), maxData)
	case next == 0:
		return errors.New("filestore: next version is 0")
	}
	if err := s.failure(); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	expires := deadline(now, ttl)
	// The record is encoded outside the locks; the entry's data aliases
	// the copy inside it, so the caller may reuse data.
	rec, at := encodeRecord(id, next, expires, data)
	e := entry{version: next, expires: expires, data: rec[at:]}

	sh := s.shard(id)
	sh.mu.Lock()
	var cur uint64
	prev, had := sh.m[id]
	if had && !prev.expired(now) {
		cur = prev.version
	}
	if cur != old {
		sh.mu.Unlock()
		return session.ErrConflict
	}
	// Memory and the log change together under the shard lock, so the log
	// holds the writes of one id in the order they were applied.
	s.wmu.Lock()
	if err := s.failure(); err != nil {
		s.wmu.Unlock()
		sh.mu.Unlock()
		return err
	}
	sh.m[id] = e
	s.pending = append(s.pending, rec...)
	b := s.batch
	s.wmu.Unlock()
	sh.mu.Unlock()

	delta := int64(len(rec))
	if had {
		delta -= recordSize(id, prev.data)
	}
	s.live.Add(delta)

	select {
	case s.kick <- struct{}{}:
	default: // the flusher is already due to run
	}
	<-b.done
	return b.err
}

// Ping reports whether the store can still write.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.failure()
}

// Close writes what is pending, stops the flusher and the sweeper, and
// closes the log. It is safe to call more than once; every call returns the
// first call's result. Calls on a closed store return an error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.swept
		<-s.done
		err := s.failure()
		if errors.Is(err, errClosed) {
			err = nil
		}
		if cerr := s.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("filestore: close %s: %w", s.path, cerr)
		}
		s.lock.Close()
		s.closeErr = err
	})
	return s.closeErr
}

// Sweep drops every expired record from memory now and returns how many it
// dropped. They leave the file at the next compaction.
func (s *Store) Sweep() int {
	removed := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now := time.Now().UnixNano()
		var freed int64
		for id, e := range sh.m {
			if e.expired(now) {
				delete(sh.m, id)
				freed += recordSize(id, e.data)
				removed++
			}
		}
		sh.mu.Unlock()
		s.live.Add(-freed)
	}
	return removed
}

// Len returns the number of records in memory: the live ones and the
// expired ones not yet swept.
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

// Compactions returns how many times the log has been compacted since Open.
func (s *Store) Compactions() int { return int(s.compacts.Load()) }

// FailedCompactions returns how many compactions have failed since Open. A
// failed compaction leaves the log as it was.
func (s *Store) FailedCompactions() int { return int(s.compactErr.Load()) }

// LogSize returns the size of the log file in bytes, as of the last write.
func (s *Store) LogSize() int64 { return s.size.Load() }

func (s *Store) sweeper(every time.Duration) {
	defer close(s.swept)
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

// failure returns the error that stopped the store, or nil.
func (s *Store) failure() error {
	if err := s.failed.Load(); err != nil {
		return *err
	}
	return nil
}

// fail stops the store with err: every later write is refused, and every
// read. The first error stays.
func (s *Store) fail(err error) {
	s.wmu.Lock()
	if cur := s.failure(); cur == nil || cur == errClosed {
		s.failed.Store(&err)
	}
	s.wmu.Unlock()
}

// deadline returns the expiry for a write at now with ttl: 0 (never) for
// ttl <= 0, and the far future on overflow.
func deadline(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	if int64(ttl) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(ttl)
}
