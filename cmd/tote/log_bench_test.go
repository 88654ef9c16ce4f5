package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestRequestLineMatchesSlog checks that the request line observe formats
// by hand is the line slog's JSONHandler writes for the same attributes.
func TestRequestLineMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 22, 4, 8, 28, 549540400, time.UTC)
	tests := []struct {
		method, path, route string
		status              int
		took                time.Duration
		bytes               int
		short, user         string
	}{
		{"GET", "/api/cart", "/api/cart", 200, 12345 * time.Nanosecond, 300, "L47osn", ""},
		{"POST", "/cart/add", "/cart/add", 303, 0, 0, "", ""},
		{"GET", "/", "/", 200, 2*time.Second + 500*time.Microsecond, 15000, "abc-_9", "alice"},
		{"BREW", "/odd \"path\"\\<&>\x01\x08\x0c\n\t\u2028\xff", "unmatched", 404, time.Hour, 1, "", "a.b-c_9"},
		{"GET", "/ünï/✓", "unmatched", 404, 1000 * time.Microsecond, 7, "ZZZZZZ", ""},
	}
	for _, tt := range tests {
		var want bytes.Buffer
		h := slog.NewJSONHandler(&want, nil)
		r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
		r.AddAttrs(slog.String("method", tt.method), slog.String("path", tt.path), slog.String("route", tt.route),
			slog.Int("status", tt.status), slog.Float64("duration_ms", float64(tt.took.Microseconds())/1000),
			slog.Int("bytes", tt.bytes))
		if tt.short != "" {
			r.AddAttrs(slog.String("session", tt.short+"…"))
		}
		if tt.user != "" {
			r.AddAttrs(slog.String("user", tt.user))
		}
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		got := appendRequestLine(nil, at, tt.method, tt.path, tt.route, tt.status, tt.took, tt.bytes, tt.short, tt.user)
		if string(got) != want.String() {
			t.Errorf("appendRequestLine wrote\n%s want\n%s", got, want.String())
		}
	}
}

// BenchmarkRequestLine compares the request line formatted by hand with
// slog's JSONHandler, both to io.Discard.
func BenchmarkRequestLine(b *testing.B) {
	b.Run("by-hand", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendRequestLine(buf[:0], time.Now(), "GET", "/api/cart", "/api/cart", 200, 12345*time.Nanosecond, 300, "L47osn", "")
			io.Discard.Write(buf)
		}
	})
	b.Run("slog", func(b *testing.B) {
		log := slog.New(slog.NewJSONHandler(io.Discard, nil))
		b.ReportAllocs()
		for b.Loop() {
			log.LogAttrs(context.Background(), slog.LevelInfo, "request", slog.String("method", "GET"), slog.String("path", "/api/cart"),
				slog.String("route", "/api/cart"), slog.Int("status", 200), slog.Float64("duration_ms", 0.012), slog.Int("bytes", 300),
				slog.String("session", "L47osn…"))
		}
	})
}
