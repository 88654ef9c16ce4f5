package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"tote/account"
	"tote/cart"
	"tote/catalog"
	"tote/session"
	"tote/views"
)

// httpError is a refusal decided by the HTTP layer itself (bad JSON, wrong
// content type, missing CSRF token), with the contract's code.
type httpError struct {
	status  int
	code    string
	message string
	retry   time.Duration // Retry-After, when set
}

func (e *httpError) Error() string { return e.message }

// badRequest returns a 400 invalid_request that says, for a person, what
// is wrong with the request.
func badRequest(format string, args ...any) error {
	return &httpError{status: fiber.StatusBadRequest, code: "invalid_request", message: fmt.Sprintf(format, args...)}
}

var (
	errUnsupportedMedia = &httpError{status: fiber.StatusUnsupportedMediaType, code: "unsupported_media_type", message: "Send the request body as JSON, with Content-Type: application/json."}
	errCSRF             = &httpError{status: fiber.StatusForbidden, code: "forbidden", message: "This form has expired or did not come from this site. Go back, reload the page and try again."}
	errCrossSite        = &httpError{status: fiber.StatusForbidden, code: "cross_site", message: "This request came from another site; tote's API takes changes only from its own pages and from programs."}
	errNotLoggedIn      = &httpError{status: fiber.StatusUnauthorized, code: "not_logged_in", message: "Log in first."}
	errPrecondition     = &httpError{status: fiber.StatusPreconditionFailed, code: "precondition_failed", message: "The cart has changed since you read it (If-Match does not match its ETag); nothing was changed. Read it again."}
	errKeyReused        = &httpError{status: fiber.StatusUnprocessableEntity, code: "idempotency_key_reused", message: "This Idempotency-Key was used before for another request; use a new key for a new request."}
	errInFlight         = &httpError{status: fiber.StatusConflict, code: "conflict", message: "A request with this Idempotency-Key is still being answered; nothing was changed. Retry when it is done."}
)

// tooManySessions is the refusal of a change that would start a session
// past the client's budget, or while the store is full; retry says when
// to try again.
func tooManySessions(retry time.Duration) error {
	return &httpError{status: fiber.StatusTooManyRequests, code: "too_many_sessions", retry: retry,
		message: "Too many new visitors from your address just now; nothing was changed. Please try again in a moment."}
}

// retryAfter is the Retry-After of a 503 of the store.
const retryAfter = 2 * time.Second

// refusals are the refusals of a visitor's request that the visitor can
// fix, with the status and code the API answers. A cart form shows a
// refusal of the cart or catalog as a flash on the next page (flash); an
// account form shows an account's refusal next to the field it concerns. A
// new error of the cart or of accounts is one more line here.
var refusals = []struct {
	err    error
	status int
	code   string
	flash  bool
}{
	{catalog.ErrNotFound, fiber.StatusNotFound, "product_not_found", true},
	{cart.ErrInvalidQuantity, fiber.StatusUnprocessableEntity, "invalid_quantity", true},
	{cart.ErrInsufficientStock, fiber.StatusUnprocessableEntity, "insufficient_stock", true},
	{cart.ErrFull, fiber.StatusUnprocessableEntity, "cart_full", true},
	{account.ErrInvalidUsername, fiber.StatusUnprocessableEntity, "invalid_username", false},
	{account.ErrWeakPassword, fiber.StatusUnprocessableEntity, "weak_password", false},
	{account.ErrUsernameTaken, fiber.StatusConflict, "username_taken", false},
	{account.ErrInvalidCredentials, fiber.StatusUnauthorized, "invalid_credentials", false},
	{account.ErrTooManyAttempts, fiber.StatusTooManyRequests, "too_many_attempts", false},
	{account.ErrOverloaded, fiber.StatusServiceUnavailable, "overloaded", false},
}

// answer is how tote answers an error.
type answer struct {
	status  int
	code    string        // the contract's code
	message string        // for a person
	refusal bool          // a refusal of the cart: a cart form shows it as a flash
	retry   time.Duration // Retry-After, when set
}

// classify returns the answer to err. Unexpected errors are 500 with a
// message that reveals nothing; their detail is logged.
func classify(err error) answer {
	var he *httpError
	var fe *fiber.Error
	var ae *account.Error
	if errors.As(err, &he) {
		return answer{status: he.status, code: he.code, message: he.message, retry: he.retry}
	}
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			a := answer{status: r.status, code: r.code, message: err.Error(), refusal: r.flash}
			if errors.As(err, &ae) {
				a.message, a.retry = ae.Message, ae.Retry
			}
			return a
		}
	}
	switch {
	case errors.Is(err, account.ErrNotFound), errors.Is(err, errEnded):
		return answer{status: errNotLoggedIn.status, code: errNotLoggedIn.code, message: "Your login has ended; log in again."}
	case errors.Is(err, session.ErrFull):
		return classify(tooManySessions(time.Minute))
	case errors.Is(err, session.ErrConflict):
		return answer{status: fiber.StatusConflict, code: "conflict", message: "Too many changes to this cart arrived at once; nothing was changed. Please try again."}
	case errors.Is(err, session.ErrUnavailable):
		return answer{status: fiber.StatusServiceUnavailable, code: "storage_unavailable", message: "The cart is unavailable right now. Please try again in a moment.", retry: retryAfter}
	case errors.As(err, &fe):
		switch fe.Code {
		case fiber.StatusRequestEntityTooLarge:
			return answer{status: fe.Code, code: "payload_too_large", message: fmt.Sprintf("The request body is larger than %d bytes.", bodyLimit)}
		case fiber.StatusNotFound:
			return answer{status: fe.Code, code: "not_found", message: "There is no such page."}
		case fiber.StatusRequestTimeout:
			return answer{status: fe.Code, code: "invalid_request", message: "The request took too long to arrive."}
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return answer{status: fe.Code, code: "invalid_request", message: fe.Message}
		}
	}
	return answer{status: fiber.StatusInternalServerError, code: "internal_error", message: "Internal error."}
}

// isAPI reports whether the request is for the JSON API.
func isAPI(c *fiber.Ctx) bool {
	p := c.Path()
	return p == "/api" || strings.HasPrefix(p, "/api/")
}

// handleError is Fiber's ErrorHandler: every error a handler returns ends
// here, and leaves as JSON for the API or as an HTML page for a browser.
func (s *server) handleError(c *fiber.Ctx, err error) error {
	a := classify(err)
	if a.status >= 500 && a.code != "overloaded" { // a shed login is counted (tote_logins_total), not an error
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "status", a.status, "err", err)
	}
	if a.retry > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(max(a.retry.Round(time.Second), time.Second)/time.Second)))
	}
	if isAPI(c) {
		return c.Status(a.status).JSON(errorBody{Error: errorDetail{Code: a.code, Message: a.message}})
	}
	return s.errorPage(c, a.status, a.message)
}

// errorBody is the contract's error JSON.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorTitles are the titles of the error pages, by status.
var errorTitles = map[int]string{
	fiber.StatusForbidden:           "Forbidden",
	fiber.StatusNotFound:            "Page not found",
	fiber.StatusConflict:            "Please try again",
	fiber.StatusServiceUnavailable:  "Temporarily unavailable",
	fiber.StatusInternalServerError: "Something went wrong",
}

// errorPage renders an error page without touching the session: the store
// may be what failed. 404 pages, which count as visits, go through pageView.
func (s *server) errorPage(c *fiber.Ctx, status int, message string) error {
	title := errorTitles[status]
	if title == "" {
		title = fiber.ErrBadRequest.Message
		if e := fiber.NewError(status); e.Message != "" {
			title = e.Message
		}
	}
	data := views.Data{Unavailable: true, Title: title, Status: status, Message: message}
	c.Set(fiber.HeaderCacheControl, "no-store")
	if err := c.Status(status).Render("pages/error", data, views.Layout); err != nil {
		s.log.Error("rendering the error page", "err", err)
		return c.Status(status).SendString(message)
	}
	return nil
}

// errorJSON returns the contract's error JSON.
func errorJSON(code, message string) []byte {
	b, _ := json.Marshal(errorBody{Error: errorDetail{Code: code, Message: message}})
	return b
}
