package main

import (
	"bytes"
	"errors"
	"strings"
	"syscall"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// framing refuses a request whose length is given twice over, both
// Transfer-Encoding and Content-Length (a pattern of request smuggling), with
// 400, and one with a transfer coding other than chunked with 501, and
// closes its connection (RFC 9112 6.1, 6.3). fasthttp already refuses two
// different Content-Lengths and a transfer coding other than chunked or
// identity (refuseEarly answers them); it lets "identity" through and
// ignores the body, which then reads as the next request on the
// connection, so this middleware looks at the raw headers of every
// request for a Transfer-Encoding.
func framing(c *fiber.Ctx) error {
	raw := c.Request().Header.RawHeaders()
	te, ok := headerValue(raw, "transfer-encoding")
	switch {
	case !ok:
		return c.Next()
	case hasHeader(raw, "content-length"):
		c.Context().SetConnectionClose()
		return badRequest("The request has both Transfer-Encoding and Content-Length; send one.")
	case !strings.EqualFold(string(te), "chunked"):
		c.Context().SetConnectionClose()
		refuse(c.Context(), isAPI(c), fiber.StatusNotImplemented, "not_implemented", unsupportedCoding)
		return nil
	}
	return c.Next()
}

// unsupportedCoding is the message of the 501 to a transfer coding other
// than chunked.
const unsupportedCoding = "The request's Transfer-Encoding is not supported; send the body as it is, or chunked."

// hasHeader reports whether raw request headers have a header named name
// (lower-case), in any case.
func hasHeader(raw []byte, name string) bool {
	_, ok := headerValue(raw, name)
	return ok
}

// headerValue returns the value, without the spaces around it, of the
// first header named name (lower-case), in any case, of raw request
// headers, and whether there is one.
func headerValue(raw []byte, name string) ([]byte, bool) {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		if key := bytes.TrimSpace(line[:i]); len(key) == len(name) && strings.EqualFold(string(key), name) {
			return bytes.TrimSpace(line[i+1:]), true
		}
	}
	return nil, false
}

// refuseEarly is fasthttp's ErrorHandler: it answers a request refused
// before it is routed (a body or headers too large, a malformed message, a
// request that took too long to arrive), as JSON for a request of the API
// and as text otherwise, and closes the connection. The request's path is
// not known here; the connection's latest request line tells it (see
// conn).
func (s *server) refuseEarly(ctx *fasthttp.RequestCtx, err error) {
	var status int
	var code, message string
	var small *fasthttp.ErrSmallBuffer
	msg := err.Error()
	switch {
	case errors.As(err, &small), strings.Contains(msg, "too large") && strings.Contains(msg, "header"):
		status, code, message = fiber.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "The request's headers are larger than 16 KiB."
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, code, message = fiber.StatusRequestEntityTooLarge, "payload_too_large", "The request body is larger than 4096 bytes."
	case strings.Contains(msg, "unsupported transfer-encoding"):
		status, code, message = fiber.StatusNotImplemented, "not_implemented", unsupportedCoding
	case strings.Contains(msg, "duplicate content-length"):
		status, code, message = fiber.StatusBadRequest, "invalid_request", "The request has more than one Content-Length; send one."
	case strings.Contains(msg, "timeout"), errors.Is(err, syscall.ETIMEDOUT):
		status, code, message = fiber.StatusRequestTimeout, "invalid_request", "The request took too long to arrive."
	default:
		status, code, message = fiber.StatusBadRequest, "invalid_request", "The request is not a well-formed HTTP request."
	}
	ctx.SetConnectionClose()
	ctx.Response.Reset()
	path := ""
	if s.ln != nil {
		if c := s.ln.conn(ctx.RemoteAddr()); c != nil {
			path = c.path()
		}
	}
	refuse(ctx, path == "/api" || strings.HasPrefix(path, "/api/"), status, code, message)
	s.metrics.request("unmatched", "OTHER", status, 0)
}

// refuse answers a request refused for its framing: the contract's error
// JSON for the API, text otherwise.
func refuse(ctx *fasthttp.RequestCtx, api bool, status int, code, message string) {
	ctx.SetStatusCode(status)
	if api {
		ctx.SetContentType(fiber.MIMEApplicationJSON)
		ctx.SetBody(errorJSON(code, message))
	} else {
		ctx.SetContentType(fiber.MIMETextPlainCharsetUTF8)
		ctx.SetBodyString(message + "\n")
	}
}

// maxConnections is how many connections tote serves at once: fewer than
// it may have file descriptors (Go raises the soft limit to the hard one
// at start), keeping some for the store, the log and the listener, so that
// a flood of connections meets a refusal, not a failed accept.
func maxConnections() int {
	const reserve, most = 48, 256 * 1024
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > most+reserve {
		return most
	}
	return max(int(l.Cur)-reserve, 8)
}
