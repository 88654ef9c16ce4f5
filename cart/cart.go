// Package cart is the shopping cart: the books a shopper has chosen, as lines
// of a product id and a quantity in the order each line was first added. It
// enforces the limits (1 to MaxQuantity copies per line, never more than the
// stock, at most MaxLines lines) and prices a cart against the catalog at read
// time; a cart itself holds no prices. It knows nothing of HTTP or sessions.
package cart

import (
	"errors"
	"fmt"
	"strings"

	"tote/catalog"
)

// Limits of a cart.
const (
	MaxQuantity = 99 // copies of one book in one line
	MaxLines    = 50 // distinct books in one cart
)

// Errors that a change to a cart can match (with errors.Is).
var (
	ErrInvalidQuantity   = errors.New("cart: invalid quantity")
	ErrInsufficientStock = errors.New("cart: insufficient stock")
	ErrFull              = errors.New("cart: too many lines")
)

// Error is a refused change: Err is one of the package's sentinel errors and
// Message says what was wrong in words a shopper understands.
type Error struct {
	Err     error
	Message string
}

// Error returns the message for a person.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// InvalidQuantity returns the error for a quantity that is not acceptable,
// with msg saying why.
func InvalidQuantity(msg string) error { return &Error{Err: ErrInvalidQuantity, Message: msg} }

// Line is one book in a cart.
type Line struct {
	ProductID string
	Quantity  int
}

// Cart is a list of lines, each product at most once, in the order in which
// each line was first added. The zero value is an empty cart.
type Cart struct {
	lines []Line
}

// FromLines returns a cart holding lines, after checking that they could have
// been made by Add and Set: ids are non-empty and unique, quantities are in
// 1..MaxQuantity, and there are at most MaxLines. It is how a stored cart is
// restored; stock is not checked, since it may have changed since.
func FromLines(lines []Line) (Cart, error) {
	if len(lines) > MaxLines {
		return Cart{}, fmt.Errorf("cart: %d lines, more than %d", len(lines), MaxLines)
	}
	for i, l := range lines {
		if l.ProductID == "" || len(l.ProductID) > 64 {
			return Cart{}, fmt.Errorf("cart: line %d has an invalid product id", i+1)
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			return Cart{}, fmt.Errorf("cart: line %d has quantity %d", i+1, l.Quantity)
		}
		for _, prev := range lines[:i] {
			if prev.ProductID == l.ProductID {
				return Cart{}, fmt.Errorf("cart: product %q appears twice", l.ProductID)
			}
		}
	}
	return Cart{lines: lines}, nil
}

// Lines returns the cart's lines in order. The slice is the cart's own: do
// not modify it.
func (c *Cart) Lines() []Line { return c.lines }

// Clone returns a cart with its own copy of the lines.
func (c *Cart) Clone() Cart {
	if len(c.lines) == 0 {
		return Cart{}
	}
	return Cart{lines: append(make([]Line, 0, len(c.lines)+1), c.lines...)}
}

// Len returns the number of lines.
func (c *Cart) Len() int { return len(c.lines) }

// Quantity returns how many copies of the product are in the cart.
func (c *Cart) Quantity(productID string) int {
	if i := c.index(productID); i >= 0 {
		return c.lines[i].Quantity
	}
	return 0
}

func (c *Cart) index(productID string) int {
	for i, l := range c.lines {
		if l.ProductID == productID {
			return i
		}
	}
	return -1
}

// Add adds qty copies of p to its line, creating the line at the end of the
// cart if it is new. It refuses, changing nothing, a qty outside
// 1..MaxQuantity or a line that would exceed MaxQuantity
// (ErrInvalidQuantity), more copies than p's stock (ErrInsufficientStock) and
// a line beyond MaxLines (ErrFull), checked in that order.
func (c *Cart) Add(p catalog.Product, qty int) error {
	if qty < 1 || qty > MaxQuantity {
		return InvalidQuantity(fmt.Sprintf("The quantity must be a whole number from 1 to %d.", MaxQuantity))
	}
	i := c.index(p.ID)
	have := 0
	if i >= 0 {
		have = c.lines[i].Quantity
	}
	if have+qty > MaxQuantity {
		return InvalidQuantity(fmt.Sprintf("A cart can hold at most %d copies of %s; it already has %d.", MaxQuantity, p.Title, have))
	}
	if have+qty > p.Stock {
		return stockError(p, have)
	}
	if i >= 0 {
		c.lines[i].Quantity += qty
		return nil
	}
	if len(c.lines) >= MaxLines {
		return fullError()
	}
	c.lines = append(c.lines, Line{ProductID: p.ID, Quantity: qty})
	return nil
}

// Set makes p's line hold exactly qty copies: 0 removes the line, a new line
// goes at the end. It refuses, changing nothing, a qty outside 0..MaxQuantity
// (ErrInvalidQuantity), more than p's stock (ErrInsufficientStock) and a line
// beyond MaxLines (ErrFull).
func (c *Cart) Set(p catalog.Product, qty int) error {
	if qty < 0 || qty > MaxQuantity {
		return InvalidQuantity(fmt.Sprintf("The quantity must be a whole number from 0 to %d (0 removes the book).", MaxQuantity))
	}
	if qty == 0 {
		c.Remove(p.ID)
		return nil
	}
	i := c.index(p.ID)
	if qty > p.Stock {
		have := 0
		if i >= 0 {
			have = c.lines[i].Quantity
		}
		return stockError(p, have)
	}
	if i >= 0 {
		c.lines[i].Quantity = qty
		return nil
	}
	if len(c.lines) >= MaxLines {
		return fullError()
	}
	c.lines = append(c.lines, Line{ProductID: p.ID, Quantity: qty})
	return nil
}

// Remove deletes the product's line, keeping the order of the others, and
// reports whether there was one.
func (c *Cart) Remove(productID string) bool {
	i := c.index(productID)
	if i < 0 {
		return false
	}
	c.lines = append(c.lines[:i:i], c.lines[i+1:]...)
	return true
}

// Clear empties the cart.
func (c *Cart) Clear() { c.lines = nil }

func stockError(p catalog.Product, have int) error {
	var msg string
	switch {
	case p.Stock == 0:
		msg = fmt.Sprintf("%s is out of stock.", p.Title)
	case p.Stock == 1:
		msg = fmt.Sprintf("Only 1 copy of %s is in stock.", p.Title)
	default:
		msg = fmt.Sprintf("Only %d copies of %s are in stock.", p.Stock, p.Title)
	}
	if have > 0 {
		msg += fmt.Sprintf(" Your cart already has %d.", have)
	}
	return &Error{Err: ErrInsufficientStock, Message: msg}
}

func fullError() error {
	return &Error{Err: ErrFull, Message: fmt.Sprintf("A cart can hold at most %d different books. Remove one to add another.", MaxLines)}
}

// Merge adds the lines of other to c, as at a login the guest's cart joins
// the account's: c's lines first, in their order, then other's new lines in
// theirs; a product in both gets the sum. What the limits cut (the stock,
// MaxQuantity copies per line, MaxLines lines) is left out, and Merge
// returns one sentence for a person about each cut, in the order of the
// lines. Lines of products that cat no longer has are dropped.
func (c *Cart) Merge(other Cart, cat *catalog.Catalog) []string {
	var notices, left []string
	for _, l := range other.lines {
		p, err := cat.Product(l.ProductID)
		if err != nil {
			continue
		}
		i := c.index(p.ID)
		want := l.Quantity
		if i >= 0 {
			want += c.lines[i].Quantity
		}
		got := min(want, p.Stock, MaxQuantity)
		switch {
		case got < 1:
			notices = append(notices, fmt.Sprintf("%s is out of stock, so it is not in your cart.", p.Title))
			if i >= 0 {
				c.Remove(p.ID)
			}
			continue
		case got < want && got == p.Stock:
			notices = append(notices, fmt.Sprintf("Only %s of %s %s in stock; your cart has %d.", copies(p.Stock), p.Title, isAre(p.Stock), got))
		case got < want:
			notices = append(notices, fmt.Sprintf("A cart can hold at most %d copies of %s; your cart has %d.", MaxQuantity, p.Title, got))
		}
		switch {
		case i >= 0:
			c.lines[i].Quantity = got
		case len(c.lines) < MaxLines:
			c.lines = append(c.lines, Line{ProductID: p.ID, Quantity: got})
		default:
			left = append(left, p.Title)
		}
	}
	if len(left) > 0 {
		notices = append(notices, fmt.Sprintf("A cart can hold at most %d different books, so these were not added: %s.", MaxLines, strings.Join(left, ", ")))
	}
	return notices
}

func copies(n int) string {
	if n == 1 {
		return "1 copy"
	}
	return fmt.Sprintf("%d copies", n)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// PricedLine is a line with its product and prices as the catalog has them now.
type PricedLine struct {
	Product   catalog.Product
	Quantity  int
	LineTotal int64
}

// Summary is a cart priced against a catalog.
type Summary struct {
	Lines     []PricedLine
	ItemCount int   // the sum of the quantities
	Subtotal  int64 // minor units of Currency
	Currency  string
}

// Price returns the cart priced with cat's current prices. Lines whose
// product is no longer in the catalog are left out.
func (c *Cart) Price(cat *catalog.Catalog) Summary {
	s := Summary{Currency: cat.Currency(), Lines: make([]PricedLine, 0, len(c.lines))}
	for _, l := range c.lines {
		p, err := cat.Product(l.ProductID)
		if err != nil {
			continue
		}
		total := p.Price * int64(l.Quantity)
		s.Lines = append(s.Lines, PricedLine{Product: p, Quantity: l.Quantity, LineTotal: total})
		s.ItemCount += l.Quantity
		s.Subtotal += total
	}
	return s
}
