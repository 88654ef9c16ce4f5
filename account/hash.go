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
// (ErrOverloaded) rather than take every core from the pages.
//
// The password is hashed with SHA-256 first, in hex, as Django's
// BCryptSHA256PasswordHasher does: bcrypt reads at most 72 bytes, and a
// password may have 128 characters.
type Hasher struct {
	cost    int
	running chan struct{} // a slot per check running
	waiting chan struct{} // a slot per check running or queued
	dummy   []byte        // the hash checked for an unknown username
}

// HasherOptions configure NewHasher. Zero fields take the defaults.
type HasherOptions struct {
	Cost        int // bcrypt's cost; default bcrypt.DefaultCost (10)
	Concurrency int // checks at once; default 1
	Queue       int // checks waiting at most; default 16
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
	h := &Hasher{cost: o.Cost, running: make(chan struct{}, o.Concurrency), waiting: make(chan struct{}, o.Concurrency+o.Queue)}
	var random [16]byte
	rand.Read(random[:])
	h.dummy, _ = bcrypt.GenerateFromPassword(prehash(string(random[:])), o.Cost)
	return h
}

// Hash returns the hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) ([]byte, error) {
	release, err := h.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	hash, err := bcrypt.GenerateFromPassword(prehash(password), h.cost)
	if err != nil {
		return nil, fmt.Errorf("account: hashing a password: %w", err)
	}
	return hash, nil
}

// Check reports whether password matches hash. With a nil hash (an unknown
// username) it checks a hash of a random password, so that the answer
// takes as long as for a wrong password.
func (h *Hasher) Check(ctx context.Context, hash []byte, password string) (bool, error) {
	release, err := h.enter(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	if hash == nil {
		bcrypt.CompareHashAndPassword(h.dummy, prehash(password))
		return false, nil
	}
	return bcrypt.CompareHashAndPassword(hash, prehash(password)) == nil, nil
}

// enter waits for a turn to hash, or refuses at once when the queue is
// full.
func (h *Hasher) enter(ctx context.Context) (release func(), err error) {
	select {
	case h.waiting <- struct{}{}:
	default:
		return nil, &Error{Err: ErrOverloaded, Retry: 2 * time.Second,
			Message: "Too many people are logging in right now. Please try again in a moment."}
	}
	select {
	case h.running <- struct{}{}:
		return func() { <-h.running; <-h.waiting }, nil
	case <-ctx.Done():
		<-h.waiting
		return nil, ctx.Err()
	}
}

func prehash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	return []byte(hex.EncodeToString(sum[:]))
}
