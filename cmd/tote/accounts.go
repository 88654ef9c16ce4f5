package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"

	"tote/account"
	"tote/cart"
	"tote/session"
)

// accountJSON is the contract's Account.
type accountJSON struct {
	Username  string `json:"username"`
	CreatedAt string `json:"created_at"`
}

func accountBody(a *account.Account) []byte {
	b, _ := json.Marshal(accountJSON{a.Username, a.Created.UTC().Format(time.RFC3339)})
	return b
}

// answerer makes the answer to a login or sign-up from the account as
// stored, the new session's data and the notices of the merge: its status
// and body.
type answerer func(a *account.Account, d *session.Data, notices []string) (int, []byte)

// logIn starts a new session logged in to account a, in place of the
// visitor's session (a login must give the browser a new id; the old one
// loads nothing afterwards): the guest cart is merged into the account's,
// the visits carry over, the CSRF token is new, and the cookie lives the
// session's lifetime unless remember is false. With an Idempotency-Key
// the answer is kept with the account, in the same write as the merge.
// It sends the cookie and returns the answer.
func (s *server) logIn(c *fiber.Ctx, a account.Account, remember bool, k conditions, answer answerer) (int, []byte, error) {
	noStore(c) // the answer carries the new session
	ctx := c.UserContext()
	var status int
	var body []byte
	sess, err := s.sessions.Rotate(ctx, sessionID(c), func(d *session.Data) error {
		guest := d.Cart
		if d.User != "" {
			guest = cart.Cart{} // a session of another account brings no cart
		}
		*d = session.Data{Visits: d.Visits, User: a.Username, Transient: !remember, CSRF: newCSRFToken()}
		d.Expires = time.Now().Add(s.sessions.Lifetime(d))
		acct, err := s.accounts.Update(ctx, a, func(acct *account.Account) error {
			notices := acct.Cart.Merge(guest, s.cat)
			d.Generation = acct.Generation
			status, body = answer(acct, d, notices)
			acct.Replays = k.remember(acct.Replays, status, body)
			return nil
		})
		d.Generation = acct.Generation
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	s.setCookie(c, sess)
	return status, body, nil
}

// loginBody is the answer to a login: the cart, with what the merge cut.
func (s *server) loginBody(a *account.Account, d *session.Data, notices []string) (int, []byte) {
	return fiber.StatusOK, s.cartBody(&a.Cart, d, a.Username, notices)
}

// nothing is the answerer of a login that keeps no answer.
func nothing(*account.Account, *session.Data, []string) (int, []byte) { return 0, nil }

// signUpBody is the answer to a sign-up: the account.
func signUpBody(a *account.Account, _ *session.Data, _ []string) (int, []byte) {
	return fiber.StatusCreated, accountBody(a)
}

// startsSession takes a new session from the client's budget if the
// visitor has no stored session: a login or sign-up then creates one.
func (s *server) startsSession(c *fiber.Ctx) error {
	noStore(c) // the answer depends on the session
	if sess, err := s.sessions.Load(c.UserContext(), sessionID(c)); err != nil {
		return err
	} else if sess.ID != "" {
		return nil
	}
	return s.admit(c)
}

// credentials is the body of a sign-up or a login.
type credentials struct {
	Username jsontext.Value `json:"username"`
	Password jsontext.Value `json:"password"`
	Remember jsontext.Value `json:"remember"`
}

// readCredentials reads a sign-up's or login's body.
func readCredentials(c *fiber.Ctx) (user, password string, remember bool, err error) {
	var body credentials
	if err = decodeBody(c.Body(), &body); err != nil {
		return
	}
	if user, err = stringField(body.Username, "username"); err != nil {
		return
	}
	if password, err = stringField(body.Password, "password"); err != nil {
		return
	}
	remember, err = boolField(body.Remember, "remember", true)
	return
}

// accountConditions reads the Idempotency-Key of a sign-up or login. Its
// request is the username and the remember flag, never the password: a
// repeat is recognised only after the password has been checked again.
func accountConditions(c *fiber.Ctx, user string, remember bool) (conditions, error) {
	k, err := readConditions(c)
	k.ifMatch = "" // a login changes no cart that the client has read
	if err != nil || !k.hasKey {
		return k, err
	}
	name, _ := account.NormalizeUsername(user)
	r := "remember"
	if !remember {
		r = "forget"
	}
	k.request = session.Hash(c.Method(), c.Path(), name, r)
	return k, nil
}

// repeated returns the answer kept with account a for a repeat of a
// request with conditions k, errKeyReused for its key used with another
// request, or nil.
func repeated(a *account.Account, k conditions) (*session.Replay, error) {
	if !k.hasKey {
		return nil, nil
	}
	return k.check(nil, true, a.Replays)
}

// replayLogin answers a repeated login or sign-up as the first was
// answered, logging the browser in again (the first answer's cookie may
// never have arrived) without merging anything twice.
func (s *server) replayLogin(c *fiber.Ctx, a account.Account, remember bool, r *session.Replay) error {
	if _, _, err := s.logIn(c, a, remember, conditions{}, nothing); err != nil {
		return err
	}
	return replay(c, r)
}

// signUp serves POST /api/account {"username", "password"}: it creates the
// account and logs the browser in to it (201 Account).
func (s *server) signUp(c *fiber.Ctx) error {
	user, password, _, err := readCredentials(c)
	if err != nil {
		return err
	}
	k, err := accountConditions(c, user, true)
	if err != nil {
		return err
	}
	if err := s.startsSession(c); err != nil {
		return err
	}
	ctx := c.UserContext()
	a, err := s.accounts.SignUp(ctx, user, password)
	if errors.Is(err, account.ErrUsernameTaken) && k.hasKey {
		// Perhaps a repeat whose first answer was lost: the same key and
		// username, with the password that made the account.
		if old, aerr := s.accounts.Authenticate(ctx, user, password); aerr == nil {
			if r, rerr := repeated(&old, k); rerr != nil || r != nil {
				if rerr != nil {
					return rerr
				}
				return s.replayLogin(c, old, true, r)
			}
		}
	}
	if err != nil {
		return err
	}
	s.metrics.signups.Inc()
	s.log.Info("signed up", "user", a.Username)
	status, body, err := s.logIn(c, a, true, k, signUpBody)
	if err != nil {
		return err
	}
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return c.Status(status).Send(body)
}

// logInAPI serves POST /api/login {"username", "password", "remember"}:
// 200 Cart, with the merge's notices.
func (s *server) logInAPI(c *fiber.Ctx) error {
	user, password, remember, err := readCredentials(c)
	if err != nil {
		return err
	}
	k, err := accountConditions(c, user, remember)
	if err != nil {
		return err
	}
	if err := s.startsSession(c); err != nil {
		return err
	}
	a, err := s.authenticate(c.UserContext(), user, password)
	if err != nil {
		return err
	}
	if r, err := repeated(&a, k); err != nil || r != nil {
		if err != nil {
			return err
		}
		return s.replayLogin(c, a, remember, r)
	}
	status, body, err := s.logIn(c, a, remember, k, s.loginBody)
	if err != nil {
		return err
	}
	return sendBody(c, status, body)
}

// authenticate checks a login's credentials, and counts and logs the
// outcome.
func (s *server) authenticate(ctx context.Context, user, password string) (account.Account, error) {
	a, err := s.accounts.Authenticate(ctx, user, password)
	name, _ := account.NormalizeUsername(user)
	switch {
	case err == nil:
		s.metrics.logins.WithLabelValues("success").Inc()
		s.log.Info("logged in", "user", a.Username)
	case errors.Is(err, account.ErrInvalidCredentials):
		s.metrics.logins.WithLabelValues("failure").Inc()
		s.log.Info("login refused: wrong username or password", "user", name)
	case errors.Is(err, account.ErrTooManyAttempts):
		s.metrics.logins.WithLabelValues("throttled").Inc()
		s.log.Warn("login refused: too many failures for this username", "user", name)
	case errors.Is(err, account.ErrOverloaded):
		s.metrics.logins.WithLabelValues("overloaded").Inc()
	}
	return a, err
}

// loggedIn returns the logged-in visitor, or errNotLoggedIn.
func (s *server) loggedIn(c *fiber.Ctx) (visitor, error) {
	v, err := s.visit(c)
	if err != nil {
		return v, err
	}
	if v.acct == nil {
		return v, errNotLoggedIn
	}
	return v, nil
}

// getAccount serves GET /api/account: 200 Account, 401 for a guest.
func (s *server) getAccount(c *fiber.Ctx) error {
	v, err := s.loggedIn(c)
	if err != nil {
		return err
	}
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return c.Send(accountBody(v.acct))
}

// logOutAPI serves POST /api/logout, with no body or {"everywhere": true}:
// 204, the session deleted and its cookie cleared; everywhere ends every
// session of the account.
func (s *server) logOutAPI(c *fiber.Ctx) error {
	everywhere := false
	if len(bytes.TrimSpace(c.Body())) > 0 {
		var body struct {
			Everywhere jsontext.Value `json:"everywhere"`
		}
		if err := decodeBody(c.Body(), &body); err != nil {
			return err
		}
		var err error
		if everywhere, err = boolField(body.Everywhere, "everywhere", false); err != nil {
			return err
		}
	}
	if err := s.logOut(c, everywhere); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// logOut deletes the visitor's session and clears its cookie; everywhere
// first ends every other session of the account, on every instance, by
// giving the account a new generation. The account's cart stays with the
// account.
func (s *server) logOut(c *fiber.Ctx, everywhere bool) error {
	v, err := s.visit(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if everywhere && v.acct != nil {
		if _, err := s.accounts.Update(ctx, *v.acct, func(a *account.Account) error {
			if !a.Current(v.sess.Data.Generation) {
				return errEnded // another request ended this session meanwhile
			}
			a.Generation = session.NewVersion()
			return nil
		}); err != nil && !errors.Is(err, account.ErrNotFound) && !errors.Is(err, errEnded) {
			return err
		}
	}
	if v.sess.ID != "" {
		if err := s.sessions.Delete(ctx, v.sess.ID); err != nil {
			return err
		}
	}
	s.clearCookie(c)
	if v.acct != nil {
		s.metrics.logouts.Inc()
		s.log.Info("logged out", "user", v.acct.Username, "everywhere", everywhere)
	}
	return nil
}

// changePasswordAPI serves PUT /api/account/password
// {"current_password", "new_password"}: 204; every other session of the
// account ends, and this one gets a new id.
func (s *server) changePasswordAPI(c *fiber.Ctx) error {
	var body struct {
		Current jsontext.Value `json:"current_password"`
		New     jsontext.Value `json:"new_password"`
	}
	if err := decodeBody(c.Body(), &body); err != nil {
		return err
	}
	current, err := stringField(body.Current, "current_password")
	if err != nil {
		return err
	}
	next, err := stringField(body.New, "new_password")
	if err != nil {
		return err
	}
	if err := s.changePassword(c, current, next, nothing); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// changePassword checks the logged-in visitor's current password and the
// new one, stores the new one's hash with a new generation (which ends
// every session of the account), and logs this browser in again under a
// new session id.
func (s *server) changePassword(c *fiber.Ctx, current, next string, answer answerer) error {
	v, err := s.loggedIn(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := s.accounts.Verify(ctx, *v.acct, current); err != nil {
		return err
	}
	if err := account.CheckPassword(v.acct.Username, next); err != nil {
		return err
	}
	hash, err := s.accounts.Hash(ctx, next)
	if err != nil {
		return err
	}
	a, err := s.accounts.Update(ctx, *v.acct, func(a *account.Account) error {
		if !a.Current(v.sess.Data.Generation) {
			// Another request changed the password (or logged out
			// everywhere) since this one read the account: it ended this
			// session, which changes nothing any more.
			return errEnded
		}
		a.Hash, a.Generation = hash, session.NewVersion()
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("password changed: every other session of the account ended", "user", a.Username)
	_, _, err = s.logIn(c, a, !v.sess.Data.Transient, conditions{}, answer)
	return err
}

// deleteAccountAPI serves DELETE /api/account {"password"}: 204; the
// account, its cart and every session of it are gone.
func (s *server) deleteAccountAPI(c *fiber.Ctx) error {
	var body struct {
		Password jsontext.Value `json:"password"`
	}
	if err := decodeBody(c.Body(), &body); err != nil {
		return err
	}
	password, err := stringField(body.Password, "password")
	if err != nil {
		return err
	}
	if err := s.deleteAccount(c, password); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// deleteAccount checks the logged-in visitor's password and deletes the
// account; its other sessions load as guests' from their next request,
// and this one is deleted.
func (s *server) deleteAccount(c *fiber.Ctx, password string) error {
	v, err := s.loggedIn(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := s.accounts.Verify(ctx, *v.acct, password); err != nil {
		return err
	}
	a := *v.acct
	for range 3 { // the account may change meanwhile (its cart, say)
		if err = s.accounts.Delete(ctx, a); !errors.Is(err, session.ErrConflict) {
			break
		}
		var found bool
		if a, found, err = s.accounts.Get(ctx, a.Username); err != nil || !found {
			break
		}
		if !a.Current(v.sess.Data.Generation) {
			err = errEnded // the change meanwhile ended this session
			break
		}
	}
	if err != nil {
		return err
	}
	if err := s.sessions.Delete(ctx, v.sess.ID); err != nil {
		return err
	}
	s.clearCookie(c)
	s.log.Info("account deleted", "user", v.acct.Username)
	return nil
}
