package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"tote/cart"
	"tote/catalog"
)

// cartChange is one change to a cart, its product and quantity already
// checked: it changes the cart and says what it did, for a form's flash,
// or refuses with a cart error and changes nothing. session.Manager.Update
// may apply it more than once, to fresh data each time.
//
// The API and the forms make the same changes (addLine, setLine,
// removeLine, clearLines) from the product id and the quantity as the
// client wrote them; they differ only in how they read their input and
// answer.
type cartChange func(*cart.Cart) (string, error)

// line returns the product id and the quantity qty, checked in the
// contract's order: the product (404) before the quantity (422).
func (s *server) line(id, qty string) (catalog.Product, int, error) {
	p, err := s.cat.Product(id)
	if err != nil {
		return catalog.Product{}, 0, err
	}
	n, err := parseQuantity(qty)
	return p, n, err
}

// addLine returns the change that adds qty copies of the product id.
func (s *server) addLine(id, qty string) (cartChange, error) {
	p, n, err := s.line(id, qty)
	if err != nil {
		return nil, err
	}
	return func(ct *cart.Cart) (string, error) {
		if err := ct.Add(p, n); err != nil {
			return "", err
		}
		return fmt.Sprintf("Added %d × %s.", n, p.Title), nil
	}, nil
}

// setLine returns the change that makes the product id's line hold qty
// copies; 0 removes it.
func (s *server) setLine(id, qty string) (cartChange, error) {
	p, n, err := s.line(id, qty)
	if err != nil {
		return nil, err
	}
	return func(ct *cart.Cart) (string, error) {
		if err := ct.Set(p, n); err != nil {
			return "", err
		}
		if n == 0 {
			return fmt.Sprintf("Removed %s.", p.Title), nil
		}
		return fmt.Sprintf("%s: quantity set to %d.", p.Title, n), nil
	}, nil
}

// removeLine returns the change that removes the product id's line; an
// absent line is not an error.
func (s *server) removeLine(id string) (cartChange, error) {
	p, err := s.cat.Product(id)
	if err != nil {
		return nil, err
	}
	return func(ct *cart.Cart) (string, error) {
		if !ct.Remove(p.ID) {
			return fmt.Sprintf("%s was not in your cart.", p.Title), nil
		}
		return fmt.Sprintf("Removed %s.", p.Title), nil
	}, nil
}

// clearLines is the change that empties the cart.
func clearLines(ct *cart.Cart) (string, error) {
	ct.Clear()
	return "Your cart is now empty.", nil
}

// parseQuantity parses a quantity written as a whole number: decimal
// digits with an optional leading minus sign. Anything else (2.5, 1e2,
// 1.0, +5, "") is cart.ErrInvalidQuantity. A number too large for an int
// comes back as the largest int of its sign, which cart.Add and cart.Set
// refuse as out of range like any other.
func parseQuantity(s string) (int, error) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		if s == "" {
			return 0, cart.InvalidQuantity("The quantity must be a whole number.")
		}
		return 0, cart.InvalidQuantity("The quantity must be a whole number, not " + clip(s) + ".")
	}
	n, _ := strconv.Atoi(s) // only strconv.ErrRange is left, with n saturated
	return n, nil
}

// clip shortens s, written by a client, to at most 20 bytes and whole
// characters, for a message.
func clip(s string) string {
	if len(s) <= 20 {
		return s
	}
	i := 20
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
