package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/gofiber/fiber/v2"

	"tote/cart"
	"tote/session"
)

// cartJSON is the contract's Cart.
type cartJSON struct {
	Items     []itemJSON `json:"items"`
	ItemCount int        `json:"item_count"`
	Subtotal  int64      `json:"subtotal"`
	Currency  string     `json:"currency"`
	Visits    int64      `json:"visits"`
	User      *string    `json:"user"`       // null for a guest
	ExpiresAt *string    `json:"expires_at"` // null with no session
	Notices   []string   `json:"notices,omitempty"`
}

type itemJSON struct {
	ProductID string `json:"product_id"`
	Title     string `json:"title"`
	UnitPrice int64  `json:"unit_price"`
	Quantity  int    `json:"quantity"`
	LineTotal int64  `json:"line_total"`
}

// cartBody returns the Cart JSON of cart ct as a visitor with session data
// d (not stored if d.Expires is zero) and username user ("" for a guest)
// sees it, with notices for a person.
func (s *server) cartBody(ct *cart.Cart, d *session.Data, user string, notices []string) []byte {
	sum := ct.Price(s.cat)
	out := cartJSON{
		Items: make([]itemJSON, len(sum.Lines)), ItemCount: sum.ItemCount, Subtotal: sum.Subtotal,
		Currency: sum.Currency, Visits: d.Visits, Notices: notices,
	}
	for i, l := range sum.Lines {
		out.Items[i] = itemJSON{l.Product.ID, l.Product.Title, l.Product.Price, l.Quantity, l.LineTotal}
	}
	if user != "" {
		out.User = &user
	}
	if !d.Expires.IsZero() {
		at := d.Expires.UTC().Format(time.RFC3339)
		out.ExpiresAt = &at
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic("tote: a cart does not encode: " + err.Error()) // only strings and integers
	}
	return b
}

// etag returns the strong validator of a Cart JSON body: a 64-bit hash of
// every byte of it (xxHash, a few tens of nanoseconds for a cart, which
// every Cart answer carries), so that it changes whenever anything in the
// cart does.
func etag(body []byte) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], xxhash.Sum64(body))
	return `"` + base64.RawURLEncoding.EncodeToString(b[:]) + `"`
}

// sendBody answers a Cart JSON body with its ETag.
func sendBody(c *fiber.Ctx, status int, body []byte) error {
	c.Set(fiber.HeaderETag, etag(body))
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return c.Status(status).Send(body)
}

// sendCart answers the visitor's cart.
func (s *server) sendCart(c *fiber.Ctx, v *visitor, notices ...string) error {
	return sendBody(c, fiber.StatusOK, s.cartBody(v.cart(), &v.sess.Data, v.user(), notices))
}
