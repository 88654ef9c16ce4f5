package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"tote/session"
)

// cookieName is the session cookie of the contract.
const cookieName = "session_id"

// sessionID returns the session id the browser sent, copied out of Fiber's
// reused buffer; "" when there is none or it is malformed.
func sessionID(c *fiber.Ctx) string {
	id := c.Cookies(cookieName)
	if !session.ValidID(id) {
		return ""
	}
	return utils.CopyString(id)
}

// noStore marks a response that depends on the session.
func noStore(c *fiber.Ctx) {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Vary(fiber.HeaderCookie)
}

// loadSession reads the visitor's session without changing it: nothing is
// written and no cookie is sent.
func (s *server) loadSession(c *fiber.Ctx) (session.Session, error) {
	noStore(c)
	return s.sessions.Load(c.UserContext(), sessionID(c))
}

// updateSession applies fn to the visitor's session (see session.Manager.Update)
// and, if it was stored, sends the cookie with a renewed lifetime. A session
// that was not stored gets no cookie.
func (s *server) updateSession(c *fiber.Ctx, fn func(*session.Data) error) (session.Session, error) {
	noStore(c)
	sess, saved, err := s.sessions.Update(c.UserContext(), sessionID(c), fn)
	if saved {
		ttl := s.sessions.TTL()
		c.Cookie(&fiber.Cookie{
			Name:     cookieName,
			Value:    sess.ID,
			Path:     "/",
			MaxAge:   int(ttl / time.Second),
			Expires:  time.Now().Add(ttl),
			Secure:   s.secure,
			HTTPOnly: true,
			SameSite: fiber.CookieSameSiteLaxMode,
		})
	}
	return sess, err
}

// newCSRFToken returns a session's CSRF token: 256 random bits.
func newCSRFToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validCSRF reports, in constant time, whether the token a form sent is the
// session's.
func validCSRF(d *session.Data, sent string) bool {
	return d.CSRF != "" && subtle.ConstantTimeCompare([]byte(d.CSRF), []byte(sent)) == 1
}
