package main

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// The wait between tries to accept again after a lack of file descriptors
// or memory: it doubles from the first to the last, as net/http's does.
const (
	firstAcceptRetry = 5 * time.Millisecond
	lastAcceptRetry  = time.Second
)

// listener is tote's net.Listener. fasthttp stops serving at the first
// accept error that is not a timeout; this one waits and tries again when
// the process has run out of file descriptors or memory (a connection
// flood), so that tote keeps serving the connections it has and accepts
// again when it can. Its connections remember the start of their latest
// request, for the errors answered before a request is routed.
type listener struct {
	net.Listener
	log *slog.Logger
	// open is the open connections by remote address: fasthttp wraps a
	// connection of ours in one of its own (to count connections per
	// address), so an error handler finds ours here.
	open sync.Map
}

// Accept waits for and returns the next connection.
func (l *listener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			ours := &conn{Conn: c, l: l}
			l.open.Store(c.RemoteAddr().String(), ours)
			return ours, nil
		}
		if !exhausted(err) {
			return nil, err
		}
		wait = min(max(2*wait, firstAcceptRetry), lastAcceptRetry)
		l.log.Error("accept failed: out of file descriptors or memory; retrying", "err", err, "retry_in", wait.String())
		time.Sleep(wait)
	}
}

// listen returns tote's listener on ln, which the server's error handler
// asks about connections.
func (s *server) listen(ln net.Listener) *listener {
	s.ln = &listener{Listener: ln, log: s.log}
	return s.ln
}

// exhausted reports whether an accept failed for want of a resource that
// may come back: file descriptors (EMFILE, ENFILE), memory (ENOMEM,
// ENOBUFS), or a connection that was gone before it was accepted.
func exhausted(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.ENOBUFS, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// conn is an accepted connection that keeps the first bytes of its latest
// read that began with a request line. A request refused before routing
// (a body or header too large, a malformed message) reaches the error
// handler without its path; this tells it whether the request was for
// the JSON API. Reads that start a request are the first bytes of each
// request on a keep-alive connection, so the copy costs a few nanoseconds
// per request.
type conn struct {
	net.Conn
	l    *listener
	line [96]byte
	n    int
	once sync.Once
}

// Close closes the connection and forgets it.
func (c *conn) Close() error {
	c.once.Do(func() { c.l.open.Delete(c.RemoteAddr().String()) })
	return c.Conn.Close()
}

// conn returns the open connection from addr, or nil.
func (l *listener) conn(addr net.Addr) *conn {
	if c, ok := l.open.Load(addr.String()); ok {
		return c.(*conn)
	}
	return nil
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && requestLine(p[:n]) {
		c.n = copy(c.line[:], p[:n])
	}
	return n, err
}

// requestLine reports whether p starts like a request line: a method of
// capital letters, a space, and a path.
func requestLine(p []byte) bool {
	i := 0
	for i < len(p) && i < 16 && 'A' <= p[i] && p[i] <= 'Z' {
		i++
	}
	return i > 0 && i+1 < len(p) && p[i] == ' ' && p[i+1] == '/'
}

// path returns the path of the connection's latest request line seen, or
// "".
func (c *conn) path() string {
	p := c.line[:c.n]
	i := bytes.IndexByte(p, ' ')
	if i < 0 {
		return ""
	}
	p = p[i+1:]
	if j := bytes.IndexAny(p, " ?\r\n"); j >= 0 {
		p = p[:j]
	}
	return string(p)
}
