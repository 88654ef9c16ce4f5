package main

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"

	"tote/account"
	"tote/cart"
	"tote/session"
)

// crossSite refuses a POST, PUT or DELETE of the API that a browser sent
// from another site (403 cross_site), by the rule of Go's
// http.CrossOriginProtection: Sec-Fetch-Site cross-site or same-site, or,
// without it, an Origin whose host differs from Host. Requests with
// neither header (curl, programs) pass.
func (s *server) crossSite(c *fiber.Ctx) error {
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	if !isAPI(c) {
		return c.Next() // forms carry a CSRF token
	}
	site, origin := c.Get("Sec-Fetch-Site"), c.Get(fiber.HeaderOrigin)
	if site == "" && origin == "" {
		return c.Next()
	}
	r := &http.Request{Method: c.Method(), Host: string(c.Request().Host()), Header: http.Header{}}
	if site != "" {
		r.Header.Set("Sec-Fetch-Site", site)
	}
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if s.origins.Check(r) != nil {
		return errCrossSite
	}
	return c.Next()
}

// limitBody refuses a body over bodyLimit (413).
func limitBody(c *fiber.Ctx) error {
	if len(c.Body()) > bodyLimit {
		return fiber.ErrRequestEntityTooLarge
	}
	return c.Next()
}

// jsonOnly refuses a request body that is not declared as JSON (415).
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

// listProducts serves GET /api/products.
func (s *server) listProducts(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"products": s.cat.Products(), "currency": s.cat.Currency()})
}

// getProduct serves GET /api/products/:id.
func (s *server) getProduct(c *fiber.Ctx) error {
	p, err := s.cat.Product(c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// getCart serves GET /api/cart: it reads the session, and account, never
// writes them. If-None-Match with the cart's ETag answers 304.
func (s *server) getCart(c *fiber.Ctx) error {
	v, err := s.visit(c)
	if err != nil {
		return err
	}
	body := s.cartBody(v.cart(), &v.sess.Data, v.user(), nil)
	tag := etag(body)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && noneMatch(inm, tag) {
		c.Set(fiber.HeaderETag, tag)
		return c.SendStatus(fiber.StatusNotModified)
	}
	return sendBody(c, fiber.StatusOK, body)
}

// noneMatch reports whether an If-None-Match header matches tag, by the
// weak comparison RFC 9110 asks of it.
func noneMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

// addItem serves POST /api/cart/items {"product_id": "x", "quantity": 2}.
// Its checks come in the contract's order: the JSON's shape (400) here, the
// product (404) and the quantity (422) in addLine, the cart's limits (422)
// when the change is applied. setItem's too.
func (s *server) addItem(c *fiber.Ctx) error {
	var body struct {
		ProductID jsontext.Value `json:"product_id"`
		Quantity  jsontext.Value `json:"quantity"`
	}
	if err := decodeBody(c.Body(), &body); err != nil {
		return err
	}
	id, err := stringField(body.ProductID, "product_id")
	if err != nil {
		return err
	}
	qty := "1"
	if !isNull(body.Quantity) {
		if qty, err = numberField(body.Quantity, "quantity"); err != nil {
			return err
		}
	}
	change, err := s.addLine(id, qty)
	if err != nil {
		return err
	}
	return s.changeCart(c, change)
}

// setItem serves PUT /api/cart/items/:id {"quantity": N}.
func (s *server) setItem(c *fiber.Ctx) error {
	var body struct {
		Quantity jsontext.Value `json:"quantity"`
	}
	if err := decodeBody(c.Body(), &body); err != nil {
		return err
	}
	if isNull(body.Quantity) {
		return badRequest(`The body needs "quantity", a whole number from 0 to 99.`)
	}
	qty, err := numberField(body.Quantity, "quantity")
	if err != nil {
		return err
	}
	change, err := s.setLine(c.Params("id"), qty)
	if err != nil {
		return err
	}
	return s.changeCart(c, change)
}

// removeItem serves DELETE /api/cart/items/:id: removing an absent line is
// not an error.
func (s *server) removeItem(c *fiber.Ctx) error {
	change, err := s.removeLine(c.Params("id"))
	if err != nil {
		return err
	}
	return s.changeCart(c, change)
}

// clearCart serves DELETE /api/cart.
func (s *server) clearCart(c *fiber.Ctx) error {
	return s.changeCart(c, clearLines)
}

// conditionsKey is where the conditions middleware leaves a request's
// conditions for changeCart.
const conditionsKey = "conditions"

// conditions checks a cart change's If-Match and Idempotency-Key before
// anything else of the request, right after the cross-site check: a
// mismatch is 412, a repeat gets the first answer, a key used for another
// request is 422, and a repeat while the first is running 409. changeCart
// checks them again with the change itself, so that nothing changes in
// between.
func (s *server) conditions(c *fiber.Ctx) error {
	k, err := readConditions(c)
	if err != nil {
		return err
	}
	if !k.any() {
		return c.Next()
	}
	v, err := s.visit(c)
	if err != nil {
		return err
	}
	replays, owner := v.sess.Data.Replays, v.sess.ID
	if v.acct != nil {
		replays, owner = v.acct.Replays, account.Key(v.acct.Username)
	}
	r, err := k.check(func() []byte { return s.cartBody(v.cart(), &v.sess.Data, v.user(), nil) }, v.sess.ID != "", replays)
	if err != nil {
		return err
	}
	if r != nil {
		return replay(c, r)
	}
	if k.hasKey && owner != "" {
		leave, err := s.inflight.enter(owner, k.key)
		if err != nil {
			return err
		}
		defer leave()
	}
	c.Locals(conditionsKey, k)
	return c.Next()
}

// changeCart applies change to the visitor's cart, the session's for a
// guest or the account's when logged in, and answers the cart as it now
// is. A refused change stores nothing.
func (s *server) changeCart(c *fiber.Ctx, change cartChange) error {
	k, _ := c.Locals(conditionsKey).(conditions)
	var body []byte
	sess, err := s.updateSession(c, func(d *session.Data) error {
		body = nil
		if d.User != "" {
			return errLoggedIn
		}
		current := func() []byte { return s.cartBody(&d.Cart, d, "", nil) }
		var err error
		body, err = apply(k, &d.Cart, &d.Replays, !d.Expires.IsZero(), change, current, func() []byte {
			// The answer kept with the session holds the expiry the
			// session gets when stored (not bare: it keeps answers).
			d.Expires = time.Now().Add(s.sessions.TTL())
			return current()
		})
		return err
	})
	var rep errReplayed
	switch {
	case errors.As(err, &rep):
		return replay(c, rep.r)
	case errors.Is(err, errLoggedIn):
		return s.changeAccountCart(c, sess, k, change)
	case err != nil:
		return err
	}
	if body == nil {
		body = s.cartBody(&sess.Data.Cart, &sess.Data, "", nil)
	}
	return sendBody(c, fiber.StatusOK, body)
}

// apply is the core of a cart change, the session's or the account's:
// it checks the conditions k against the cart as it is (current makes its
// Cart JSON; stored: whether the cart's record exists), applies change,
// and with an Idempotency-Key returns the answer (made by answer, after
// the change) and remembers it in replays. Without a key it returns no
// body: the caller makes it from what was stored.
func apply(k conditions, ct *cart.Cart, replays *session.Replays, stored bool, change cartChange, current, answer func() []byte) ([]byte, error) {
	if err := k.guard(current, stored, *replays); err != nil {
		return nil, err
	}
	if _, err := change(ct); err != nil {
		return nil, err
	}
	if !k.hasKey {
		return nil, nil
	}
	body := answer()
	*replays = k.remember(*replays, fiber.StatusOK, body)
	return body, nil
}

// changeAccountCart is changeCart for a logged-in session sess: the change
// is made to the account's cart, and the session is only read.
func (s *server) changeAccountCart(c *fiber.Ctx, sess session.Session, k conditions, change cartChange) error {
	ctx := c.UserContext()
	a, err := s.account(ctx, &sess.Data)
	if errors.Is(err, errEnded) {
		// The login ended: the request is a guest's, in a new session.
		s.end(c, sess.ID)
		return s.changeCart(c, change)
	}
	if err != nil {
		return err
	}
	c.Locals(userKey, a.Username)
	var body []byte
	acct, err := s.accounts.Update(ctx, *a, func(a *account.Account) error {
		body = nil
		if !a.Current(sess.Data.Generation) {
			return errEnded
		}
		current := func() []byte { return s.cartBody(&a.Cart, &sess.Data, a.Username, nil) }
		var err error
		body, err = apply(k, &a.Cart, &a.Replays, true, change, current, current)
		return err
	})
	var rep errReplayed
	switch {
	case errors.As(err, &rep):
		return replay(c, rep.r)
	case errors.Is(err, errEnded), errors.Is(err, account.ErrNotFound):
		s.end(c, sess.ID)
		return s.changeCart(c, change)
	case err != nil:
		return err
	}
	if body == nil {
		body = s.cartBody(&acct.Cart, &sess.Data, acct.Username, nil)
	}
	return sendBody(c, fiber.StatusOK, body)
}

// decodeBody parses a JSON object into v, strictly: object keys match
// exactly ("Quantity" is not "quantity"), a duplicate key is refused, and
// nothing may follow the object. Unknown keys are ignored. Anything else
// is 400.
func decodeBody(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return badRequest("The request needs a JSON body.")
	}
	if body[0] != '{' {
		return badRequest("The request body must be a JSON object.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("The request body is not valid JSON: %s.", jsonProblem(err))
	}
	return nil
}

// jsonProblem says what is wrong with a JSON body, for a person.
func jsonProblem(err error) string {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		if strings.Contains(se.Err.Error(), "duplicate") {
			return "a key appears twice"
		}
		return strings.TrimPrefix(se.Err.Error(), "jsontext: ")
	}
	var te *json.SemanticError
	if errors.As(err, &te) && te.JSONKind != 0 {
		return "a field has the wrong type (" + te.JSONKind.String() + ")"
	}
	return "it cannot be read"
}

// isNull reports whether a field is absent or null.
func isNull(raw jsontext.Value) bool {
	return len(raw) == 0 || raw.Kind() == 'n'
}

// stringField returns a required, non-empty JSON string.
func stringField(raw jsontext.Value, name string) (string, error) {
	if isNull(raw) {
		return "", badRequest("The body needs %q.", name)
	}
	var s string
	if raw.Kind() != '"' || json.Unmarshal(raw, &s) != nil {
		return "", badRequest("%q must be a string.", name)
	}
	if s == "" {
		return "", badRequest("%q must not be empty.", name)
	}
	return s, nil
}

// numberField returns a JSON number that is present, as it is written
// ("2", "2.5", "1e2"): whether it is a quantity is parseQuantity's to say.
// A JSON value of another type is 400.
func numberField(raw jsontext.Value, name string) (string, error) {
	if raw.Kind() != '0' {
		return "", badRequest("%q must be a number, not %s.", name, clip(string(raw)))
	}
	return string(raw), nil
}

// boolField returns an optional JSON boolean, def when absent or null.
func boolField(raw jsontext.Value, name string, def bool) (bool, error) {
	switch {
	case isNull(raw):
		return def, nil
	case raw.Kind() == 't':
		return true, nil
	case raw.Kind() == 'f':
		return false, nil
	}
	return false, badRequest("%q must be true or false.", name)
}
