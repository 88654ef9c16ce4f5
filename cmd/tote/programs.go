package main

import (
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"tote/session"
)

// Headers of the contract's "For programs".
const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
)

// conditions are what a request asks beyond its change: If-Match (a cart
// change only if the cart is as the client last read it) and an
// Idempotency-Key (a repeat answered as the first was, without a second
// change).
type conditions struct {
	ifMatch string // "" when absent
	hasKey  bool
	key     [16]byte // a hash of the Idempotency-Key
	request [16]byte // a hash of the method, path and body
}

// readConditions reads a request's If-Match and Idempotency-Key; a key
// that is not 1 to 255 visible ASCII characters is 400.
func readConditions(c *fiber.Ctx) (conditions, error) {
	var k conditions
	k.ifMatch = strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if raw := c.Get(headerIdempotencyKey); raw != "" || len(c.Request().Header.Peek(headerIdempotencyKey)) > 0 {
		if len(raw) > 255 || strings.IndexFunc(raw, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 || raw == "" {
			return k, badRequest("The Idempotency-Key must be 1 to 255 visible ASCII characters.")
		}
		k.hasKey = true
		k.key = session.Hash(raw)
		k.request = session.Hash(c.Method(), c.Path(), string(c.Body()))
	}
	return k, nil
}

// any reports whether the request asks anything beyond its change.
func (k *conditions) any() bool { return k.ifMatch != "" || k.hasKey }

// check checks the conditions against the cart as it is: current returns
// its Cart JSON, stored says whether there is a stored cart (a session or
// an account) at all, and replays are the answers kept with it. It returns
// the answer to repeat for a repeated request, errKeyReused for a key used
// with another request, and errPrecondition when If-Match does not match.
func (k *conditions) check(current func() []byte, stored bool, replays session.Replays) (*session.Replay, error) {
	if k.hasKey {
		if r, ok := replays.Find(k.key, time.Now()); ok {
			if r.Request != k.request {
				return nil, errKeyReused
			}
			return &r, nil
		}
	}
	if k.ifMatch == "" {
		return nil, nil
	}
	if k.ifMatch == "*" {
		if !stored {
			return nil, errPrecondition
		}
		return nil, nil
	}
	tag := etag(current())
	for _, t := range strings.Split(k.ifMatch, ",") {
		if strings.TrimSpace(t) == tag {
			return nil, nil
		}
	}
	return nil, errPrecondition
}

// guard checks the conditions within a change, against the cart as the
// change reads it: a repeat ends the change with errReplayed, a mismatch
// with its error.
func (k *conditions) guard(current func() []byte, stored bool, replays session.Replays) error {
	if !k.any() {
		return nil
	}
	r, err := k.check(current, stored, replays)
	if err != nil {
		return err
	}
	if r != nil {
		return errReplayed{r}
	}
	return nil
}

// remember returns replays with the answer to this request added, if it
// carries a key.
func (k *conditions) remember(replays session.Replays, status int, body []byte) session.Replays {
	if !k.hasKey {
		return replays
	}
	return replays.Add(session.Replay{Key: k.key, Request: k.request, At: time.Now(), Status: status, Body: body})
}

// replay answers a repeated request as the first was answered.
func replay(c *fiber.Ctx, r *session.Replay) error {
	c.Set(headerReplayed, "true")
	if len(r.Body) == 0 {
		return c.SendStatus(r.Status)
	}
	return sendBody(c, r.Status, r.Body)
}

// errReplayed ends a change that turned out to be a repeat: nothing is
// changed and the first answer is sent again.
type errReplayed struct{ r *session.Replay }

func (e errReplayed) Error() string { return "a repeated request" }

// inFlight is the Idempotency-Keys of requests being answered in this
// process, by owner (session or account): a repeat that arrives while the
// first is running is refused with 409, to be retried.
type inFlight struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

// enter marks key of owner as running, or returns errInFlight if it is;
// leave must be called when the request is answered.
func (f *inFlight) enter(owner string, key [16]byte) (leave func(), err error) {
	k := owner + "\x00" + string(key[:])
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[k]; ok {
		return nil, errInFlight
	}
	if f.keys == nil {
		f.keys = map[string]struct{}{}
	}
	f.keys[k] = struct{}{}
	return func() {
		f.mu.Lock()
		delete(f.keys, k)
		f.mu.Unlock()
	}, nil
}
