package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"tote/cart"
	"tote/catalog"
	"tote/session"
)

// jsonOnly refuses a request body that is not declared as JSON (415). It is
// also what keeps a cross-site HTML form from changing a cart: a browser
// sends application/json cross-site only after a CORS preflight, which tote
// never approves.
func jsonOnly(c *fiber.Ctx) error {
	if len(c.Body()) > 0 && !isJSON(c.Get(fiber.HeaderContentType)) {
		return errUnsupportedMedia
	}
	return c.Next()
}

// isJSON reports whether a Content-Type is application/json, with any
// parameters (charset=utf-8).
func isJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), fiber.MIMEApplicationJSON)
}

// cartJSON is the contract's Cart.
type cartJSON struct {
	Items     []itemJSON `json:"items"`
	ItemCount int        `json:"item_count"`
	Subtotal  int64      `json:"subtotal"`
	Currency  string     `json:"currency"`
	Visits    int64      `json:"visits"`
}

type itemJSON struct {
	ProductID string `json:"product_id"`
	Title     string `json:"title"`
	UnitPrice int64  `json:"unit_price"`
	Quantity  int    `json:"quantity"`
	LineTotal int64  `json:"line_total"`
}

// sendCart answers the session's cart as the contract's Cart JSON: what
// encoding/json makes of cartJSON, byte for byte, appended by hand (a
// cart is on every API response, and reflection was most of its cost).
func (s *server) sendCart(c *fiber.Ctx, d *session.Data) error {
	sum := d.Cart.Price(s.cat)
	bp := jsonBufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"items":[`...)
	for i, l := range sum.Lines {
		if i > 0 {
			b = append(b, ',')
		}
		if head, ok := s.itemHeads[l.Product.ID]; ok {
			b = append(b, head...)
		} else {
			b = appendItemHead(b, l.Product)
		}
		b = strconv.AppendInt(b, int64(l.Quantity), 10)
		b = append(b, `,"line_total":`...)
		b = strconv.AppendInt(b, l.LineTotal, 10)
		b = append(b, '}')
	}
	b = append(b, `],"item_count":`...)
	b = strconv.AppendInt(b, int64(sum.ItemCount), 10)
	b = append(b, `,"subtotal":`...)
	b = strconv.AppendInt(b, sum.Subtotal, 10)
	b = append(b, `,"currency":`...)
	b = appendJSONString(b, sum.Currency)
	b = append(b, `,"visits":`...)
	b = strconv.AppendInt(b, d.Visits, 10)
	b = append(b, '}')
	c.Response().SetBody(b) // copies
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	*bp = b
	jsonBufs.Put(bp)
	return nil
}

// appendControl appends \b or \f as encoding/json does (short), or as
// slog's JSONHandler does (\u0008, \u000c).
func appendControl(b []byte, short, c byte, useShort bool) []byte {
	if useShort {
		return append(b, '\\', short)
	}
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
}

var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// itemHeads returns, for each product, the start of its line in a cart's
// JSON: everything up to the quantity, which depends on the cart.
func itemHeads(products []catalog.Product) map[string][]byte {
	m := make(map[string][]byte, len(products))
	for _, p := range products {
		m[p.ID] = appendItemHead(nil, p)
	}
	return m
}

// appendItemHead appends `{"product_id":...,"title":...,"unit_price":N,"quantity":`.
func appendItemHead(b []byte, p catalog.Product) []byte {
	b = append(b, `{"product_id":`...)
	b = appendJSONString(b, p.ID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, p.Title)
	b = append(b, `,"unit_price":`...)
	b = strconv.AppendInt(b, p.Price, 10)
	return append(b, `,"quantity":`...)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it: <, > and & as \u003c, \u003e and \u0026, U+2028 and U+2029,
// control characters, and invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte { return appendJSONStringOf(b, s, true) }

// appendJSONStringOf appends s as a JSON string, escaping <, > and & only
// if html (slog's JSONHandler does not; it also writes \b and \f as \u00XX).
func appendJSONStringOf(b []byte, s string, html bool) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = appendControl(b, 'b', c, html)
			case '\f':
				b = appendControl(b, 'f', c, html)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// GET /api/products
func (s *server) listProducts(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"products": s.cat.Products(), "currency": s.cat.Currency()})
}

// GET /api/products/:id
func (s *server) getProduct(c *fiber.Ctx) error {
	p, err := s.cat.Product(c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// GET /api/cart: reads the session, never writes it.
func (s *server) getCart(c *fiber.Ctx) error {
	sess, err := s.loadSession(c)
	if err != nil {
		return err
	}
	return s.sendCart(c, &sess.Data)
}

// POST /api/cart/items {"product_id": "x", "quantity": 2}
func (s *server) addItem(c *fiber.Ctx) error {
	var body struct {
		ProductID json.RawMessage `json:"product_id"`
		Quantity  json.RawMessage `json:"quantity"`
	}
	if err := decodeBody(c.Body(), &body); err != nil {
		return err
	}
	id, err := stringField(body.ProductID, "product_id")
	if err != nil {
		return err
	}
	qty, qerr := 1, error(nil)
	if !isNull(body.Quantity) {
		if qty, qerr = quantityField(body.Quantity); isBadRequest(qerr) {
			return qerr
		}
	}
	p, err := s.cat.Product(id)
	if err != nil {
		return err
	}
	if qerr != nil {
		return qerr
	}
	return s.changeCart(c, func(ct *cart.Cart) error { return ct.Add(p, qty) })
}

// PUT /api/cart/items/:id {"quantity": N}
func (s *server) setItem(c *fiber.Ctx) error {
	var body struct {
		Quantity json.RawMessage `json:"quantity"`
	}
	if err := decodeBody(c.Body(), &body); err != nil {
		return err
	}
	if isNull(body.Quantity) {
		return badRequest(`The body needs "quantity", a whole number from 0 to 99.`)
	}
	qty, qerr := quantityField(body.Quantity)
	if isBadRequest(qerr) {
		return qerr
	}
	p, err := s.cat.Product(c.Params("id"))
	if err != nil {
		return err
	}
	if qerr != nil {
		return qerr
	}
	return s.changeCart(c, func(ct *cart.Cart) error { return ct.Set(p, qty) })
}

// DELETE /api/cart/items/:id: removing an absent line is not an error.
func (s *server) removeItem(c *fiber.Ctx) error {
	p, err := s.cat.Product(c.Params("id"))
	if err != nil {
		return err
	}
	return s.changeCart(c, func(ct *cart.Cart) error { ct.Remove(p.ID); return nil })
}

// DELETE /api/cart
func (s *server) clearCart(c *fiber.Ctx) error {
	return s.changeCart(c, func(ct *cart.Cart) error { ct.Clear(); return nil })
}

// changeCart applies change to the session's cart and answers the cart as
// stored. A refused change stores nothing.
func (s *server) changeCart(c *fiber.Ctx, change func(*cart.Cart) error) error {
	sess, err := s.updateSession(c, func(d *session.Data) error { return change(&d.Cart) })
	if err != nil {
		return err
	}
	return s.sendCart(c, &sess.Data)
}

// decodeBody parses a JSON object into v. Anything else is 400.
func decodeBody(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return badRequest("The request needs a JSON body.")
	}
	if body[0] != '{' {
		return badRequest("The request body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return badRequest("The request body is not valid JSON: %s.", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return badRequest("The request body must hold one JSON object only.")
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// stringField returns a required, non-empty JSON string.
func stringField(raw json.RawMessage, name string) (string, error) {
	if isNull(raw) {
		return "", badRequest("The body needs %q.", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badRequest("%q must be a string.", name)
	}
	if s == "" {
		return "", badRequest("%q must not be empty.", name)
	}
	return s, nil
}

// isBadRequest reports whether err is a 400: the contract checks the JSON
// shape before the product, and the product before the quantity's value.
func isBadRequest(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.status == fiber.StatusBadRequest
}

// quantityField returns a JSON number that is an integer. A JSON value of
// another type is 400; a number that is not an integer (2.5) is 422. An
// integer too large for an int comes back as one just out of range.
func quantityField(raw json.RawMessage) (int, error) {
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, badRequest(`"quantity" must be a number, not %s.`, clip(string(raw)))
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return clampQuantity(float64(n)), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, badRequest(`"quantity" is not a valid number.`)
	}
	if f != math.Trunc(f) {
		return 0, cart.InvalidQuantity("The quantity must be a whole number, not " + clip(string(raw)) + ".")
	}
	return clampQuantity(f), nil
}

// clampQuantity keeps a whole number in int range without changing whether
// it is within 0..99.
func clampQuantity(f float64) int {
	switch {
	case f > 1000:
		return 1000
	case f < -1000:
		return -1000
	}
	return int(f)
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
