package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// limitedHandler is a slog.Handler that lets through at most one record of
// level Error or above per message each interval, and counts the others:
// the next record of that message that goes through says how many were
// left out ("suppressed"). During an outage every failed request would
// otherwise log a line of its own (thousands a second); this keeps one a
// second per kind, with a count. Records below Error all go through.
type limitedHandler struct {
	slog.Handler
	state *limitState
}

type limitState struct {
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	kinds    map[string]*kindState
}

type kindState struct {
	last       time.Time
	suppressed int
}

// maxKinds bounds the messages remembered; messages are constants, so the
// bound is never reached in practice.
const maxKinds = 1024

func newLimitedHandler(h slog.Handler, interval time.Duration) *limitedHandler {
	return &limitedHandler{Handler: h, state: &limitState{interval: interval, now: time.Now, kinds: map[string]*kindState{}}}
}

// Handle writes r, or counts it if a record of its message was written less
// than the interval ago.
func (h *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return h.Handler.Handle(ctx, r)
	}
	s := h.state
	s.mu.Lock()
	k := s.kinds[r.Message]
	if k == nil {
		if len(s.kinds) >= maxKinds {
			clear(s.kinds)
		}
		k = &kindState{}
		s.kinds[r.Message] = k
	}
	now := s.now()
	if !k.last.IsZero() && now.Sub(k.last) < s.interval {
		k.suppressed++
		s.mu.Unlock()
		return nil
	}
	k.last = now
	n := k.suppressed
	k.suppressed = 0
	s.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs returns a handler with attrs that shares the limits.
func (h *limitedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &limitedHandler{Handler: h.Handler.WithAttrs(attrs), state: h.state}
}

// WithGroup returns a handler with a group that shares the limits.
func (h *limitedHandler) WithGroup(name string) slog.Handler {
	return &limitedHandler{Handler: h.Handler.WithGroup(name), state: h.state}
}

// flush writes a summary record for every message whose records were left
// out and that has not been written for an interval: the count of an
// outage's last second is not lost when the errors stop. run calls it
// every second.
func (h *limitedHandler) flush(ctx context.Context) {
	s := h.state
	now := s.now()
	type summary struct {
		msg string
		n   int
	}
	var out []summary
	s.mu.Lock()
	for msg, k := range s.kinds {
		if k.suppressed > 0 && now.Sub(k.last) >= s.interval {
			out = append(out, summary{msg, k.suppressed})
			k.suppressed, k.last = 0, now
		}
	}
	s.mu.Unlock()
	for _, sm := range out {
		r := slog.NewRecord(now, slog.LevelError, sm.msg, 0)
		r.AddAttrs(slog.Int("suppressed", sm.n))
		h.Handler.Handle(ctx, r)
	}
}
