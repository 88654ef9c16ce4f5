package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"tote/account"
	"tote/cart"
	"tote/session"
	"tote/views"
)

// pageView counts a visit, takes the flash, and renders page with status in
// the layout, with the template context every page gets (see render). A
// HEAD request counts nothing and stores nothing.
func (s *server) pageView(c *fiber.Ctx, status int, page string, fill func(*views.Data)) error {
	v, flash, err := s.view(c)
	if err != nil {
		return err
	}
	return s.render(c, status, page, &v, flash, fill)
}

// render renders page with status in the layout, with views.Context, the
// template context every page gets (the visitor's cart, visits, flash, CSRF
// token and username), plus what fill adds.
func (s *server) render(c *fiber.Ctx, status int, page string, v *visitor, flash session.Flash, fill func(*views.Data)) error {
	data := s.context(v, flash)
	fill(&data)
	return c.Status(status).Render(page, data, views.Layout)
}

// context returns views.Context for visitor v with flash.
func (s *server) context(v *visitor, flash session.Flash) views.Data {
	d := &v.sess.Data
	return views.Context(v.cart().Price(s.cat), d.Visits, views.Flash{Message: flash.Message, Error: flash.Error}, d.CSRF, v.user())
}

// view counts a page view of the visitor: one more visit, a CSRF token if
// the session has none, and the flash taken (it is shown once). It returns
// the visitor as the page shows it. A session whose login has ended is
// ended and the view is a guest's; a new visitor past the budget of new
// sessions, or with the store full, is shown the page with nothing stored
// and no cookie.
func (s *server) view(c *fiber.Ctx) (visitor, session.Flash, error) {
	if c.Method() == fiber.MethodHead {
		v, err := s.visit(c)
		return v, session.Flash{}, err
	}
	flash := s.takeFlashCookie(c)
	var acct *account.Account
	sess, err := s.updateSession(c, func(d *session.Data) error {
		a, err := s.account(c.UserContext(), d)
		if err != nil {
			return err
		}
		acct = a
		d.Visits++
		if d.Flash != (session.Flash{}) {
			flash, d.Flash = d.Flash, session.Flash{}
		}
		if d.CSRF == "" {
			d.CSRF = newCSRFToken()
		}
		return nil
	})
	var he *httpError
	switch {
	case errors.Is(err, errEnded):
		s.end(c, sess.ID)
		return s.view(c)
	case errors.Is(err, session.ErrFull), errors.As(err, &he) && he.code == "too_many_sessions":
		// Served, but not stored: the visit counts as 1 and no cookie
		// is sent.
		return visitor{sess: sess}, flash, nil
	case err != nil:
		return visitor{}, flash, err
	}
	if acct != nil {
		c.Locals(userKey, acct.Username)
	}
	return visitor{sess: sess, acct: acct}, flash, nil
}

// flashCookie carries a message to the page after a logout or an account's
// deletion: the session that would have held it is gone.
const flashCookie = "tote_flash"

// flashes are the messages a flash cookie may name.
var flashes = map[string]string{
	"logged-out": "You have logged out.",
	"deleted":    "Your account is deleted. Thank you for shopping with us.",
}

// setFlashCookie leaves the message named name for the next page.
func (s *server) setFlashCookie(c *fiber.Ctx, name string) {
	c.Cookie(&fiber.Cookie{Name: flashCookie, Value: name, Path: "/", MaxAge: 300, Secure: s.secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode})
}

// takeFlashCookie returns the message a flash cookie names, and clears it.
func (s *server) takeFlashCookie(c *fiber.Ctx) session.Flash {
	msg, ok := flashes[c.Cookies(flashCookie)]
	if !ok {
		return session.Flash{}
	}
	c.Cookie(&fiber.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, Secure: s.secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode})
	return session.Flash{Message: msg}
}

// catalogPage serves GET /.
func (s *server) catalogPage(c *fiber.Ctx) error {
	v, flash, err := s.view(c)
	if err != nil {
		return err
	}
	data := s.context(&v, flash)
	data.Title = "Books"
	return s.shelf.With(data, func(d views.Data) error {
		return c.Status(fiber.StatusOK).Render("pages/catalog", d, views.Layout)
	})
}

// productPage serves GET /products/:id.
func (s *server) productPage(c *fiber.Ctx) error {
	p, err := s.cat.Product(c.Params("id"))
	if err != nil {
		return s.notFoundPage(c, "There is no such book in the catalog.")
	}
	return s.pageView(c, fiber.StatusOK, "pages/product", func(d *views.Data) {
		d.Title = p.Title
		d.Product = p
	})
}

// cartPage serves GET /cart.
func (s *server) cartPage(c *fiber.Ctx) error {
	return s.pageView(c, fiber.StatusOK, "pages/cart", func(d *views.Data) { d.Title = "Your cart" })
}

// notFound answers every request no route took: JSON for the API, and a 404
// page, which counts as a visit when it is a GET, for everything else.
func (s *server) notFound(c *fiber.Ctx) error {
	if isAPI(c) {
		return &httpError{status: fiber.StatusNotFound, code: "not_found", message: fmt.Sprintf("There is no route %s %s.", c.Method(), c.Path())}
	}
	if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead || strings.HasPrefix(c.Path(), "/static/") {
		return fiber.ErrNotFound // not a page view: no session, no visit
	}
	return s.notFoundPage(c, "There is no page at this address.")
}

// notFoundPage answers a 404 page that says message; it counts a visit.
func (s *server) notFoundPage(c *fiber.Ctx, message string) error {
	return s.pageView(c, fiber.StatusNotFound, "pages/error", func(d *views.Data) {
		d.Title = "Page not found"
		d.Status = fiber.StatusNotFound
		d.Message = message
	})
}

// formAdd serves POST /cart/add: product_id, quantity (default 1).
func (s *server) formAdd(c *fiber.Ctx) error {
	change, err := s.addLine(formValue(c, "product_id"), formQuantity(c, "1"))
	return s.formPost(c, change, err)
}

// formUpdate serves POST /cart/update: product_id, quantity (0 removes).
func (s *server) formUpdate(c *fiber.Ctx) error {
	change, err := s.setLine(formValue(c, "product_id"), formQuantity(c, ""))
	return s.formPost(c, change, err)
}

// formRemove serves POST /cart/remove: product_id.
func (s *server) formRemove(c *fiber.Ctx) error {
	change, err := s.removeLine(formValue(c, "product_id"))
	return s.formPost(c, change, err)
}

// formClear serves POST /cart/clear.
func (s *server) formClear(c *fiber.Ctx) error {
	return s.formPost(c, clearLines, nil)
}

// formPost checks the form's CSRF token, applies change to the visitor's
// cart (the account's when logged in), or takes refused (the error of
// making the change) instead, leaves the outcome as a one-time flash, and
// answers 303 to /cart. A shopper's refusal (see refusals) changes only the
// flash; a bad token is 403 and changes nothing, whatever the form asked.
func (s *server) formPost(c *fiber.Ctx, change cartChange, refused error) error {
	token := csrfToken(c)
	outcome := func(ct *cart.Cart) (session.Flash, error) {
		msg, err := "", refused
		if err == nil {
			msg, err = change(ct)
		}
		if err != nil {
			a := classify(err)
			if !a.refusal {
				return session.Flash{}, err
			}
			return session.Flash{Message: a.message, Error: true}, nil
		}
		return session.Flash{Message: msg}, nil
	}
	sess, err := s.updateSession(c, func(d *session.Data) error {
		if !validCSRF(d, token) {
			return errCSRF
		}
		if d.User != "" {
			return errLoggedIn
		}
		f, err := outcome(&d.Cart)
		d.Flash = f
		return err
	})
	if errors.Is(err, errLoggedIn) {
		err = s.formPostAccount(c, sess, outcome)
	}
	if err != nil {
		return err
	}
	return c.Redirect("/cart", fiber.StatusSeeOther)
}

// formPostAccount is formPost for a logged-in session sess: the account's
// cart changes, then the session gets the flash.
func (s *server) formPostAccount(c *fiber.Ctx, sess session.Session, outcome func(*cart.Cart) (session.Flash, error)) error {
	ctx := c.UserContext()
	a, err := s.account(ctx, &sess.Data)
	if err == nil {
		var flash session.Flash
		_, err = s.accounts.Update(ctx, *a, func(a *account.Account) error {
			if !a.Current(sess.Data.Generation) {
				return errEnded
			}
			f, err := outcome(&a.Cart)
			flash = f
			return err
		})
		if err == nil {
			_, err = s.updateFrom(c, sess, func(d *session.Data) error { d.Flash = flash; return nil })
			if errors.Is(err, session.ErrConflict) {
				// The account's cart changed: that stands, and is not a
				// 409 (which says nothing changed). Only the flash is
				// lost, to a session logged out (or contended) meanwhile.
				err = nil
			}
		}
	}
	if errors.Is(err, errEnded) || errors.Is(err, account.ErrNotFound) {
		// The login ended meanwhile: the form's token was the ended
		// session's, so nothing is changed; the next page is a guest's.
		s.end(c, sess.ID)
		return errCSRF
	}
	return err
}

// formQuantity returns the form's quantity field as the shopper wrote it,
// without the spaces around it, or def when it is empty.
func formQuantity(c *fiber.Ctx, def string) string {
	if v := strings.TrimSpace(formValue(c, "quantity")); v != "" {
		return v
	}
	return def
}
