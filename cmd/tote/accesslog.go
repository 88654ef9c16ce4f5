package main

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// appendRequestLine appends the log line of a request, as slog's
// JSONHandler writes s.log.LogAttrs(ctx, slog.LevelInfo, "request", ...)
// with observe's attributes, byte for byte, at a fraction of its cost: it
// and logWriter gain 16–20% on the memory store's GET /api/cart
// (docs/performance.md, row "slog"). short is the first 6 characters of
// the session id, or ""; user the logged-in username, or "".
func appendRequestLine(b []byte, t time.Time, method, path, route string, status int, took time.Duration, bytes int, short, user string) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","method":`...)
	b = appendLogString(b, method)
	b = append(b, `,"path":`...)
	b = appendLogString(b, path)
	b = append(b, `,"route":`...)
	b = appendLogString(b, route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"duration_ms":`...)
	// encoding/json writes a float64 in [1e-6, 1e21) as 'f' with the
	// shortest precision, and 0 as 0: a duration in ms is one of these.
	b = strconv.AppendFloat(b, float64(took.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(bytes), 10)
	if short != "" {
		b = append(b, `,"session":`...)
		b = appendLogString(b, short+"…")
	}
	if user != "" {
		b = append(b, `,"user":`...)
		b = appendLogString(b, user)
	}
	return append(b, "}\n"...)
}

// appendLogString appends s as slog's JSONHandler does (see
// appendLogEscaped), plain strings without a second look.
func appendLogString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return appendLogEscaped(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// logWriter buffers the log for stdout, so that the line of every request
// is not a write(2) of its own (half of the gain of docs/performance.md's
// row "slog"): lines are written out together every
// flushEvery, when the buffer holds logBuffer bytes, on Flush and on
// Close. Each Write is one whole line (slog's handlers write a record at
// once), so lines are never split or interleaved. A crash loses at most
// the last flushEvery of lines.
type logWriter struct {
	w io.Writer

	mu  sync.Mutex // guards buf
	buf []byte

	wmu   sync.Mutex // orders the writes to w; guards spare
	spare []byte

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

const (
	flushEvery = 100 * time.Millisecond
	logBuffer  = 64 << 10
)

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: w, buf: make([]byte, 0, logBuffer), spare: make([]byte, 0, logBuffer), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.Flush()
			case <-l.stop:
				return
			}
		}
	}()
	return l
}

// Write appends p to the buffer, and writes the buffer out if it is full.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= logBuffer
	l.mu.Unlock()
	if full {
		l.Flush()
	}
	return len(p), nil
}

// Flush writes out what the buffer holds.
func (l *logWriter) Flush() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	out := l.buf
	l.buf = l.spare[:0]
	l.mu.Unlock()
	var err error
	if len(out) > 0 {
		_, err = l.w.Write(out)
	}
	if cap(out) <= 4*logBuffer { // keep the buffer, unless a burst grew it
		l.spare = out[:0]
	} else {
		l.spare = make([]byte, 0, logBuffer)
	}
	return err
}

// Close stops the periodic flush and flushes. Writes after Close are
// buffered until the next Flush.
func (l *logWriter) Close() error {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
	})
	return l.Flush()
}

// appendLogEscaped appends s as a JSON string the way slog's JSONHandler
// writes it: <, > and & as they are; ", \\, \n, \r and \t with a
// backslash; other control characters, U+2028 and U+2029 as \u00XX and
// \u202X; invalid UTF-8 as \ufffd.
func appendLogEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
