package main

import (
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"tote/session"
)

// observe logs one line per request and counts it in the metrics. Errors
// are turned into responses here, by the ErrorHandler, so that the line and
// the metrics show the status the client got.
func (s *server) observe(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		if err := c.App().ErrorHandler(c, err); err != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	took := time.Since(start)
	status := c.Response().StatusCode()
	route := routeLabel(c)
	s.metrics.request(route, c.Method(), status, took)
	short := "" // the session id's first 6 characters: never the whole id
	if id := c.Cookies(cookieName); session.ValidID(id) {
		short = id[:6]
	}
	bp := lineBufs.Get().(*[]byte)
	user, _ := c.Locals(userKey).(string)
	*bp = appendRequestLine((*bp)[:0], time.Now(), c.Method(), c.Path(), route, status, took, len(c.Response().Body()), short, user)
	s.access.Write(*bp)
	lineBufs.Put(bp)
	return nil
}

// userKey is where the handlers leave the logged-in username for the
// request's log line.
const userKey = "user"

// lineBufs holds the buffers observe formats request lines in.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// routeLabel is the route a request took, as registered ("/api/cart/items/:id"),
// or "unmatched": a bounded set of metric labels.
func routeLabel(c *fiber.Ctx) string {
	r := c.Route()
	if r == nil || r.Path == "/" && c.Path() != "/" || r.Path == "" {
		return "unmatched"
	}
	if r.Path == "/static" {
		return "/static/*"
	}
	return r.Path
}

// securityHeaders sets the headers every response carries. The policy allows
// only tote's own stylesheet and script: no inline script, no framing.
func securityHeaders(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	return c.Next()
}
