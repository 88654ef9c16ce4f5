package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"tote/cart"
	"tote/catalog"
	"tote/session"
	"tote/views"
)

// pageView counts a visit, takes the flash, and renders page with status in
// the layout, with the template context every page gets (views.Context)
// plus what fill adds. A HEAD request counts nothing and stores nothing.
func (s *server) pageView(c *fiber.Ctx, status int, page string, fill func(*views.Data)) error {
	var sess session.Session
	var flash session.Flash
	var err error
	if c.Method() == fiber.MethodHead {
		sess, err = s.loadSession(c)
	} else {
		sess, err = s.updateSession(c, func(d *session.Data) error {
			d.Visits++
			flash, d.Flash = d.Flash, session.Flash{}
			if d.CSRF == "" {
				d.CSRF = newCSRFToken()
			}
			return nil
		})
	}
	if err != nil {
		return err
	}
	sess.Data.Flash = flash
	data := views.Context(s.cat, &sess.Data)
	fill(&data)
	return c.Status(status).Render(page, data, views.Layout)
}

// GET /
func (s *server) catalogPage(c *fiber.Ctx) error {
	release := func() {}
	defer func() { release() }() // after the page is rendered
	return s.pageView(c, fiber.StatusOK, "pages/catalog", func(d *views.Data) {
		d.Title = "Books"
		d.Books, release = s.shelf.Lend(*d)
	})
}

// GET /products/:id
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

// GET /cart
func (s *server) cartPage(c *fiber.Ctx) error {
	return s.pageView(c, fiber.StatusOK, "pages/cart", func(d *views.Data) { d.Title = "Your cart" })
}

// notFound answers every request no route took: JSON for the API, and a 404
// page, which counts as a visit when it is a GET, for everything else.
func (s *server) notFound(c *fiber.Ctx) error {
	if isAPI(c) {
		return &httpError{fiber.StatusNotFound, "not_found", fmt.Sprintf("There is no route %s %s.", c.Method(), c.Path())}
	}
	if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead || strings.HasPrefix(c.Path(), "/static/") {
		return fiber.ErrNotFound // not a page view: no session, no visit
	}
	return s.notFoundPage(c, "There is no page at this address.")
}

func (s *server) notFoundPage(c *fiber.Ctx, message string) error {
	return s.pageView(c, fiber.StatusNotFound, "pages/error", func(d *views.Data) {
		d.Title = "Page not found"
		d.Status = fiber.StatusNotFound
		d.Message = message
	})
}

// POST /cart/add: product_id, quantity (default 1)
func (s *server) formAdd(c *fiber.Ctx) error {
	return s.formPost(c, func(d *session.Data) (string, error) {
		p, err := s.cat.Product(c.FormValue("product_id"))
		if err != nil {
			return "", err
		}
		qty, err := formQuantity(c.FormValue("quantity"), 1)
		if err != nil {
			return "", err
		}
		if err := d.Cart.Add(p, qty); err != nil {
			return "", err
		}
		return fmt.Sprintf("Added %d × %s.", qty, p.Title), nil
	})
}

// POST /cart/update: product_id, quantity (0 removes)
func (s *server) formUpdate(c *fiber.Ctx) error {
	return s.formPost(c, func(d *session.Data) (string, error) {
		p, err := s.cat.Product(c.FormValue("product_id"))
		if err != nil {
			return "", err
		}
		qty, err := formQuantity(c.FormValue("quantity"), -1)
		if err != nil {
			return "", err
		}
		if err := d.Cart.Set(p, qty); err != nil {
			return "", err
		}
		if qty == 0 {
			return fmt.Sprintf("Removed %s.", p.Title), nil
		}
		return fmt.Sprintf("%s: quantity set to %d.", p.Title, qty), nil
	})
}

// POST /cart/remove: product_id
func (s *server) formRemove(c *fiber.Ctx) error {
	return s.formPost(c, func(d *session.Data) (string, error) {
		p, err := s.cat.Product(c.FormValue("product_id"))
		if err != nil {
			return "", err
		}
		if !d.Cart.Remove(p.ID) {
			return fmt.Sprintf("%s was not in your cart.", p.Title), nil
		}
		return fmt.Sprintf("Removed %s.", p.Title), nil
	})
}

// POST /cart/clear
func (s *server) formClear(c *fiber.Ctx) error {
	return s.formPost(c, func(d *session.Data) (string, error) {
		d.Cart.Clear()
		return "Your cart is now empty.", nil
	})
}

// formPost runs a form's change after checking its CSRF token, leaves the
// outcome as a one-time flash, and answers 303 to /cart. A refused change
// (unknown book, bad quantity, no stock, full cart) changes only the flash;
// a bad token is 403 and changes nothing.
func (s *server) formPost(c *fiber.Ctx, change func(*session.Data) (string, error)) error {
	token := c.FormValue("csrf_token")
	_, err := s.updateSession(c, func(d *session.Data) error {
		if !validCSRF(d, token) {
			return errCSRF
		}
		msg, err := change(d)
		switch {
		case err == nil:
			d.Flash = session.Flash{Message: msg}
		case errors.Is(err, catalog.ErrNotFound) || errors.Is(err, cart.ErrInvalidQuantity) ||
			errors.Is(err, cart.ErrInsufficientStock) || errors.Is(err, cart.ErrFull):
			d.Flash = session.Flash{Message: err.Error(), Error: true}
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.Redirect("/cart", fiber.StatusSeeOther)
}

// formQuantity parses a form's quantity field; an empty field is def, or an
// error when def is negative.
func formQuantity(v string, def int) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" && def >= 0 {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		if len(v) > 0 && len(v) < 20 && strings.Trim(v, "0123456789") == "" {
			return 1000, nil // digits only, too many of them: out of range
		}
		return 0, cart.InvalidQuantity("The quantity must be a whole number.")
	}
	return n, nil
}
