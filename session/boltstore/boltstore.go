// Package boltstore is the default session.Store: embedded, persistent, one
// file (tote.db) in a data directory, built directly on go.etcd.io/bbolt.
//
// It exists because gofiber/storage/bbolt ignores expiry, while a
// session.Store must never return a record past its ttl and must eventually
// purge it. Each record is kept in one bucket as
//
//	8-byte big-endian expiry (unix nanoseconds, 0: never)
//	8-byte big-endian version
//	data
//
// Reads are read-only transactions that check the expiry themselves, writes
// are group-committed so that concurrent requests share one transaction and
// one fsync, and a background sweeper deletes expired records. Writes keep
// bbolt's durability: an acknowledged write survives a crash of the process.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"tote/session"
)

// FileName is the name of the database file inside the data directory.
const FileName = "tote.db"

// lockTimeout is how long Open waits for another holder of the file to let go.
const lockTimeout = time.Second

// maxBatch bounds the writes committed in one transaction.
const maxBatch = 1000

// headerLen is the length of the expiry and version that prefix every value.
const headerLen = 16

// sweepScan is how many keys Sweep examines per transaction, so that a large
// bucket never holds the write lock for long.
const sweepScan = 1000

var bucketName = []byte("sessions")

// Options configure Open.
type Options struct {
	// SweepEvery is how often expired sessions are purged; <= 0: one minute.
	SweepEvery time.Duration
}

// Store is a session.Store in a bbolt file. Its methods are safe for
// concurrent use.
type Store struct {
	db   *bolt.DB
	path string

	// The group commit: writes queue here while a transaction commits, and
	// the next transaction takes them all (see write).
	qmu        sync.Mutex
	queue      []*pendingWrite
	committing bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ session.Store = (*Store)(nil)

// Open opens or creates dir/tote.db (creating dir with 0o700 if missing) and
// starts the sweeper. If another process holds the database it fails within
// about a second with an error that says so ("... is in use by another
// process").
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: %s is in use by another process (no lock within %v)", path, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: create bucket in %s: %w", path, err)
	}
	every := o.SweepEvery
	if every <= 0 {
		every = time.Minute
	}
	s := &Store{
		db:   db,
		path: path,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.sweeper(every)
	return s, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Get returns the live record stored under id. An expired or undecodable
// record is not found, even if the sweeper has not purged it yet.
func (s *Store) Get(ctx context.Context, id string) (session.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return session.Record{}, false, err
	}
	var rec session.Record
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		h, ok := decode(tx.Bucket(bucketName).Get([]byte(id)))
		if !ok || h.expired(time.Now().UnixNano()) {
			return nil
		}
		// bbolt's memory is only valid inside the transaction.
		rec = session.Record{Version: h.version, Data: bytes.Clone(h.data)}
		found = true
		return nil
	})
	if err != nil {
		return session.Record{}, false, fmt.Errorf("boltstore: get: %w", err)
	}
	return rec, found, nil
}

// CompareAndSwap stores data under id with version next, to expire after
// ttl, if the live version under id is old (0: no live record; an expired or
// undecodable record counts as none). A ttl <= 0 means the record never
// expires. Otherwise it returns session.ErrConflict and stores nothing.
//
// Concurrent calls are coalesced into one transaction and one fsync (a
// group commit, see write); the call returns once the write is durable.
func (s *Store) CompareAndSwap(ctx context.Context, id string, old, next uint64, data []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == "" {
		return errors.New("boltstore: empty session id")
	}
	if next == 0 {
		return errors.New("boltstore: next version is 0")
	}
	// The value is built once, outside the transaction: it copies the
	// caller's data, and bbolt keeps a reference until the commit.
	w := &pendingWrite{
		key: []byte(id), old: old,
		val:  encode(deadline(time.Now().UnixNano(), ttl), next, data),
		done: make(chan bool, 1),
	}
	if err := s.write(w); err != nil {
		return fmt.Errorf("boltstore: compare-and-swap: %w", err)
	}
	if w.conflict {
		return session.ErrConflict
	}
	return nil
}

// pendingWrite is one CompareAndSwap waiting for its transaction.
type pendingWrite struct {
	key, val []byte
	old      uint64
	done     chan bool // true: the write was committed (see err); false: lead the next commit

	conflict bool  // the stored version was not old; nothing was written
	err      error // the transaction failed; nothing was written
}

// write commits w together with every write that queued while the previous
// transaction committed: a group commit, with one fsync for the group and
// no waiting for company (bbolt's Batch waits MaxBatchDelay for more
// writers before it commits, which is a delay on every lone write).
//
// The first writer to find no commit running leads: it takes the queue,
// commits it in one transaction, reports each write's outcome, and hands
// the lead to the first writer that queued meanwhile, so that no writer
// commits for others for longer than its own transaction.
func (s *Store) write(w *pendingWrite) error {
	s.qmu.Lock()
	s.queue = append(s.queue, w)
	if s.committing {
		s.qmu.Unlock()
		if <-w.done {
			return w.err
		}
		s.qmu.Lock() // led to commit the queue, w in it
	}
	s.committing = true
	n := min(len(s.queue), maxBatch)
	batch := s.queue[:n:n]
	s.queue = append([]*pendingWrite(nil), s.queue[n:]...)
	s.qmu.Unlock()

	s.commit(batch)
	for _, o := range batch {
		if o != w {
			o.done <- true
		}
	}

	s.qmu.Lock()
	if len(s.queue) > 0 {
		s.queue[0].done <- false // lead the next transaction
	} else {
		s.committing = false
	}
	s.qmu.Unlock()
	return w.err
}

// commit runs one transaction for batch and records each write's outcome.
// Writes to the same key in one batch apply in order, each seeing the one
// before.
func (s *Store) commit(batch []*pendingWrite) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		now := time.Now().UnixNano()
		for _, w := range batch {
			var cur uint64
			if h, ok := decode(b.Get(w.key)); ok && !h.expired(now) {
				cur = h.version
			}
			w.conflict = cur != w.old
			if w.conflict {
				continue
			}
			if err := b.Put(w.key, w.val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Nothing of the transaction was stored.
		for _, w := range batch {
			w.conflict, w.err = false, err
		}
	}
}

// Ping reports whether the database is open and readable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketName) == nil {
			return errors.New("bucket missing")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: ping %s: %w", s.path, err)
	}
	return nil
}

// Close stops the sweeper, then closes the database, waiting for running
// transactions. It is safe to call more than once; every call returns the
// first call's result. Calls on a closed store return an error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("boltstore: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// Sweep deletes every expired record now, and every undecodable one, and
// returns how many it deleted. It scans in read-only transactions and
// deletes in short write transactions of at most a few thousand keys, so
// that writers are not held up for long; a record rewritten in between is
// left alone.
func (s *Store) Sweep() (int, error) {
	deleted := 0
	var after []byte // the last key examined; nil: start at the first
	for {
		var dead [][]byte
		var last []byte
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketName).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			now := time.Now().UnixNano()
			for n := 0; k != nil && n < sweepScan; k, v = c.Next() {
				n++
				last = k
				if v != nil && isDead(v, now) { // v == nil: a nested bucket, not ours
					dead = append(dead, bytes.Clone(k))
				}
			}
			last = bytes.Clone(last)
			return nil
		})
		if err != nil {
			return deleted, fmt.Errorf("boltstore: sweep: %w", err)
		}
		if len(dead) > 0 {
			var n int
			err := s.db.Update(func(tx *bolt.Tx) error {
				n = 0
				b := tx.Bucket(bucketName)
				now := time.Now().UnixNano()
				for _, k := range dead {
					// Re-check: the record may have been deleted or rewritten
					// since the scan.
					if v := b.Get(k); v == nil || !isDead(v, now) {
						continue
					}
					if err := b.Delete(k); err != nil {
						return err
					}
					n++
				}
				return nil
			})
			if err != nil {
				return deleted, fmt.Errorf("boltstore: sweep: %w", err)
			}
			deleted += n
		}
		if last == nil {
			return deleted, nil // reached the end of the bucket
		}
		after = last
	}
}

// sweeper runs Sweep every interval until Close. A failed sweep is retried
// at the next tick; there is nobody to report it to.
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

// header is a decoded value. data aliases the value.
type header struct {
	expires int64 // unix nanoseconds; 0: never
	version uint64
	data    []byte
}

func (h header) expired(now int64) bool {
	return h.expires != 0 && h.expires <= now
}

// decode splits a stored value. It reports false for a missing or corrupt
// value: one shorter than the header, or with version 0 ("no record").
func decode(v []byte) (header, bool) {
	if len(v) < headerLen {
		return header{}, false
	}
	h := header{
		expires: int64(binary.BigEndian.Uint64(v[0:8])),
		version: binary.BigEndian.Uint64(v[8:16]),
		data:    v[headerLen:],
	}
	if h.version == 0 {
		return header{}, false
	}
	return h, true
}

// isDead reports whether a stored value may be purged: expired or corrupt.
func isDead(v []byte, now int64) bool {
	h, ok := decode(v)
	return !ok || h.expired(now)
}

func encode(expires int64, version uint64, data []byte) []byte {
	v := make([]byte, headerLen+len(data))
	binary.BigEndian.PutUint64(v[0:8], uint64(expires))
	binary.BigEndian.PutUint64(v[8:16], version)
	copy(v[headerLen:], data)
	return v
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
