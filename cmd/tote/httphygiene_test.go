package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// HTTP hygiene over raw TCP: framing that could smuggle a request, bodies
// and headers over the limits. Each case writes bytes to a connection and
// reads every answer until the server closes it.

// exchange is what a connection got back for the bytes written to it.
type exchange struct {
	answers []rawAnswer
	closed  bool   // the server closed the connection (EOF or reset) after the answers
	rest    []byte // bytes after the last answer that are not one
}

type rawAnswer struct {
	status      int
	contentType string
	body        []byte
}

// sendRaw writes req to a new connection to the server at base and reads
// answers until the connection ends or 3 s pass.
func sendRaw(t *testing.T, base, req string) exchange {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil && !reset(err) {
		t.Fatalf("writing the request: %v", err)
	}
	// Read everything the server sends before it closes, then parse it:
	// a reset after the answer still ends the connection.
	var got bytes.Buffer
	_, err = io.Copy(&got, conn)
	var ex exchange
	switch {
	case err == nil || reset(err):
		ex.closed = true
	case errors.Is(err, syscall.ETIMEDOUT), isTimeout(err):
	default:
		t.Fatalf("reading: %v", err)
	}
	br := bufio.NewReader(&got)
	for {
		if _, err := br.Peek(1); err != nil {
			break
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			ex.rest, _ = io.ReadAll(br)
			break
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		ex.answers = append(ex.answers, rawAnswer{status: res.StatusCode, contentType: res.Header.Get("Content-Type"), body: body})
	}
	return ex
}

func reset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errorCode returns the code of a contract error JSON, or "" for any
// other body.
func (a rawAnswer) errorCode() string {
	var e errorBody
	if !strings.HasPrefix(a.contentType, "application/json") || json.Unmarshal(a.body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	return e.Error.Code
}

// wantOneAnswer checks that the exchange had exactly one answer with
// status and, for the API, the error code, and that the server then
// closed the connection.
func wantOneAnswer(t *testing.T, ex exchange, status int, api bool, code string) {
	t.Helper()
	if len(ex.answers) != 1 || len(ex.rest) != 0 {
		t.Fatalf("%d answers (%+v) and %q besides; want exactly one", len(ex.answers), ex.answers, ex.rest)
	}
	a := ex.answers[0]
	if a.status != status {
		t.Errorf("status %d (%s), want %d", a.status, a.body, status)
	}
	if api && a.errorCode() != code {
		t.Errorf("answer %s %q; want the JSON error %s", a.contentType, a.body, code)
	}
	if !api && a.errorCode() != "" {
		t.Errorf("a page path got the JSON error %s", a.body)
	}
	if !ex.closed {
		t.Error("the connection was left open")
	}
}

// hidden is a second request that a smuggling attempt hides in the first
// one's body; it must never be answered.
const hidden = "GET /api/products/dune HTTP/1.1\r\nHost: tote\r\n\r\n"

func TestFramingRefused(t *testing.T) {
	a := newTestApp(t)
	for _, tt := range []struct {
		name   string
		path   string
		head   string // the framing headers
		body   string
		status int
		code   string
	}{
		{"CL then TE", "/api/cart/items", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" + hidden, 400, "invalid_request"},
		{"TE then CL", "/api/cart/items", "Transfer-Encoding: chunked\r\nContent-Length: 54\r\n", "0\r\n\r\n" + hidden, 400, "invalid_request"},
		{"TE and CL on a page", "/cart/add", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" + hidden, 400, ""},
		{"TE and CL on an unknown route", "/api/nope", "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", "0\r\n\r\n" + hidden, 400, "invalid_request"},
		{"two different Content-Lengths", "/api/cart/items", "Content-Length: 2\r\nContent-Length: 52\r\n", "{}" + hidden, 400, "invalid_request"},
		{"two Content-Lengths on a page", "/cart/add", "Content-Length: 2\r\nContent-Length: 52\r\n", "{}" + hidden, 400, ""},
		{"gzip", "/api/cart/items", "Transfer-Encoding: gzip\r\n", "\x1f\x8b" + hidden, 501, "not_implemented"},
		{"xchunked", "/api/cart/items", "Transfer-Encoding: xchunked\r\n", "0\r\n\r\n" + hidden, 501, "not_implemented"},
		{"gzip, chunked", "/api/cart/items", "Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n" + hidden, 501, "not_implemented"},
		{"xchunked on a page", "/cart/add", "Transfer-Encoding: xchunked\r\n", "0\r\n\r\n" + hidden, 501, ""},
		{"gzip on a page", "/", "Transfer-Encoding: gzip\r\n", "0\r\n\r\n" + hidden, 501, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := "POST " + tt.path + " HTTP/1.1\r\nHost: tote\r\nContent-Type: application/json\r\n" + tt.head + "\r\n" + tt.body
			ex := sendRaw(t, a.base, req)
			wantOneAnswer(t, ex, tt.status, tt.code != "", tt.code)
			if tt.code == "" && len(ex.answers) == 1 && !strings.HasPrefix(ex.answers[0].contentType, "text/") {
				t.Errorf("a page path got %s, want text", ex.answers[0].contentType)
			}
		})
	}
	// The same connection with the hidden request sent on its own is
	// answered: what was refused is the framing.
	ex := sendRaw(t, a.base, hidden+"GET /healthz HTTP/1.1\r\nHost: tote\r\nConnection: close\r\n\r\n")
	if len(ex.answers) != 2 || ex.answers[0].status != 200 || ex.answers[1].status != 200 {
		t.Errorf("two plain requests: %+v", ex.answers)
	}
}

// chunked returns body in chunks of at most 1000 bytes, with the last
// chunk.
func chunked(body string) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(len(body), 1000)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	return b.String() + "0\r\n\r\n"
}

// paddedAdd returns an add of dune padded with spaces to n bytes.
func paddedAdd(n int) string {
	s := `{"product_id":"dune"}`
	return s + strings.Repeat(" ", n-len(s))
}

func TestBodyLimitChunked(t *testing.T) {
	a := newTestApp(t)
	post := func(body string) string {
		return "POST /api/cart/items HTTP/1.1\r\nHost: tote\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked(body)
	}
	ex := sendRaw(t, a.base, post(paddedAdd(4096)))
	if len(ex.answers) != 1 || ex.answers[0].status != 200 {
		t.Errorf("a chunked body of 4096 bytes: %+v; want 200", ex.answers)
	}
	ex = sendRaw(t, a.base, post(paddedAdd(4097)))
	if len(ex.answers) != 1 || ex.answers[0].status != 413 || ex.answers[0].errorCode() != "payload_too_large" {
		t.Errorf("a chunked body of 4097 bytes: %+v; want 413 payload_too_large", ex.answers)
	}
	// Past what tote reads at all, it refuses before routing, still
	// with the API's JSON, and closes the connection.
	ex = sendRaw(t, a.base, strings.TrimSuffix(post(paddedAdd(100_000)), "Connection: close\r\n"))
	wantOneAnswer(t, ex, 413, true, "payload_too_large")
}

// headersOf returns a GET of path whose request line and headers are n
// bytes in all.
func headersOf(path string, n int) string {
	head := "GET " + path + " HTTP/1.1\r\nHost: tote\r\nConnection: close\r\n"
	var b strings.Builder
	b.WriteString(head)
	left := n - len(head) - 2 // the blank line
	for i := 0; left > 0; i++ {
		name := fmt.Sprintf("X-Pad-%03d: ", i)
		line := min(left, 1000)
		if rest := left - line; rest > 0 && rest < 20 {
			line -= 20 // leave room for one more header
		}
		b.WriteString(name + strings.Repeat("a", line-len(name)-2) + "\r\n")
		left -= line
	}
	b.WriteString("\r\n")
	if b.Len() != n {
		panic(fmt.Sprintf("headersOf: %d bytes, want %d", b.Len(), n))
	}
	return b.String()
}

func TestHeaderSizes(t *testing.T) {
	a := newTestApp(t)
	for _, path := range []string{"/api/products", "/cart"} {
		ex := sendRaw(t, a.base, headersOf(path, 16<<10))
		if len(ex.answers) != 1 || ex.answers[0].status != 200 {
			t.Errorf("GET %s with 16 KiB of headers: %+v; want 200", path, ex.answers)
		}
	}
	ex := sendRaw(t, a.base, headersOf("/api/cart", 20<<10))
	wantOneAnswer(t, ex, 431, true, "headers_too_large")
	ex = sendRaw(t, a.base, headersOf("/cart", 20<<10))
	wantOneAnswer(t, ex, 431, false, "")
	if len(ex.answers) == 1 && !strings.HasPrefix(ex.answers[0].contentType, "text/plain") {
		t.Errorf("431 on a page path: %s, want text/plain", ex.answers[0].contentType)
	}
}

func TestIdentityCodingRefused(t *testing.T) {
	a := newTestApp(t)
	for _, path := range []string{"/api/cart/items", "/cart/add"} {
		ex := sendRaw(t, a.base, "POST "+path+" HTTP/1.1\r\nHost: tote\r\nContent-Type: application/json\r\nTransfer-Encoding: identity\r\n\r\n"+hidden)
		if path == "/api/cart/items" {
			wantOneAnswer(t, ex, 501, true, "not_implemented")
		} else {
			wantOneAnswer(t, ex, 501, false, "")
		}
	}
	ex := sendRaw(t, a.base, "GET /api/cart HTTP/1.1\r\nHost: tote\r\nTransfer-Encoding: IDENTITY\r\n\r\n"+hidden)
	wantOneAnswer(t, ex, 501, true, "not_implemented")
}
