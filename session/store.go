package session

import (
	"context"
	"errors"
	"time"
)

// ErrConflict is returned by Store.CompareAndSwap and Store.Delete when the
// stored version is not the one the caller read, and by Manager.Update when a
// session stayed contended for longer than its retry budget. Nothing was
// stored.
var ErrConflict = errors.New("session: concurrent change")

// ErrFull is returned by Store.CompareAndSwap when a store that holds a
// bounded number of records is full and none of them may be evicted to make
// room for a new one. Nothing was stored.
var ErrFull = errors.New("session: store full")

// Record is one stored value and the version that CompareAndSwap compares.
// Version 0 means "no record".
type Record struct {
	Version uint64
	Data    []byte
}

// Write is what CompareAndSwap stores.
type Write struct {
	Version uint64        // the new version; never 0
	Data    []byte        // the store keeps its own copy
	TTL     time.Duration // the record expires TTL after the write; 0: never
	// Evictable marks a record that a store holding a bounded number of
	// records may drop to make room for a new one, those closest to
	// expiry first (a session that holds nothing but visits). Other
	// records are never evicted.
	Evictable bool
}

// Store keeps versioned records under keys ("session:<id>",
// "account:<name>"). Every implementation honours expiry: a record older
// than the TTL of its last write is never returned and is eventually purged.
//
// The err return values are for system errors only (a store that cannot be
// reached, a disk that fails) and for ErrConflict and ErrFull; a missing,
// expired or undecodable record is (Record{}, false, nil).
type Store interface {
	// Get returns the record stored under key.
	Get(ctx context.Context, key string) (rec Record, found bool, err error)

	// CompareAndSwap stores w under key if and only if the live version
	// under key is old; old == 0 means that no live record may exist.
	// Otherwise it stores nothing and returns ErrConflict.
	CompareAndSwap(ctx context.Context, key string, old uint64, w Write) error

	// Delete removes the record under key if its live version is version,
	// or whatever its version if version is 0, and returns ErrConflict
	// otherwise (also when version is not 0 and there is no live record).
	// Deleting a missing record with version 0 is not an error. Once
	// deleted, a CompareAndSwap against the old version fails: a deleted
	// record is never written back by a writer that read it.
	Delete(ctx context.Context, key string, version uint64) error

	// Ping reports whether the store answers and can write.
	Ping(ctx context.Context) error

	// Close releases the store's resources. It does not delete any data.
	Close() error
}
