package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

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

// apiDocs serves GET /api/docs: the document as a page for a person,
// rendered once at start from the embedded document, with tote's own
// stylesheet and nothing from elsewhere, so that it works offline.
func (s *server) apiDocs(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Render("pages/apidocs", s.docs)
}

// apiDoc is what the docs page shows of the document.
type apiDoc struct {
	Title, Version, Summary string
	Intro                   []string // paragraphs of the description, before its table
	Codes                   []struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
		When   string `json:"when"`
	}
	Ops []apiOp
}

// apiOp is one operation of the document.
type apiOp struct {
	ID, Method, Path, Summary string
	Params                    []apiField
	Body                      []apiField
	Responses                 []apiResponse
}

type apiField struct{ Name, In, Type, Description string }

type apiResponse struct{ Status, Description string }

// The parts of an OpenAPI document the page reads.
type (
	oaDoc struct {
		Info struct {
			Title, Version, Summary, Description string
		}
		Codes      json.RawMessage            `json:"x-error-codes"`
		Paths      map[string]map[string]oaOp `json:"paths"`
		Components struct{ Parameters, Schemas map[string]oaNode }
	}
	oaOp struct {
		OperationID string `json:"operationId"`
		Summary     string
		Parameters  []oaNode
		RequestBody *struct {
			Content map[string]struct{ Schema oaNode }
		} `json:"requestBody"`
		Responses map[string]struct{ Description string }
	}
	oaNode struct {
		Ref         string `json:"$ref"`
		Name, In    string
		Description string
		Type        any
		Required    any // a parameter's bool, a schema's list of names
		Properties  map[string]oaNode
		Schema      *oaNode
	}
)

// loadDocs reads the embedded document into what the docs page shows.
func loadDocs() (*apiDoc, error) {
	var d oaDoc
	if err := json.Unmarshal(openAPI, &d); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	out := &apiDoc{Title: d.Info.Title, Version: d.Info.Version, Summary: d.Info.Summary}
	if err := json.Unmarshal(d.Codes, &out.Codes); err != nil {
		return nil, fmt.Errorf("openapi.json: x-error-codes: %w", err)
	}
	for _, p := range strings.Split(d.Info.Description, "\n\n") {
		if strings.HasPrefix(p, "|") {
			continue // the table of codes, shown from x-error-codes
		}
		out.Intro = append(out.Intro, strings.NewReplacer("**", "", "`", "").Replace(p))
	}
	resolve := func(n oaNode, kind map[string]oaNode) oaNode {
		if n.Ref != "" {
			return kind[n.Ref[strings.LastIndex(n.Ref, "/")+1:]]
		}
		return n
	}
	paths := make([]string, 0, len(d.Paths))
	for p := range d.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		for _, method := range []string{"get", "post", "put", "delete"} {
			op, ok := d.Paths[path][method]
			if !ok {
				continue
			}
			o := apiOp{ID: op.OperationID, Method: strings.ToUpper(method), Path: path, Summary: op.Summary}
			for _, p := range op.Parameters {
				p = resolve(p, d.Components.Parameters)
				o.Params = append(o.Params, apiField{Name: p.Name, In: p.In, Description: p.Description})
			}
			if op.RequestBody != nil {
				schema := resolve(op.RequestBody.Content["application/json"].Schema, d.Components.Schemas)
				names := make([]string, 0, len(schema.Properties))
				for n := range schema.Properties {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					f := schema.Properties[n]
					typ := fmt.Sprint(f.Type)
					if names, ok := schema.Required.([]any); ok {
						for _, r := range names {
							if r == n {
								typ += ", required"
							}
						}
					}
					o.Body = append(o.Body, apiField{Name: n, Type: typ, Description: f.Description})
				}
			}
			statuses := make([]string, 0, len(op.Responses))
			for st := range op.Responses {
				statuses = append(statuses, st)
			}
			sort.Strings(statuses)
			for _, st := range statuses {
				o.Responses = append(o.Responses, apiResponse{Status: st, Description: strings.ReplaceAll(op.Responses[st].Description, "`", "")})
			}
			out.Ops = append(out.Ops, o)
		}
	}
	return out, nil
}
