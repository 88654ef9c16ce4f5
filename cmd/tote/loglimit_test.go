package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLimitedHandler: of the errors of one message, one a second is
// written, and the next one written (or the flush after a quiet second)
// says how many were left out; other messages and other levels are not
// held back.
func TestLimitedHandler(t *testing.T) {
	var out bytes.Buffer
	h := newLimitedHandler(slog.NewJSONHandler(&out, nil), time.Second)
	now := time.Unix(1_800_000_000, 0)
	h.state.now = func() time.Time { return now }
	log := slog.New(h).With("store", "redis")

	records := func() []map[string]any {
		t.Helper()
		var rs []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if line == "" {
				continue
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			rs = append(rs, r)
		}
		out.Reset()
		return rs
	}

	for range 1000 {
		log.Error("session store unavailable", "err", "connection refused")
	}
	log.Error("another failure")
	log.Info("request")
	log.Info("request")
	rs := records()
	if len(rs) != 4 {
		t.Fatalf("1000 errors of one kind, one of another and two infos wrote %d lines, want 4: %v", len(rs), rs)
	}
	if rs[0]["msg"] != "session store unavailable" || rs[0]["suppressed"] != nil || rs[0]["store"] != "redis" {
		t.Errorf("first line %v", rs[0])
	}

	now = now.Add(500 * time.Millisecond)
	log.Error("session store unavailable")
	h.flush(context.Background())
	if rs := records(); len(rs) != 0 {
		t.Fatalf("within the second: %v", rs)
	}

	now = now.Add(600 * time.Millisecond)
	log.Error("session store unavailable")
	rs = records()
	if len(rs) != 1 || rs[0]["suppressed"] != float64(1000) {
		t.Fatalf("a second later: %v; want one line with suppressed 1000", rs)
	}

	// The errors stop: the flush a second later reports what was left out
	// after the last line written.
	for range 7 {
		log.Error("session store unavailable")
	}
	h.flush(context.Background())
	if rs := records(); len(rs) != 0 {
		t.Fatalf("flush within the second wrote %v", rs)
	}
	now = now.Add(time.Second)
	h.flush(context.Background())
	rs = records()
	if len(rs) != 1 || rs[0]["msg"] != "session store unavailable" || rs[0]["suppressed"] != float64(7) || rs[0]["level"] != "ERROR" {
		t.Fatalf("flush after the errors stopped: %v; want one ERROR with suppressed 7", rs)
	}
	h.flush(context.Background())
	if rs := records(); len(rs) != 0 {
		t.Fatalf("a second flush wrote %v again", rs)
	}
}
