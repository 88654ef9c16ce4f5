// Package filestore is the default session.Store: embedded and persistent,
// an append-only log file (tote.log) in a data directory with every live
// record also held in memory.
//
// Reads never touch the disk. A write checks the version in memory, applies
// the change there, appends one record to the log and returns once the log
// is fsynced: an acknowledged write survives a crash of the process or of
// the machine. Concurrent writes share one write and one fdatasync (a group
// commit by a single flusher goroutine). A change is visible to Get from the
// moment it is applied, a few hundred microseconds before it is durable; a
// change built on it is appended after it, so whatever a crash keeps is a
// prefix of the history, never a later state without the one it was built
// on.
//
// Open replays the log to rebuild memory; a torn record at the end (a write
// that was never acknowledged) is cut off. When the log has grown to more
// than twice the size of the live records, it is compacted in the
// background: the live records are written to a new file, the records
// appended meanwhile are copied after them, and the new file replaces the
// old one by rename. Expired records are never served, are swept from
// memory periodically, and leave the file at the next compaction.
//
// The cost of this design is memory: every live record's data is resident.
// For a store too big for one machine's memory, use Redis.
//
// If a write or fsync of the log fails (a full disk, an I/O error), the
// store cannot say what the failed batch left on disk, so it trusts nothing
// it did not read back: it cuts the log back to its last acknowledged size,
// rebuilds memory by replaying the log from the file, and refuses writes
// while serving reads from that memory. It then tries a small write every
// so often, and takes writes again as soon as one is durable. No
// acknowledged write is lost.
package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tote/session"
	"tote/session/internal/index"
)

// FileName is the name of the log file inside the data directory.
const FileName = "tote.log"

// lockName is the file whose lock keeps a second process out of the data
// directory. The log itself cannot carry the lock: compaction replaces it.
const lockName = "tote.lock"

// lockTimeout is how long Open waits for another holder of the directory.
const lockTimeout = time.Second

// defaultCompactMin is the smallest log worth compacting.
const defaultCompactMin = 64 << 20

// The wait between attempts to write again after a failure: it doubles from
// the first to the last.
const (
	firstRetry = 50 * time.Millisecond
	lastRetry  = 2 * time.Second
)

// Options configure Open.
type Options struct {
	// SweepEvery is how often expired records are dropped from memory;
	// <= 0: one minute.
	SweepEvery time.Duration

	// CompactMin is the log size below which the log is never compacted;
	// <= 0: 64 MiB. Above it, the log is compacted once it is more than
	// twice the size of the live records.
	CompactMin int64

	// Max is the number of records the store holds at most; see
	// memstore.Options.Max. 0: no cap.
	Max int
}

// Store is a session.Store in a log file. Its methods are safe for
// concurrent use.
type Store struct {
	dir, path  string
	lock       *os.File
	opts       Options
	idx        atomic.Pointer[index.Index] // replaced when memory is rebuilt after a failure
	compactMin int64
	cut        int64 // bytes of a torn end cut off by Open

	// The log's tail, filled by writers and drained by the flusher.
	wmu     sync.Mutex
	pending []byte                // records appended but not yet written
	batch   *batch                // what the writers of pending wait for
	failed  atomic.Pointer[error] // set under wmu: why writes are refused (a failure, or errClosed)
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
	failures   atomic.Int64 // writes that failed
	recoveries atomic.Int64 // returns to service after a failure
	// evictedBefore counts the evictions of memories replaced by
	// rebuilds.
	evictedBefore atomic.Int64
	retry         <-chan time.Time // not nil while writes are refused after a failure: the next try
	retryWait     time.Duration
	failedLen     int  // the size of the write that failed last, which the probe matches
	stale         bool // memory may hold changes whose write failed: rebuild it from the log
	epoch         int  // failures so far; a snapshot begun in an earlier epoch is abandoned

	stop      chan struct{}
	done      chan struct{} // closed when the flusher has exited
	swept     chan struct{} // closed when the sweeper has exited
	closeOnce sync.Once
	closeErr  error

	// Set by tests only: testWrite runs on the flusher before every write
	// of the log, which fails with its error; testSnapshot runs before a
	// snapshot copies memory.
	testWrite    atomic.Pointer[func() error]
	testSnapshot atomic.Pointer[func()]
}

// batch is the records that one write and fsync make durable. done is
// closed when they are, or when that failed (err).
type batch struct {
	done chan struct{}
	err  error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// errClosed is what calls on a closed store return.
var errClosed = errors.New("filestore: store is closed")

var _ session.Store = (*Store)(nil)

// Open opens or creates dir/tote.log (creating dir with 0o700 if missing),
// replays it, and starts the flusher and the sweeper. If another process
// holds the directory it fails within about a second with an error that
// says so ("... is in use by another process").
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: create data directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName), filepath.Join(dir, FileName), lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Minute
	}
	s := &Store{
		dir:        dir,
		path:       filepath.Join(dir, FileName),
		lock:       lock,
		opts:       o,
		compactMin: o.CompactMin,
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		swept:      make(chan struct{}),
		batch:      newBatch(),
	}
	if s.compactMin <= 0 {
		s.compactMin = defaultCompactMin
	}
	if err := s.open(); err != nil {
		lock.Close()
		return nil, err
	}
	go s.flusher()
	go s.sweeper(o.SweepEvery)
	return s, nil
}

// newIndex returns an empty index that logs its evictions.
func (s *Store) newIndex() *index.Index {
	return index.New(s.opts.Max, func(key string) {
		rec, _ := encodeRecord(key, 0, 0, nil) // version 0: deleted
		s.wmu.Lock()
		if s.failure() == nil {
			s.pending = append(s.pending, rec...)
		}
		s.wmu.Unlock()
	})
}

// Path returns the log file's path.
func (s *Store) Path() string { return s.path }

// Cut returns how many bytes Open cut off the end of the log: the torn end
// of a write that a crash interrupted, which was never acknowledged. Replay
// stops at the first record that does not check out, so damage in the
// middle of the file would cut more; a cut larger than a few writes is
// worth a look (tote logs it).
func (s *Store) Cut() int64 { return s.cut }

// Get returns a copy of the live record stored under key. It is served from
// memory, also while writes are refused after a failure.
func (s *Store) Get(ctx context.Context, key string) (session.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return session.Record{}, false, err
	}
	if s.failure() == errClosed {
		return session.Record{}, false, errClosed
	}
	e, ok := s.idx.Load().Get(key, time.Now().UnixNano())
	if !ok {
		return session.Record{}, false, nil
	}
	return session.Record{Version: e.Version, Data: bytes.Clone(e.Data)}, true, nil
}

// CompareAndSwap stores w under key if the live version under key is old
// (0: no live record; an expired record counts as none); see session.Store.
//
// It returns once the record is durable in the log. Concurrent calls share
// one write and one fsync. If the write fails, the error says so and the
// change is not kept.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old uint64, w session.Write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case key == "":
		return errors.New("filestore: empty key")
	case len(key) > maxKey:
		return fmt.Errorf("filestore: key of %d bytes, more than %d", len(key), maxKey)
	case len(w.Data) > maxData:
		return fmt.Errorf("filestore: record of %d bytes, more than %d", len(w.Data), maxData)
	case w.Version == 0:
		return errors.New("filestore: version 0")
	}
	if err := s.failure(); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	expires := index.Deadline(now, w.TTL)
	// The record is encoded outside the locks; the entry's data aliases
	// the copy inside it, so the caller may reuse w.Data.
	rec, at := encodeRecord(key, w.Version, logExpires(expires, w.Evictable), w.Data)
	e := index.Entry{Version: w.Version, Expires: expires, Data: rec[at:], Evictable: w.Evictable}
	for {
		x := s.idx.Load()
		var b *batch
		err := x.CompareAndSwap(key, old, e, now, func() (err error) {
			b, err = s.append(x, rec)
			return err
		})
		if err == errRebuilt {
			continue
		}
		if err != nil {
			return err
		}
		return s.wait(b)
	}
}

// Delete removes the record under key if its version is version (0: any);
// see session.Store. It returns once the deletion is durable.
func (s *Store) Delete(ctx context.Context, key string, version uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.failure(); err != nil {
		return err
	}
	rec, _ := encodeRecord(key, 0, 0, nil)
	for {
		x := s.idx.Load()
		var b *batch
		err := x.Delete(key, version, time.Now().UnixNano(), func() (err error) {
			b, err = s.append(x, rec)
			return err
		})
		if err == errRebuilt {
			continue
		}
		if err != nil || b == nil {
			return err
		}
		return s.wait(b)
	}
}

// errRebuilt is what append returns to a writer that changed a memory that
// has since been rebuilt from the log: it tries again on the new one.
var errRebuilt = errors.New("filestore: memory was rebuilt")

// append adds rec to the log's pending tail, unless writes are refused or
// x is no longer the memory in use. The caller holds the lock of the
// record's key in x, so that the log holds the writes of one key in the
// order they were applied.
func (s *Store) append(x *index.Index, rec []byte) (*batch, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.failure(); err != nil {
		return nil, err
	}
	if s.idx.Load() != x {
		return nil, errRebuilt
	}
	s.pending = append(s.pending, rec...)
	return s.batch, nil
}

// wait wakes the flusher and waits until b, the batch that holds what the
// caller appended, is durable.
func (s *Store) wait(b *batch) error {
	select {
	case s.kick <- struct{}{}:
	default: // the flusher is already due to run
	}
	<-b.done
	return b.err
}

// Ping reports whether the store can write.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.failure()
}

// Close writes what is pending, stops the flusher and the sweeper, and
// closes the log. It is safe to call more than once; every call returns the
// first call's result, which is nil unless closing itself failed (a failure
// of an earlier write was reported when it happened). Calls on a closed
// store return an error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.swept
		<-s.done
		var err error
		if cerr := s.f.Close(); cerr != nil {
			err = fmt.Errorf("filestore: close %s: %w", s.path, cerr)
		}
		s.lock.Close()
		s.closeErr = err
	})
	return s.closeErr
}

// Sweep drops every expired record from memory now and returns how many it
// dropped. They leave the file at the next compaction.
func (s *Store) Sweep() int { return s.idx.Load().Sweep(time.Now().UnixNano()) }

// Len returns the number of records in memory: the live ones and the
// expired ones not yet swept.
func (s *Store) Len() int { return s.idx.Load().Len() }

// Evicted returns how many live records were evicted to make room since
// Open.
func (s *Store) Evicted() int64 { return s.evictedBefore.Load() + s.idx.Load().Evicted() }

// live returns the encoded size of every record in memory.
func (s *Store) live() int64 {
	x := s.idx.Load()
	return x.Bytes() + int64(x.Len())*(frameLen+fixedLen)
}

// Compactions returns how many times the log has been compacted since Open.
func (s *Store) Compactions() int { return int(s.compacts.Load()) }

// FailedCompactions returns how many compactions have failed since Open. A
// failed compaction leaves the log as it was.
func (s *Store) FailedCompactions() int { return int(s.compactErr.Load()) }

// Failures returns how many times a write of the log has failed since Open,
// and Recoveries how many times the store took writes again after one.
func (s *Store) Failures() int { return int(s.failures.Load()) }

// Recoveries: see Failures.
func (s *Store) Recoveries() int { return int(s.recoveries.Load()) }

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

// failure returns why writes are refused, or nil.
func (s *Store) failure() error {
	if err := s.failed.Load(); err != nil {
		return *err
	}
	return nil
}

// setFailure sets or (with nil) clears why writes are refused; s.wmu is
// held. A closed store stays closed.
func (s *Store) setFailure(err error) {
	if s.failure() == errClosed {
		return
	}
	if err == nil {
		s.failed.Store(nil)
		return
	}
	s.failed.Store(&err)
}

// legacyKey returns the key of a record that versions before keyed records
// stored under a bare session id.
func legacyKey(key string) string {
	if strings.Contains(key, ":") {
		return key
	}
	return "session:" + key
}
