package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

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
}

func (e *httpError) Error() string { return e.message }

func badRequest(format string, args ...any) error {
	return &httpError{fiber.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...)}
}

var (
	errUnsupportedMedia = &httpError{fiber.StatusUnsupportedMediaType, "unsupported_media_type", "Send the request body as JSON, with Content-Type: application/json."}
	errCSRF             = &httpError{fiber.StatusForbidden, "forbidden", "This form has expired or did not come from this site. Go back, reload the page and try again."}
)

// retryAfter is the Retry-After of a 503, in seconds.
const retryAfter = "2"

// classify maps an error to its status, the contract's code and a message a
// person can read. Unexpected errors are 500 with a message that reveals
// nothing; their detail is logged.
func classify(err error) (status int, code, message string) {
	var he *httpError
	var fe *fiber.Error
	switch {
	case errors.As(err, &he):
		return he.status, he.code, he.message
	case errors.Is(err, catalog.ErrNotFound):
		return fiber.StatusNotFound, "product_not_found", err.Error()
	case errors.Is(err, cart.ErrInvalidQuantity):
		return fiber.StatusUnprocessableEntity, "invalid_quantity", err.Error()
	case errors.Is(err, cart.ErrInsufficientStock):
		return fiber.StatusUnprocessableEntity, "insufficient_stock", err.Error()
	case errors.Is(err, cart.ErrFull):
		return fiber.StatusUnprocessableEntity, "cart_full", err.Error()
	case errors.Is(err, session.ErrConflict):
		return fiber.StatusConflict, "conflict", "Too many changes to this cart arrived at once; nothing was changed. Please try again."
	case errors.Is(err, session.ErrUnavailable):
		return fiber.StatusServiceUnavailable, "storage_unavailable", "The cart is unavailable right now. Please try again in a moment."
	case errors.As(err, &fe):
		switch fe.Code {
		case fiber.StatusRequestEntityTooLarge:
			return fe.Code, "payload_too_large", fmt.Sprintf("The request body is larger than %d bytes.", bodyLimit)
		case fiber.StatusNotFound:
			return fe.Code, "not_found", "There is no such page."
		case fiber.StatusRequestTimeout:
			return fe.Code, "request_timeout", "The request took too long to arrive."
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return fe.Code, "invalid_request", fe.Message
		}
	}
	return fiber.StatusInternalServerError, "internal_error", "Internal error."
}

// isAPI reports whether the request is for the JSON API.
func isAPI(c *fiber.Ctx) bool {
	p := c.Path()
	return p == "/api" || strings.HasPrefix(p, "/api/")
}

// handleError is Fiber's ErrorHandler: every error a handler returns ends
// here, and leaves as JSON for the API or as an HTML page for a browser.
func (s *server) handleError(c *fiber.Ctx, err error) error {
	status, code, message := classify(err)
	if status >= 500 {
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "status", status, "err", err)
	}
	if status == fiber.StatusServiceUnavailable {
		c.Set(fiber.HeaderRetryAfter, retryAfter)
	}
	if isAPI(c) {
		return c.Status(status).JSON(errorBody{Error: errorDetail{Code: code, Message: message}})
	}
	return s.errorPage(c, status, message)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

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
