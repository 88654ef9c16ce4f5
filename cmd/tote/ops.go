package main

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// GET /readyz: 200 when the session store answers, else 503.
func (s *server) ready(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	c.Set(fiber.HeaderCacheControl, "no-store")
	if err := s.sessions.Ping(ctx); err != nil {
		c.Set(fiber.HeaderRetryAfter, retryAfter)
		return c.Status(fiber.StatusServiceUnavailable).SendString("not ready: the session store does not answer\n")
	}
	return c.SendString("ready\n")
}

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
	attrs := []any{
		"method", c.Method(), "path", c.Path(), "route", route, "status", status,
		"duration_ms", float64(took.Microseconds()) / 1000, "bytes", len(c.Response().Body()),
	}
	if id := sessionID(c); id != "" {
		attrs = append(attrs, "session", id[:6]+"…") // never the whole id
	}
	s.log.Info("request", attrs...)
	return nil
}

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
