package session

import (
	"context"
	"errors"
	"time"
)

// ErrConflict is returned by Store.CompareAndSwap when the stored version is
// not the one the caller read, and by Manager.Update when a session stayed
// contended for longer than its retry budget. Nothing was stored.
var ErrConflict = errors.New("session: concurrent change")

// Record is one stored session: an opaque payload and the version that
// CompareAndSwap compares. Version 0 means "no record".
type Record struct {
	Version uint64
	Data    []byte
}

// Store keeps session records under their ids. Every implementation honours
// expiry: a record older than the ttl of its last write is never returned and
// is eventually purged.
//
// The err return values are for system errors only (a store that cannot be
// reached, a disk that fails); a missing, expired or undecodable record is
// (Record{}, false, nil).
type Store interface {
	// Get returns the record stored under id.
	Get(ctx context.Context, id string) (rec Record, found bool, err error)

	// CompareAndSwap stores data under id with version next, to expire after
	// ttl, if and only if the stored version is old. old == 0 means that no
	// live record may exist under id. Otherwise it stores nothing and returns
	// ErrConflict. next is never 0.
	CompareAndSwap(ctx context.Context, id string, old, next uint64, data []byte, ttl time.Duration) error

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error

	// Close releases the store's resources. It does not delete any data.
	Close() error
}
