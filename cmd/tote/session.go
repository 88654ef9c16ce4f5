package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/netip"
	"time"

	"github.com/gofiber/fiber/v2"

	"tote/account"
	"tote/cart"
	"tote/session"
)

// cookieName is the session cookie of the contract.
const cookieName = "session_id"

// sessionID returns the session id the browser sent, copied out of Fiber's
// reused buffer; "" when there is none. Of several session_id cookies, the
// first well-formed one is taken: a malformed cookie (a leftover of another
// site on the same domain, say) never hides a good one.
func sessionID(c *fiber.Ctx) string {
	for k, v := range c.Request().Header.Cookies() {
		if string(k) == cookieName && session.ValidID(string(v)) {
			return string(v)
		}
	}
	return ""
}

// noStore marks a response that depends on the session.
func noStore(c *fiber.Ctx) {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Vary(fiber.HeaderCookie)
}

// visitor is who made a request: its session and, for a logged-in
// visitor, the account the session belongs to, whose cart is the one shown
// and changed. A session whose login has ended (a password change, "log
// out everywhere", a deleted account) is a guest's from its next request.
type visitor struct {
	sess session.Session
	acct *account.Account // nil for a guest
}

// cart returns the visitor's cart: the account's when logged in.
func (v *visitor) cart() *cart.Cart {
	if v.acct != nil {
		return &v.acct.Cart
	}
	return &v.sess.Data.Cart
}

// user returns the logged-in username, or "".
func (v *visitor) user() string {
	if v.acct != nil {
		return v.acct.Username
	}
	return ""
}

// errEnded is what a session's change returns when the session's login has
// ended: the request is then a guest's.
var errEnded = errors.New("the login of this session has ended")

// errLoggedIn is what a change of a guest's cart returns for a logged-in
// session: the cart to change is the account's.
var errLoggedIn = errors.New("logged in: the cart is the account's")

// account returns the account a session of data d is logged in to, or nil
// for a guest; errEnded if its login has ended.
func (s *server) account(ctx context.Context, d *session.Data) (*account.Account, error) {
	if d.User == "" {
		return nil, nil
	}
	a, found, err := s.accounts.Get(ctx, d.User)
	if err != nil {
		return nil, err
	}
	if !found || !a.Current(d.Generation) {
		return nil, errEnded
	}
	return &a, nil
}

// visit reads the visitor's session, and account, without changing
// anything: nothing is written and no cookie is sent, unless the session's
// login has ended, in which case the session is deleted and its cookie
// cleared.
func (s *server) visit(c *fiber.Ctx) (visitor, error) {
	noStore(c)
	ctx := c.UserContext()
	sess, err := s.sessions.Load(ctx, sessionID(c))
	if err != nil {
		return visitor{}, err
	}
	a, err := s.account(ctx, &sess.Data)
	if errors.Is(err, errEnded) {
		s.end(c, sess.ID)
		return visitor{}, nil
	}
	if err != nil {
		return visitor{}, err
	}
	if a != nil {
		c.Locals(userKey, a.Username)
	}
	return visitor{sess: sess, acct: a}, nil
}

// end deletes a session whose login has ended and clears its cookie, in
// the answer and in the request: the rest of the request is a guest's. A
// failure to delete leaves a session that loads as a guest's and expires.
func (s *server) end(c *fiber.Ctx, id string) {
	if err := s.sessions.Delete(c.UserContext(), id); err != nil {
		s.log.Error("deleting an ended session", "err", err)
	}
	s.clearCookie(c)
	c.Request().Header.DelCookie(cookieName)
}

// updateSession applies fn to the visitor's session (see
// session.Manager.Update) and, if it was stored, sends the cookie. A new
// session is stored only within the client's budget of new sessions (else
// errTooManySessions) and while the store has room (else session.ErrFull).
func (s *server) updateSession(c *fiber.Ctx, fn func(*session.Data) error) (session.Session, error) {
	noStore(c)
	sess, saved, err := s.sessions.Update(c.UserContext(), sessionID(c), fn, func() error { return s.admit(c) })
	if saved {
		s.setCookie(c, sess)
	}
	return sess, err
}

// updateFrom is updateSession for a session already loaded.
func (s *server) updateFrom(c *fiber.Ctx, from session.Session, fn func(*session.Data) error) (session.Session, error) {
	noStore(c)
	sess, saved, err := s.sessions.UpdateFrom(c.UserContext(), from, fn)
	if saved {
		s.setCookie(c, sess)
	}
	return sess, err
}

// admit takes a new session from the client's budget (NEW_SESSIONS_PER_IP).
func (s *server) admit(c *fiber.Ctx) error {
	ok, wait := s.budget.allow(s.clientIP(c), time.Now())
	if !ok {
		s.metrics.refused.Inc()
		return tooManySessions(wait)
	}
	return nil
}

// clientIP returns the client's address: the peer's, or the one a trusted
// proxy forwarded (see proxies.clientIP).
func (s *server) clientIP(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	if len(s.proxies) == 0 {
		return peer.Unmap()
	}
	var fwd []string
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		fwd = append(fwd, string(v))
	}
	return s.proxies.clientIP(peer, fwd)
}

// setCookie sends the session's cookie: its lifetime is the session's, or
// none (a cookie that ends with the browser) for a login without
// "remember me".
func (s *server) setCookie(c *fiber.Ctx, sess session.Session) {
	ck := &fiber.Cookie{
		Name:     cookieName,
		Value:    sess.ID,
		Path:     "/",
		Secure:   s.secure,
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode,
	}
	if !sess.Data.Transient {
		ck.Expires = sess.Data.Expires
		ck.MaxAge = int(time.Until(sess.Data.Expires).Round(time.Second) / time.Second)
	}
	c.Cookie(ck)
}

// clearCookie tells the browser to drop its session cookie.
func (s *server) clearCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name: cookieName, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		Secure: s.secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode,
	})
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

// csrfToken returns the CSRF token a form sent: the form body's csrf_token
// field or the X-CSRF-Token header, never the query string.
func csrfToken(c *fiber.Ctx) string {
	if t := c.Get("X-CSRF-Token"); t != "" {
		return t
	}
	return formValue(c, "csrf_token")
}

// formValue returns a field of a form's body (url-encoded or multipart),
// never of the query string, which fasthttp's FormValue reads first.
func formValue(c *fiber.Ctx, name string) string {
	if v := c.Request().PostArgs().Peek(name); v != nil {
		return string(v)
	}
	if f, err := c.MultipartForm(); err == nil && len(f.Value[name]) > 0 {
		return f.Value[name][0]
	}
	return ""
}
