// Package memstore is an in-process session.Store for tests, development and
// throwaway runs: nothing survives the process. Records are checked for
// expiry on every read and purged by a background sweeper.
package memstore

import (
	"bytes"
	"context"
	"sync"
	"time"

	"tote/session"
	"tote/session/internal/index"
)

// Options configure New. Zero fields take the defaults.
type Options struct {
	// SweepEvery is how often expired records are purged. Default one
	// minute.
	SweepEvery time.Duration
	// Max is the number of records the store holds at most; at the cap,
	// evictable records make room for new ones, the closest to expiry
	// first, and a new record that finds none is refused with
	// session.ErrFull. Default 0: no cap.
	Max int
}

// Store is an in-memory session.Store. The zero value is not usable; call New.
type Store struct {
	idx *index.Index

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ session.Store = (*Store)(nil)

// New returns an empty store and starts its sweeper; Close stops it.
func New(o Options) *Store {
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Minute
	}
	s := &Store{idx: index.New(o.Max, nil), stop: make(chan struct{}), done: make(chan struct{})}
	go s.sweeper(o.SweepEvery)
	return s
}

// Get returns a copy of the live record stored under key.
func (s *Store) Get(ctx context.Context, key string) (session.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return session.Record{}, false, err
	}
	e, ok := s.idx.Get(key, time.Now().UnixNano())
	if !ok {
		return session.Record{}, false, nil
	}
	return session.Record{Version: e.Version, Data: bytes.Clone(e.Data)}, true, nil
}

// CompareAndSwap stores a copy of w under key if the live version under key
// is old (0: no live record); see session.Store.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old uint64, w session.Write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	e := index.Entry{Version: w.Version, Expires: index.Deadline(now, w.TTL), Data: bytes.Clone(w.Data), Evictable: w.Evictable}
	return s.idx.CompareAndSwap(key, old, e, now, nil)
}

// Delete removes the record under key if its version is version (0: any);
// see session.Store.
func (s *Store) Delete(ctx context.Context, key string, version uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.idx.Delete(key, version, time.Now().UnixNano(), nil)
}

// Ping reports whether the store answers, which an in-process store always
// does unless ctx is done.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// Close stops the sweeper. It is safe to call more than once. The records
// stay readable and writable after Close, but expired ones are no longer
// purged.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}

// Sweep removes every expired record now and returns how many it removed.
func (s *Store) Sweep() int { return s.idx.Sweep(time.Now().UnixNano()) }

// Len returns the number of records held: the live ones and the expired ones
// not yet swept.
func (s *Store) Len() int { return s.idx.Len() }

// Evicted returns how many live records were evicted to make room.
func (s *Store) Evicted() int64 { return s.idx.Evicted() }

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
