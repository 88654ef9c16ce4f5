package main

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// TestStrictJSON: the API reads JSON bodies strictly (exact keys, no
// duplicate key, integers only as written), ignores unknown keys, and a
// refused body changes nothing: the cart reads byte for byte as before.
func TestStrictJSON(t *testing.T) {
	a := newTestApp(t)
	c := a.client(t)
	if res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune","quantity":2}`); res.status != 200 {
		t.Fatalf("setting up: %d %s", res.status, res.body)
	}
	read := func() []byte {
		t.Helper()
		res := c.do(http.MethodGet, "/api/cart", "")
		if res.status != 200 {
			t.Fatalf("GET /api/cart: %d", res.status)
		}
		return res.body
	}
	const add, set = "POST /api/cart/items", "PUT /api/cart/items/dune"
	for _, tt := range []struct {
		route  string
		body   string
		status int
		code   string
	}{
		{add, `{"PRODUCT_ID":"dune","Quantity":3}`, 400, "invalid_request"},
		{add, `{"Product_Id":"dune"}`, 400, "invalid_request"},
		{add, `{"product_id":"dune","product_id":"kindred"}`, 400, "invalid_request"},
		{add, `{"product_id":"dune","product_id":"dune"}`, 400, "invalid_request"},
		{add, `{"product_id":"dune","product_\u0069d":"kindred"}`, 400, "invalid_request"},
		{add, `{"product_id":"dune","quantity":1,"quantity":1}`, 400, "invalid_request"},
		{add, `{"product_id":"dune","extra":{"a":1,"a":2}}`, 400, "invalid_request"},
		{add, `{"product_id":"dune","quantity":1e-400}`, 422, "invalid_quantity"},
		{add, `{"product_id":"dune","quantity":0.99999999999999999999}`, 422, "invalid_quantity"},
		{add, `{"product_id":"dune","quantity":1.0000000000000000001}`, 422, "invalid_quantity"},
		{add, `{"product_id":"dune","quantity":1.0}`, 422, "invalid_quantity"},
		{add, `{"product_id":"dune","quantity":2.5}`, 422, "invalid_quantity"},
		{add, `{"product_id":"dune","quantity":1e2}`, 422, "invalid_quantity"},
		{add, `{"product_id":"dune","quantity":1E0}`, 422, "invalid_quantity"},
		{add, `{"product_id":"dune","quantity":-1}`, 422, "invalid_quantity"},
		{add, `{"product_id":"dune","quantity":"2"}`, 400, "invalid_request"},
		{add, `{"product_id":"dune","quantity":true}`, 400, "invalid_request"},
		{add, `{"product_id":"dune","quantity":[2]}`, 400, "invalid_request"},
		{add, `{"product_id":["dune"]}`, 400, "invalid_request"},
		{add, `[{"product_id":"dune"}]`, 400, "invalid_request"},
		{add, `{"product_id":"dune"} {}`, 400, "invalid_request"},
		{add, `{"product_id":"dune",}`, 400, "invalid_request"},
		{add, "{\"product_id\":\"dune\xff\"}", 400, "invalid_request"},
		{set, `{"Quantity":3}`, 400, "invalid_request"},
		{set, `{"quantity":3,"quantity":4}`, 400, "invalid_request"},
		{set, `{"quantity":1e-400}`, 422, "invalid_quantity"},
		{set, `{"quantity":0.99999999999999999999}`, 422, "invalid_quantity"},
		{set, `{"quantity":1.0000000000000000001}`, 422, "invalid_quantity"},
		{set, `{"quantity":1.0}`, 422, "invalid_quantity"},
		{set, `{"quantity":2.5}`, 422, "invalid_quantity"},
		{set, `{"quantity":1e2}`, 422, "invalid_quantity"},
		{set, `{"quantity":-0.0}`, 422, "invalid_quantity"},
		{set, `{"quantity":"2"}`, 400, "invalid_request"},
		{set, `{"quantity":null}`, 400, "invalid_request"},
	} {
		t.Run(tt.route+" "+tt.body, func(t *testing.T) {
			before := read()
			method, path, _ := bytes.Cut([]byte(tt.route), []byte(" "))
			res := c.json(string(method), string(path), tt.body)
			if res.status != tt.status || res.errorCode(t) != tt.code {
				t.Errorf("%d %s; want %d %s", res.status, res.body, tt.status, tt.code)
			}
			if res.setCookie != nil {
				t.Errorf("a refusal set a cookie")
			}
			if after := read(); !bytes.Equal(before, after) {
				t.Errorf("the cart changed:\n%s\n%s", before, after)
			}
		})
	}

	// Unknown keys are ignored; the keys that are known are read.
	for _, tt := range []struct{ route, body, want string }{
		{add, `{"product_id":"kindred","quantity":2,"Quantity":50,"note":{"x":[1,2]},"PRODUCT_ID":"nope"}`, "dune:2,kindred:2"},
		{set, `{"quantity":5,"QUANTITY":99,"product_id":"kindred"}`, "dune:5,kindred:2"},
		{add, `{"product_id":"dune","quantity":-0}`, ""}, // 0 is not a quantity to add
	} {
		method, path, _ := bytes.Cut([]byte(tt.route), []byte(" "))
		res := c.json(string(method), string(path), tt.body)
		if tt.want == "" {
			if res.status != 422 {
				t.Errorf("%s %s: %d %s; want 422", tt.route, tt.body, res.status, res.body)
			}
			continue
		}
		var got cartJSON
		res.decode(t, &got)
		if res.status != 200 || lines(got) != tt.want {
			t.Errorf("%s %s: %d %q; want 200 %q", tt.route, tt.body, res.status, lines(got), tt.want)
		}
	}
}

// addBody is the body of POST /api/cart/items as decodeBody reads it.
type addBody struct {
	ProductID jsontext.Value `json:"product_id"`
	Quantity  jsontext.Value `json:"quantity"`
}

// topMembers returns the members of a JSON object, by their unescaped
// names, as jsontext reads them (duplicates allowed), or false if data
// is not one.
func topMembers(data []byte) (map[string][]jsontext.Value, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, false
	}
	out := map[string][]jsontext.Value{}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil || tok.Kind() != '"' {
			return nil, false
		}
		name := tok.String()
		v, err := dec.ReadValue()
		if err != nil {
			return nil, false
		}
		out[name] = append(out[name], bytes.Clone(v))
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false
	}
	return out, true
}

// FuzzJSONBody feeds arbitrary bytes to decodeBody and the field readers:
// they never panic; a body is taken only if it is one valid JSON object
// (after the spaces around it) without a duplicate key, anywhere in it;
// a duplicate key is always refused; keys match exactly; every refusal is
// 400 invalid_request; the field readers take only their JSON type.
func FuzzJSONBody(f *testing.F) {
	for _, s := range []string{
		`{"product_id":"dune","quantity":2}`, `{"product_id":"dune"}`, `{"PRODUCT_ID":"dune","Quantity":3}`,
		`{"product_id":"dune","product_id":"dune"}`, `{"product_\u0069d":"a","product_id":"b"}`, `{"a":{"b":1,"b":2}}`,
		`{"quantity":1e-400}`, `{"quantity":0.99999999999999999999}`, `{"quantity":1.0}`, `{"quantity":"2"}`,
		`{"quantity":null}`, `{"remember":true}`, `[1]`, `null`, `"x"`, ``, ` `, `{`, `{}{}`, `{} x`,
		"\t{\"quantity\":7}\r\n", "{\"product_id\":\"\xff\"}", `{"product_id":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b addBody
		err := decodeBody(body, &b)
		trimmed := bytes.TrimSpace(body)
		members, object := topMembers(trimmed)
		valid := jsontext.Value(trimmed).IsValid() // no duplicate names, valid UTF-8
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.status != 400 || he.code != "invalid_request" {
				t.Fatalf("decodeBody(%q): %v is not a 400 invalid_request", body, err)
			}
			if object && valid {
				t.Fatalf("decodeBody(%q) refused a valid JSON object: %v", body, err)
			}
			return
		}
		if !object || !valid {
			t.Fatalf("decodeBody(%q) took what is not one valid JSON object without duplicate keys", body)
		}
		for name, field := range map[string]jsontext.Value{"product_id": b.ProductID, "quantity": b.Quantity} {
			vs := members[name]
			switch {
			case len(vs) == 0 && len(field) != 0:
				t.Fatalf("decodeBody(%q): %s is %s, but the body has no key %q", body, name, field, name)
			case len(vs) == 1 && !bytes.Equal(compact(vs[0]), compact(field)):
				t.Fatalf("decodeBody(%q): %s is %s, want %s", body, name, field, vs[0])
			}
		}

		// The field readers, on whatever the body held.
		if id, err := stringField(b.ProductID, "product_id"); err == nil {
			var want string
			if b.ProductID.Kind() != '"' || jsonv2.Unmarshal(b.ProductID, &want) != nil || id != want || id == "" {
				t.Fatalf("stringField(%s) = %q", b.ProductID, id)
			}
		} else if !isHTTP400(err) {
			t.Fatalf("stringField(%s): %v", b.ProductID, err)
		}
		if q, err := numberField(b.Quantity, "quantity"); err == nil {
			if b.Quantity.Kind() != '0' || q != string(b.Quantity) {
				t.Fatalf("numberField(%s) = %q, want the number as written", b.Quantity, q)
			}
		} else if !isHTTP400(err) {
			t.Fatalf("numberField(%s): %v", b.Quantity, err)
		}
		if v, err := boolField(b.Quantity, "quantity", true); err == nil {
			if k := b.Quantity.Kind(); !(isNull(b.Quantity) && v || k == 't' && v || k == 'f' && !v) {
				t.Fatalf("boolField(%s) = %v", b.Quantity, v)
			}
		} else if !isHTTP400(err) {
			t.Fatalf("boolField(%s): %v", b.Quantity, err)
		}
	})
}

func compact(v jsontext.Value) []byte {
	v = bytes.Clone(v)
	if err := v.Compact(); err != nil {
		return nil
	}
	return v
}

func isHTTP400(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.status == 400 && he.code == "invalid_request"
}
