package main

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// healthy serves GET /healthz: 200 while the process serves.
func healthy(c *fiber.Ctx) error { return c.SendString("ok\n") }

// ready serves GET /readyz: 200 when the session store answers, else 503.
func (s *server) ready(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	c.Set(fiber.HeaderCacheControl, "no-store")
	if err := s.sessions.Ping(ctx); err != nil {
		c.Set(fiber.HeaderRetryAfter, "2")
		return c.Status(fiber.StatusServiceUnavailable).SendString("not ready: the session store does not answer\n")
	}
	return c.SendString("ready\n")
}
