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
// a deleted session that no request in flight writes back, and a compact
// encoding instead of gob. The package knows nothing of HTTP.
package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
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

// Key returns the store key of session id.
func Key(id string) string { return "session:" + id }

// Session is a session as loaded or stored.
type Session struct {
	ID      string // "" for a visitor whose session is not stored
	Data    Data
	version uint64
	raw     []byte // the stored encoding, to tell whether a change changed anything
}

// Hooks observe a Manager for metrics. Nil fields are not called.
type Hooks struct {
	StoreOp  func(op string, took time.Duration, err error) // every store call: "get", "cas", "delete"
	Conflict func()                                         // an Update gave up with ErrConflict
	Created  func()                                         // a new session was stored
}

// Options configure a Manager. Zero fields take the defaults.
type Options struct {
	// TTL is how long a session lives after its last write. Default 336h.
	TTL time.Duration
	// BareTTL is how long a session that holds nothing but visits (see
	// Data.Bare) lives after its last write, if shorter than TTL. Such a
	// session is also stored as evictable. Default 24h.
	BareTTL time.Duration
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
	bareTTL     time.Duration
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
	m := &Manager{store: store, ttl: o.TTL, bareTTL: o.BareTTL, lockWait: o.LockWait, attempts: o.Attempts, hooks: o.Hooks, seed: maphash.MakeSeed()}
	if m.ttl <= 0 {
		m.ttl = 336 * time.Hour
	}
	if m.bareTTL <= 0 {
		m.bareTTL = 24 * time.Hour
	}
	m.bareTTL = min(m.bareTTL, m.ttl)
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

// Store returns the store the sessions are kept in.
func (m *Manager) Store() Store { return m.store }

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
	rec, found, err := m.store.Get(ctx, Key(id))
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
// stored under a fresh id, and only if fn gave it content and admit, if
// given, allows it: if admit refuses, Update returns its error with the
// session as fn left it, not stored. So does a store that is full
// (ErrFull).
//
// Updates of one session never lose each other's changes: in this process
// they take turns (waiting at most LockWait), and a change made meanwhile by
// another process makes the store refuse the write, after which Update loads
// the new data and runs fn again, up to Attempts times. fn must therefore
// depend only on the data it is given and on what it reads anew. When the
// session stays contended, or is deleted meanwhile (a logout), Update
// returns ErrConflict; when the store fails, ErrUnavailable.
func (m *Manager) Update(ctx context.Context, id string, fn func(*Data) error, admit ...func() error) (Session, bool, error) {
	var a func() error
	if len(admit) > 0 {
		a = admit[0]
	}
	return m.update(ctx, id, nil, fn, a)
}

// UpdateFrom is Update for a session already loaded: its first attempt
// starts from from instead of reading the session again (from.ID must be
// stored). A session changed meanwhile is read again, as by Update.
func (m *Manager) UpdateFrom(ctx context.Context, from Session, fn func(*Data) error) (Session, bool, error) {
	if from.ID == "" {
		return from, false, errors.New("session: UpdateFrom a session that is not stored")
	}
	return m.update(ctx, from.ID, &from, fn, nil)
}

func (m *Manager) update(ctx context.Context, id string, from *Session, fn func(*Data) error, admit func() error) (Session, bool, error) {
	bp := m.bufs.Get().(*[]byte)
	defer m.bufs.Put(bp)
	var out Session
	saved := false
	var written *Session // the last write that was refused
	known := false       // the session was found at the first load
	first := true
	var err error
	err = m.Do(ctx, lockKey(id), func() error {
		var s Session
		if from != nil {
			s, from = *from, nil
		} else if s, err = m.Load(ctx, id); err != nil {
			return err
		}
		if first {
			known, first = s.ID != "", false
		} else if known && s.ID == "" {
			return stop{fmt.Errorf("%w: the session ended meanwhile", ErrConflict)}
		}
		if written != nil && s.version == written.version {
			// The store reported a conflict for a write that did land (a
			// reply lost and the command retried): it is ours, done.
			out, saved = *written, true
			if !known {
				m.created()
			}
			return nil
		}
		d := s.Data
		d.Cart = s.Data.Cart.Clone()
		if err := fn(&d); err != nil {
			out = s
			return stop{err}
		}
		chosen := !d.Expires.Equal(s.Data.Expires) // see write
		enc, err := d.Append((*bp)[:0])
		if err != nil {
			out = s
			return stop{err}
		}
		*bp = enc
		if s.ID == "" && d.IsZero() || s.ID != "" && bytes.Equal(enc, s.raw) {
			s.Data = d
			out = s
			return nil
		}
		if s.ID == "" && admit != nil {
			if err := admit(); err != nil {
				s.Data = d
				out = s
				return stop{err}
			}
		}
		newID, next := s.ID, NewVersion()
		if newID == "" {
			newID = NewID()
		}
		w := m.write(&d, enc, next, chosen)
		start := time.Now()
		err = m.store.CompareAndSwap(ctx, Key(newID), s.version, w)
		m.observe("cas", start, ignoreConflict(err))
		switch {
		case errors.Is(err, ErrConflict):
			if s.ID == "" {
				id = newID // a lost reply may have stored it: look there next
			}
			written = &Session{ID: newID, Data: d, version: next}
			return err
		case errors.Is(err, ErrFull):
			s.Data = d
			out = s
			return stop{err}
		case err != nil:
			return fmt.Errorf("%w: compare-and-swap: %w", ErrUnavailable, err)
		}
		if s.ID == "" {
			m.created()
		}
		out, saved = Session{ID: newID, Data: d, version: next, raw: w.Data}, true
		return nil
	})
	if err != nil {
		return out, false, err
	}
	return out, saved, nil
}

// stop carries an error that ends Do's attempts at once and is returned as
// it is.
type stop struct{ err error }

func (s stop) Error() string { return s.err.Error() }

// write returns what storing d, encoded as enc, at version next writes:
// the lifetime d gets (see Lifetime), and d.Expires and enc set to the
// expiry. If fn chose d.Expires (to put it in an answer it keeps, say; see
// Lifetime), that is the expiry.
func (m *Manager) write(d *Data, enc []byte, next uint64, chosen bool) Write {
	ttl := m.Lifetime(d)
	if chosen {
		ttl = max(time.Until(d.Expires), time.Millisecond)
	} else {
		d.Expires = time.Now().Add(ttl)
	}
	binary.BigEndian.PutUint64(enc[expiresAt:headerLength], uint64(d.Expires.UnixNano()))
	return Write{Version: next, Data: enc, TTL: ttl, Evictable: d.Bare()}
}

// Lifetime returns how long a session holding d lives after it is stored:
// TTL, or BareTTL for a session that holds nothing but visits. A change
// that needs to know the expiry its session will get may set d.Expires to
// now plus Lifetime(d); Update then stores the session with that expiry.
func (m *Manager) Lifetime(d *Data) time.Duration {
	if d.Bare() {
		return m.bareTTL
	}
	return m.ttl
}

// Create stores a new session holding d under a fresh id. d.Expires, if
// set, is its expiry (see Lifetime).
func (m *Manager) Create(ctx context.Context, d Data) (Session, error) {
	enc, err := d.Append(nil)
	if err != nil {
		return Session{}, err
	}
	id, next := NewID(), NewVersion()
	w := m.write(&d, enc, next, !d.Expires.IsZero())
	start := time.Now()
	err = m.store.CompareAndSwap(ctx, Key(id), 0, w)
	m.observe("cas", start, err)
	switch {
	case errors.Is(err, ErrFull):
		return Session{}, err
	case err != nil:
		return Session{}, fmt.Errorf("%w: create: %w", ErrUnavailable, err)
	}
	m.created()
	return Session{ID: id, Data: d, version: next, raw: w.Data}, nil
}

// Delete deletes the session stored under id, whatever its version: a
// logout. A request of that session still in flight cannot write it back
// (its compare-and-swap fails; see Update).
func (m *Manager) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return nil
	}
	return m.delete(ctx, id, 0)
}

func (m *Manager) delete(ctx context.Context, id string, version uint64) error {
	start := time.Now()
	err := m.store.Delete(ctx, Key(id), version)
	m.observe("delete", start, ignoreConflict(err))
	if err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w: delete: %w", ErrUnavailable, err)
	}
	return err
}

// Rotate ends the session stored under id and stores what fn makes of its
// data under a fresh id: a login, which must give the browser a new id. The
// old session is deleted first, if it has not changed since it was read
// (else Rotate reads it again), so that no request still in flight can
// change it once fn has read it; fn then runs (and may move what the old
// session held elsewhere, such as its cart into an account), and the new
// session is created. If fn fails, the old session is put back as it was
// and fn's error returned. With no stored session under id, fn gets empty
// data.
func (m *Manager) Rotate(ctx context.Context, id string, fn func(*Data) error) (Session, error) {
	var old Session
	err := m.Do(ctx, lockKey(id), func() error {
		s, err := m.Load(ctx, id)
		if err != nil {
			return err
		}
		if s.ID != "" {
			if err := m.delete(ctx, s.ID, s.version); err != nil {
				return err
			}
		}
		old = s
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	d := old.Data
	d.Cart = old.Data.Cart.Clone()
	d.Expires = time.Time{}
	if err := fn(&d); err != nil {
		if old.ID != "" {
			// Best effort: a failure here leaves the visitor logged out
			// of a session that fn did not get to change.
			m.store.CompareAndSwap(ctx, Key(old.ID), 0, Write{Version: old.version, Data: old.raw, TTL: m.ttl, Evictable: old.Data.Bare()})
		}
		return Session{}, err
	}
	return m.Create(ctx, d)
}

// lockKey returns the key whose turn the requests of session id take: none
// ("") for a visitor with no valid id, whose request creates a session of
// its own.
func lockKey(id string) string {
	if !ValidID(id) {
		return ""
	}
	return Key(id)
}

// Do runs attempt, a read-modify-write of the record under key, until it
// returns anything but ErrConflict, up to Attempts times with a jittered
// backoff between tries. Calls of one key in this process take turns
// (waiting at most LockWait), so that they do not make each other retry;
// key "" takes no turn. An error wrapped by Stop ends the tries at once.
// When the tries run out Do returns ErrConflict.
func (m *Manager) Do(ctx context.Context, key string, attempt func() error) error {
	if key != "" {
		unlock, err := m.lock(ctx, key)
		if err != nil {
			return err
		}
		defer unlock()
	}
	for i := 0; i < m.attempts; i++ {
		if i > 0 {
			if err := m.backoff(ctx, i); err != nil {
				m.conflict()
				return err
			}
		}
		err := attempt()
		var st stop
		if errors.As(err, &st) {
			return st.err
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	m.conflict()
	return ErrConflict
}

// Stop wraps err so that Do returns it, unwrapped, at once, without another
// attempt.
func Stop(err error) error { return stop{err} }

// NewVersion returns a random version for a write. Versions are random, not
// counters, so that finding one's own version in the store proves that one's
// own write landed: two writers that read the same version never write the
// same next one.
func NewVersion() uint64 {
	for {
		if v := mrand.Uint64(); v != 0 {
			return v
		}
	}
}

// lock takes the in-process turn of key's stripe.
func (m *Manager) lock(ctx context.Context, key string) (func(), error) {
	ch := m.stripes[maphash.String(m.seed, key)%uint64(len(m.stripes))]
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
	m.conflict()
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

func (m *Manager) conflict() {
	if m.hooks.Conflict != nil {
		m.hooks.Conflict()
	}
}

func (m *Manager) created() {
	if m.hooks.Created != nil {
		m.hooks.Created()
	}
}

// ignoreConflict returns err unless it is ErrConflict or ErrFull, which are
// answers of a store that works.
func ignoreConflict(err error) error {
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrFull) {
		return nil
	}
	return err
}
