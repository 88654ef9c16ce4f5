// Package session keeps per-browser state on the server, as Django's session
// framework does: the browser carries only a random id, and the Data for that
// id lives in a Store (memstore, filestore or redisstore).
//
// It is tote's own layer rather than Fiber's middleware/session because the
// contract needs what that middleware does not give: no lost updates when
// requests of one session run at the same time, on one instance or many
// (Manager.Update serialises them with a striped in-process lock and a
// compare-and-swap on a version, retried a bounded number of times), no store
// write when nothing changed, no cookie for a session that was not stored,
// and a compact encoding instead of gob. The package knows nothing of HTTP.
package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnavailable is what every store failure returned by a Manager matches.
var ErrUnavailable = errors.New("session: store unavailable")

// idBytes is the entropy of a session id: 192 bits from crypto/rand.
const idBytes = 24

// IDLength is the length of a session id: base64url of idBytes, unpadded.
const IDLength = (idBytes*8 + 5) / 6

// NewID returns a fresh random session id.
func NewID() string {
	var b [idBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidID reports whether id has the form of an id NewID makes. Anything else
// is never looked up in a store.
func ValidID(id string) bool {
	if len(id) != IDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Session is a session as loaded or stored.
type Session struct {
	ID      string // "" for a visitor whose session is not stored
	Data    Data
	version uint64
	raw     []byte // the stored encoding, to tell whether a change changed anything
}

// Hooks observe a Manager for metrics. Nil fields are not called.
type Hooks struct {
	StoreOp  func(op string, took time.Duration, err error) // every store call: "get", "cas"
	Conflict func()                                         // an Update gave up with ErrConflict
	Created  func()                                         // a new session was stored
}

// Options configure a Manager. Zero fields take the defaults.
type Options struct {
	// TTL is how long a session lives after its last write. Default 336h.
	TTL time.Duration
	// LockWait bounds how long an Update waits for other Updates of the same
	// session in this process. Default one second.
	LockWait time.Duration
	// Attempts bounds the compare-and-swap tries of one Update, when other
	// processes change the same session at the same time. Default 8.
	Attempts int
	Hooks    Hooks
}

// Manager loads and changes sessions in a Store. It is safe for concurrent use.
type Manager struct {
	store       Store
	ttl         time.Duration
	lockWait    time.Duration
	attempts    int
	hooks       Hooks
	seed        maphash.Seed
	stripes     [1024]chan struct{}
	lastFailure atomic.Int64 // unix nanoseconds of the last store error
	bufs        sync.Pool
}

// NewManager returns a Manager of sessions kept in store.
func NewManager(store Store, o Options) *Manager {
	m := &Manager{store: store, ttl: o.TTL, lockWait: o.LockWait, attempts: o.Attempts, hooks: o.Hooks, seed: maphash.MakeSeed()}
	if m.ttl <= 0 {
		m.ttl = 336 * time.Hour
	}
	if m.lockWait <= 0 {
		m.lockWait = time.Second
	}
	if m.attempts <= 0 {
		m.attempts = 8
	}
	for i := range m.stripes {
		m.stripes[i] = make(chan struct{}, 1)
	}
	m.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	return m
}

// TTL returns the session lifetime.
func (m *Manager) TTL() time.Duration { return m.ttl }

// Ping reports whether the store answers.
func (m *Manager) Ping(ctx context.Context) error { return m.store.Ping(ctx) }

// Load returns the session stored under id. An id that is malformed,
// unknown, expired or whose data is corrupt gives an empty session with ID ""
// (never adopted); only a store failure is an error (ErrUnavailable).
func (m *Manager) Load(ctx context.Context, id string) (Session, error) {
	if !ValidID(id) {
		return Session{}, nil
	}
	start := time.Now()
	rec, found, err := m.store.Get(ctx, id)
	m.observe("get", start, err)
	if err != nil {
		return Session{}, fmt.Errorf("%w: get: %w", ErrUnavailable, err)
	}
	if !found {
		return Session{}, nil
	}
	d, err := Decode(rec.Data)
	if err != nil {
		return Session{}, nil
	}
	return Session{ID: id, Data: d, version: rec.Version, raw: rec.Data}, nil
}

// Update loads the session stored under id, applies fn to its data and
// stores the result, and returns the session as it now is and whether it
// was written.
//
// If fn returns an error, nothing is stored and Update returns that error
// with the session as loaded. If fn changes nothing, nothing is stored. A
// session that was not stored (no id, or an id the store does not know) is
// stored under a fresh id, and only if fn gave it content.
//
// Updates of one session never lose each other's changes: in this process
// they take turns (waiting at most LockWait), and a change made meanwhile by
// another process makes the store refuse the write, after which Update loads
// the new data and runs fn again, up to Attempts times. fn must therefore
// depend only on the data it is given. When the session stays contended,
// Update returns ErrConflict; when the store fails, ErrUnavailable.
func (m *Manager) Update(ctx context.Context, id string, fn func(*Data) error) (Session, bool, error) {
	if ValidID(id) {
		unlock, err := m.lock(ctx, id)
		if err != nil {
			return Session{}, false, err
		}
		defer unlock()
	}
	bp := m.bufs.Get().(*[]byte)
	defer m.bufs.Put(bp)
	var written *Session // the last write that was refused
	created := false     // written is a new session
	for attempt := 0; attempt < m.attempts; attempt++ {
		if attempt > 0 {
			if err := m.backoff(ctx, attempt); err != nil {
				if m.hooks.Conflict != nil {
					m.hooks.Conflict()
				}
				return Session{}, false, err
			}
		}
		s, err := m.Load(ctx, id)
		if err != nil {
			return Session{}, false, err
		}
		if written != nil && s.version == written.version {
			// The store reported a conflict for a write that did land (a
			// reply lost and the command retried): it is ours, done.
			if created && m.hooks.Created != nil {
				m.hooks.Created()
			}
			return *written, true, nil
		}
		d := s.Data
		d.Cart = s.Data.Cart.Clone()
		if err := fn(&d); err != nil {
			return s, false, err
		}
		enc, err := d.Append((*bp)[:0])
		if err != nil {
			return s, false, err
		}
		*bp = enc
		if s.ID == "" && d.IsZero() || s.ID != "" && bytes.Equal(enc, s.raw) {
			s.Data = d
			return s, false, nil
		}
		newID, next := s.ID, newVersion()
		if newID == "" {
			newID = NewID()
		}
		start := time.Now()
		err = m.store.CompareAndSwap(ctx, newID, s.version, next, enc, m.ttl)
		if errors.Is(err, ErrConflict) {
			m.observe("cas", start, nil)
			if s.ID == "" {
				id = newID // a lost reply may have stored it: look there next
			}
			written, created = &Session{ID: newID, Data: d, version: next}, s.ID == ""
			continue
		}
		m.observe("cas", start, err)
		if err != nil {
			return Session{}, false, fmt.Errorf("%w: compare-and-swap: %w", ErrUnavailable, err)
		}
		if s.ID == "" && m.hooks.Created != nil {
			m.hooks.Created()
		}
		return Session{ID: newID, Data: d, version: next}, true, nil
	}
	if m.hooks.Conflict != nil {
		m.hooks.Conflict()
	}
	return Session{}, false, ErrConflict
}

// newVersion returns a random version for a write. Versions are random, not
// counters, so that finding one's own version in the store proves that one's
// own write landed: two writers that read the same version never write the
// same next one.
func newVersion() uint64 {
	for {
		if v := mrand.Uint64(); v != 0 {
			return v
		}
	}
}

// lock takes the in-process turn of id's stripe.
func (m *Manager) lock(ctx context.Context, id string) (func(), error) {
	ch := m.stripes[maphash.String(m.seed, id)%uint64(len(m.stripes))]
	unlock := func() { <-ch }
	select {
	case ch <- struct{}{}:
		return unlock, nil
	default:
	}
	t := time.NewTimer(m.lockWait)
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		return unlock, nil
	case <-t.C:
	case <-ctx.Done():
	}
	// The turn did not come. If the store has been failing, the turns are
	// slow because of it: say so, rather than blame contention.
	if time.Since(time.Unix(0, m.lastFailure.Load())) < 2*time.Second {
		return nil, fmt.Errorf("%w: waited %v behind failing requests of the same session", ErrUnavailable, m.lockWait)
	}
	if m.hooks.Conflict != nil {
		m.hooks.Conflict()
	}
	return nil, ErrConflict
}

// backoff sleeps a random time that grows with the attempt: 0.5 ms, 1 ms, ...
// up to 16 ms, so that writers from several processes spread out.
func (m *Manager) backoff(ctx context.Context, attempt int) error {
	limit := time.Duration(500*(1<<min(attempt-1, 5))) * time.Microsecond
	t := time.NewTimer(limit/2 + mrand.N(limit/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrConflict, ctx.Err())
	}
}

func (m *Manager) observe(op string, start time.Time, err error) {
	if err != nil {
		m.lastFailure.Store(time.Now().UnixNano())
	}
	if m.hooks.StoreOp != nil {
		m.hooks.StoreOp(op, time.Since(start), err)
	}
}
