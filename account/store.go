package account

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	json "github.com/go-json-experiment/json"

	"tote/cart"
	"tote/session"
)

// Throttling of guesses: after MaxFailures failed logins for one username
// within FailureWindow, logins for it are refused until the window passes.
const (
	MaxFailures   = 10
	FailureWindow = 15 * time.Minute
)

// Store keeps accounts in a session.Store, each one record under Key(name)
// that never expires, changed with the same compare-and-swap as a session
// (so two sessions of one account adding to its cart at once, on two
// instances, both count). Failed logins are counted per username in records
// that expire with their window, so that every instance sees them.
type Store struct {
	sessions *session.Manager
	store    session.Store
	hasher   *Hasher
	now      func() time.Time
}

// NewStore returns the accounts kept in the store of sessions, with
// passwords checked by hasher.
func NewStore(sessions *session.Manager, hasher *Hasher) *Store {
	return &Store{sessions: sessions, store: sessions.Store(), hasher: hasher, now: time.Now}
}

// record is an account as stored: JSON, read and written with
// go-json-experiment/json (encoding/json/v2 to be), which decodes it in
// less than half of encoding/json's time: an account is read on every
// request of a logged-in visitor.
type record struct {
	Username   string          `json:"username"`
	Hash       []byte          `json:"hash"`
	Created    time.Time       `json:"created"`
	Generation uint64          `json:"generation"`
	Cart       []cart.Line     `json:"cart,omitempty"`
	Replays    session.Replays `json:"replays,omitempty"`
}

func encode(a *Account) ([]byte, error) {
	return json.Marshal(record{a.Username, a.Hash, a.Created.UTC(), a.Generation, a.Cart.Lines(), a.Replays})
}

func decode(rec session.Record) (Account, error) {
	var r record
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return Account{}, fmt.Errorf("account: stored record: %w", err)
	}
	c, err := cart.FromLines(r.Cart)
	if err != nil {
		return Account{}, fmt.Errorf("account %s: stored cart: %w", r.Username, err)
	}
	return Account{Username: r.Username, Hash: r.Hash, Created: r.Created, Generation: r.Generation,
		Cart: c, Replays: r.Replays, version: rec.Version, raw: rec.Data}, nil
}

// unavailable wraps a failure of the store as the session package does.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: account %s: %w", session.ErrUnavailable, op, err)
}

// Get returns the account username (normalized), if there is one.
func (s *Store) Get(ctx context.Context, username string) (Account, bool, error) {
	rec, found, err := s.store.Get(ctx, Key(username))
	if err != nil {
		return Account{}, false, unavailable("get", err)
	}
	if !found {
		return Account{}, false, nil
	}
	a, err := decode(rec)
	if err != nil {
		return Account{}, false, unavailable("get", err)
	}
	return a, true, nil
}

// SignUp creates the account username with password, after checking the
// rules: the username (ErrInvalidUsername), the password (ErrWeakPassword),
// and that no account has the name (ErrUsernameTaken; two sign-ups racing
// for one name, on any instances, make one account).
func (s *Store) SignUp(ctx context.Context, username, password string) (Account, error) {
	name, err := NormalizeUsername(username)
	if err != nil {
		return Account{}, err
	}
	if err := CheckPassword(name, password); err != nil {
		return Account{}, err
	}
	taken := &Error{Err: ErrUsernameTaken, Field: "username", Message: "That username is taken. Choose another, or log in."}
	if _, found, err := s.Get(ctx, name); err != nil {
		return Account{}, err
	} else if found {
		return Account{}, taken
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return Account{}, err
	}
	a := Account{Username: name, Hash: hash, Created: s.now().Truncate(time.Second), Generation: session.NewVersion()}
	enc, err := encode(&a)
	if err != nil {
		return Account{}, err
	}
	a.version, a.raw = session.NewVersion(), enc
	err = s.store.CompareAndSwap(ctx, Key(name), 0, session.Write{Version: a.version, Data: enc})
	switch {
	case errors.Is(err, session.ErrConflict):
		return Account{}, taken
	case err != nil:
		return Account{}, unavailable("create", err)
	}
	return a, nil
}

// Update applies fn to the account a, as it was read, and stores the
// result, with no lost update: like session.Manager.Update it reads the
// account again and reapplies fn when another request changed it
// meanwhile. It returns ErrNotFound when the account is gone, and fn's
// error unchanged.
func (s *Store) Update(ctx context.Context, a Account, fn func(*Account) error) (Account, error) {
	var out Account
	var written uint64 // the version of a write reported as a conflict
	var wrote Account
	from := &a
	key := Key(a.Username)
	err := s.sessions.Do(ctx, key, func() error {
		var cur Account
		if from != nil {
			cur, from = *from, nil
		} else {
			rec, found, err := s.store.Get(ctx, key)
			if err != nil {
				return unavailable("get", err)
			}
			if !found {
				return session.Stop(ErrNotFound)
			}
			if written != 0 && rec.Version == written {
				out = wrote // a lost reply: the write was ours
				return nil
			}
			if cur, err = decode(rec); err != nil {
				return unavailable("get", err)
			}
		}
		cur.Cart = cur.Cart.Clone()
		if err := fn(&cur); err != nil {
			return session.Stop(err)
		}
		enc, err := encode(&cur)
		if err != nil {
			return session.Stop(err)
		}
		if cur.raw != nil && bytes.Equal(enc, cur.raw) {
			out = cur
			return nil
		}
		next := session.NewVersion()
		err = s.store.CompareAndSwap(ctx, key, cur.version, session.Write{Version: next, Data: enc})
		switch {
		case errors.Is(err, session.ErrConflict):
			cur.version = next
			written, wrote = next, cur
			return err
		case err != nil:
			return unavailable("compare-and-swap", err)
		}
		cur.version, cur.raw = next, enc
		out = cur
		return nil
	})
	return out, err
}

// Delete deletes the account a as it was read: if it changed meanwhile
// (its password, say), Delete returns session.ErrConflict.
func (s *Store) Delete(ctx context.Context, a Account) error {
	err := s.store.Delete(ctx, Key(a.Username), a.version)
	if err != nil && !errors.Is(err, session.ErrConflict) {
		return unavailable("delete", err)
	}
	return err
}

// failures is the record of failed logins for a username.
type failures struct {
	Count int       `json:"count"`
	Since time.Time `json:"since"` // the first failure of the window
}

func failuresKey(username string) string { return "login-failures:" + username }

// Authenticate returns the account username if password is its password.
// An unknown username and a wrong password get the same
// ErrInvalidCredentials, after about the same time (the same hashing), and
// both count as a failed login for the username; after MaxFailures within
// FailureWindow, Authenticate refuses with ErrTooManyAttempts until the
// window passes, whatever the password. Past the hashing queue it refuses
// with ErrOverloaded.
func (s *Store) Authenticate(ctx context.Context, username, password string) (Account, error) {
	// A place among the password checks first: past the queue the login
	// is refused before it costs the store anything.
	leave, err := s.hasher.queue(ctx)
	if err != nil {
		return Account{}, err
	}
	defer leave()
	name, nameErr := NormalizeUsername(username)
	if nameErr != nil {
		name = ""
	}
	if name != "" {
		if err := s.throttled(ctx, name); err != nil {
			return Account{}, err
		}
	}
	var a Account
	found := false
	if name != "" {
		var err error
		if a, found, err = s.Get(ctx, name); err != nil {
			return Account{}, err
		}
	}
	var hash []byte
	if found {
		hash = a.Hash
	}
	ok, err := s.hasher.check(ctx, hash, password)
	if err != nil {
		return Account{}, err
	}
	if !found || !ok {
		if name != "" {
			if err := s.fail(ctx, name); err != nil {
				return Account{}, err
			}
		}
		return Account{}, errInvalidCredentials
	}
	return a, nil
}

var errInvalidCredentials = &Error{Err: ErrInvalidCredentials, Message: "That username and password do not match an account."}

// Verify checks the password of the logged-in account a (for a password
// change or a deletion), throttled and counted as a login is.
func (s *Store) Verify(ctx context.Context, a Account, password string) error {
	if err := s.throttled(ctx, a.Username); err != nil {
		return err
	}
	ok, err := s.hasher.Check(ctx, a.Hash, password)
	if err != nil {
		return err
	}
	if !ok {
		if err := s.fail(ctx, a.Username); err != nil {
			return err
		}
		return &Error{Err: ErrInvalidCredentials, Field: "password", Message: "That is not your password."}
	}
	return nil
}

// Hash returns the hash of a new password, in turn with the other checks.
func (s *Store) Hash(ctx context.Context, password string) ([]byte, error) {
	return s.hasher.Hash(ctx, password)
}

// throttled returns ErrTooManyAttempts if username has had MaxFailures
// failed logins in the current window.
func (s *Store) throttled(ctx context.Context, username string) error {
	rec, found, err := s.store.Get(ctx, failuresKey(username))
	if err != nil {
		return unavailable("get", err)
	}
	var f failures
	if !found || json.Unmarshal(rec.Data, &f) != nil {
		return nil
	}
	left := f.Since.Add(FailureWindow).Sub(s.now())
	if f.Count < MaxFailures || left <= 0 {
		return nil
	}
	return &Error{Err: ErrTooManyAttempts, Retry: left, Message: fmt.Sprintf(
		"Too many failed logins for this username. Try again in %d minutes.", int(left.Minutes())+1)}
}

// fail counts a failed login for username.
func (s *Store) fail(ctx context.Context, username string) error {
	key := failuresKey(username)
	return s.sessions.Do(ctx, key, func() error {
		rec, found, err := s.store.Get(ctx, key)
		if err != nil {
			return unavailable("get", err)
		}
		now := s.now()
		var f failures
		if !found || json.Unmarshal(rec.Data, &f) != nil || now.Sub(f.Since) >= FailureWindow {
			f = failures{Since: now}
		}
		f.Count++
		enc, _ := json.Marshal(f)
		ttl := f.Since.Add(FailureWindow).Sub(now)
		err = s.store.CompareAndSwap(ctx, key, rec.Version, session.Write{Version: session.NewVersion(), Data: enc, TTL: max(ttl, time.Millisecond)})
		if err != nil && !errors.Is(err, session.ErrConflict) {
			return unavailable("compare-and-swap", err)
		}
		return err
	})
}
