package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Hasher hashes and checks passwords with bcrypt, a bounded number at a
// time: a flood of logins waits in a short queue, and past it is refused
// (ErrOverloaded) rather than take every core from the pages. Each check
// also rests its slot for as long as it ran (Duty 0.5), so that a flood
// takes at most half of the cores it runs on: with 2 cores, half of one.
//
// The password is hashed with SHA-256 first, in hex, as Django's
// BCryptSHA256PasswordHasher does: bcrypt reads at most 72 bytes, and a
// password may have 128 characters.
type Hasher struct {
	cost    int
	duty    float64       // the share of its time a slot spends hashing
	pause   time.Duration // how long a refusal waits before it is answered
	running chan struct{} // a slot per check running (or resting)
	waiting chan struct{} // a slot per check running or queued
	dummy   []byte        // the hash checked for an unknown username
}

// HasherOptions configure NewHasher. Zero fields take the defaults.
type HasherOptions struct {
	Cost        int // bcrypt's cost; default bcrypt.DefaultCost (10)
	Concurrency int // checks at once; default 1
	Queue       int // checks waiting at most; default 16
	// Duty is the share of a slot's time spent hashing, 0 < Duty <= 1:
	// after a check a slot rests (1/Duty - 1) times as long as the check
	// ran. Default 0.5.
	Duty float64
	// Pause is how long a check refused past the queue waits before it
	// returns ErrOverloaded; default 500ms, negative: none. A client that
	// retries at once then sends a few tries a second per connection, not
	// thousands, each of which costs the server as much as a page view.
	Pause time.Duration
}

// NewHasher returns a Hasher.
func NewHasher(o HasherOptions) *Hasher {
	if o.Cost == 0 {
		o.Cost = bcrypt.DefaultCost
	}
	o.Concurrency = max(o.Concurrency, 1)
	if o.Queue <= 0 {
		o.Queue = 16
	}
	if o.Duty <= 0 || o.Duty > 1 {
		o.Duty = 0.5
	}
	if o.Pause == 0 {
		o.Pause = 500 * time.Millisecond
	}
	h := &Hasher{cost: o.Cost, duty: o.Duty, pause: max(o.Pause, 0), running: make(chan struct{}, o.Concurrency), waiting: make(chan struct{}, o.Concurrency+o.Queue)}
	var random [16]byte
	rand.Read(random[:])
	h.dummy, _ = bcrypt.GenerateFromPassword(prehash(string(random[:])), o.Cost)
	return h
}

// Hash returns the hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) ([]byte, error) {
	leave, err := h.queue(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	var hash []byte
	err = h.run(ctx, func() {
		hash, err = bcrypt.GenerateFromPassword(prehash(password), h.cost)
	})
	if err != nil {
		return nil, fmt.Errorf("account: hashing a password: %w", err)
	}
	return hash, nil
}

// Check reports whether password matches hash. With a nil hash (an unknown
// username) it checks a hash of a random password, so that the answer
// takes as long as for a wrong password.
func (h *Hasher) Check(ctx context.Context, hash []byte, password string) (bool, error) {
	leave, err := h.queue(ctx)
	if err != nil {
		return false, err
	}
	defer leave()
	return h.check(ctx, hash, password)
}

// check is Check for a caller that holds a place in the queue.
func (h *Hasher) check(ctx context.Context, hash []byte, password string) (bool, error) {
	ok := false
	err := h.run(ctx, func() {
		if hash == nil {
			bcrypt.CompareHashAndPassword(h.dummy, prehash(password))
			return
		}
		ok = bcrypt.CompareHashAndPassword(hash, prehash(password)) == nil
	})
	return ok, err
}

// queue takes a place among the checks running or waiting, or refuses
// (ErrOverloaded, after the Pause or when ctx ends) when there is none: a
// caller can be refused before it does any other work. leave gives the
// place back.
func (h *Hasher) queue(ctx context.Context) (leave func(), err error) {
	select {
	case h.waiting <- struct{}{}:
		return func() { <-h.waiting }, nil
	default:
	}
	if h.pause > 0 {
		t := time.NewTimer(h.pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return nil, &Error{Err: ErrOverloaded, Retry: 2 * time.Second,
		Message: "Too many people are logging in right now. Please try again in a moment."}
}

// run waits for a slot, runs hash in it, and lets the slot rest before
// the next check takes it (see Duty).
func (h *Hasher) run(ctx context.Context, hash func()) error {
	select {
	case h.running <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	start := time.Now()
	hash()
	rest := time.Duration(float64(time.Since(start)) * (1/h.duty - 1))
	if rest <= 0 {
		<-h.running
	} else {
		time.AfterFunc(rest, func() { <-h.running })
	}
	return nil
}

func prehash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	return []byte(hex.EncodeToString(sum[:]))
}
