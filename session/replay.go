package session

import (
	"crypto/sha256"
	"time"
)

// Bounds of the answers kept for requests made with an Idempotency-Key, per
// session or account: the newest MaxReplays within ReplayWindow, and at most
// maxReplayBytes of answer bodies in all.
const (
	MaxReplays     = 10
	ReplayWindow   = 24 * time.Hour
	maxReplayBytes = 32 << 10
)

// Replay is the answer to a request made with an Idempotency-Key, kept with
// the session or account the request changed so that a repeat of the
// request gets the same answer instead of a second change.
type Replay struct {
	Key     [16]byte  // a hash of the Idempotency-Key
	Request [16]byte  // a hash of the request: method, path and body
	At      time.Time // when the request was answered (whole seconds)
	Status  int
	Body    []byte
}

// Hash returns the 16-byte hash that Replay keeps of a key or a request.
func Hash(parts ...string) [16]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// Replays are the answers kept, oldest first.
type Replays []Replay

// Find returns the answer kept for key within ReplayWindow of now.
func (rs Replays) Find(key [16]byte, now time.Time) (Replay, bool) {
	for _, r := range rs {
		if r.Key == key && now.Sub(r.At) < ReplayWindow {
			return r, true
		}
	}
	return Replay{}, false
}

// Add returns rs with r added, without the answers older than ReplayWindow
// or kept for the same key, and without the oldest ones past the bounds.
func (rs Replays) Add(r Replay) Replays {
	r.At = r.At.Truncate(time.Second)
	out := make(Replays, 0, len(rs)+1)
	for _, old := range rs {
		if old.Key != r.Key && r.At.Sub(old.At) < ReplayWindow {
			out = append(out, old)
		}
	}
	out = append(out, r)
	size := 0
	for _, x := range out {
		size += len(x.Body)
	}
	for len(out) > MaxReplays || size > maxReplayBytes && len(out) > 1 {
		size -= len(out[0].Body)
		out = out[1:]
	}
	return out
}
