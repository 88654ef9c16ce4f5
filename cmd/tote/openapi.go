package main

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openAPI is the OpenAPI 3.1 document of the JSON API, kept beside the
// code that serves it; the tests check real answers against it.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI serves GET /api/openapi.json.
func serveOpenAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return c.Send(openAPI)
}

// apiDocs serves GET /api/docs: the document as a page, rendered by tote
// from the embedded document (no script or stylesheet from elsewhere).
func (s *server) apiDocs(c *fiber.Ctx) error {
	return c.SendString("TODO")
}
