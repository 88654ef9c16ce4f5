package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"tote/session"
	"tote/session/memstore"
	"tote/session/redisstore/redistest"
)

// docValidator returns a validator of requests and answers against the
// embedded OpenAPI document.
func docValidator(tb testing.TB) validator.Validator {
	tb.Helper()
	doc, err := libopenapi.NewDocument(openAPI)
	if err != nil {
		tb.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if errs != nil {
		tb.Fatal(errs)
	}
	return v
}

// TestOpenAPIDocument checks the document itself against the OpenAPI 3.1
// specification's schema: the check CI makes of the document.
func TestOpenAPIDocument(t *testing.T) {
	ok, errs := docValidator(t).ValidateDocument()
	for _, e := range errs {
		t.Errorf("%s: %s", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			t.Errorf("  %s at %s", f.Reason, f.FieldPath)
		}
	}
	if !ok {
		t.Fatal("the document is not a valid OpenAPI 3.1 document")
	}
}

// docCodes returns the error codes the document declares, in its order.
func docCodes(tb testing.TB) []string {
	tb.Helper()
	var d struct {
		Codes []struct {
			Status int
			Code   string
		} `json:"x-error-codes"`
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Error struct {
							Properties struct {
								Code struct{ Enum []string }
							}
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(openAPI, &d); err != nil {
		tb.Fatal(err)
	}
	var table []string
	for _, c := range d.Codes {
		table = append(table, c.Code)
	}
	enum := d.Components.Schemas.Error.Properties.Error.Properties.Code.Enum
	if !slices.Equal(table, enum) {
		tb.Fatalf("the document's table of codes %v and its Error enum %v differ", table, enum)
	}
	return enum
}

// tableCodes returns the codes of the first table in the markdown file
// path whose rows read | status | `code` | ..., in its order.
func tableCodes(tb testing.TB, path string) ([]string, error) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var codes []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 4 {
			if len(codes) > 0 {
				break // the end of the table
			}
			continue
		}
		if _, err := strconv.Atoi(strings.TrimSpace(f[1])); err == nil && strings.HasPrefix(strings.TrimSpace(f[2]), "`") {
			codes = append(codes, strings.Trim(strings.TrimSpace(f[2]), "`"))
		}
	}
	return codes, nil
}

// codeCodes returns every error code the code of this package can answer:
// the string literals given to a field or variable named code, and the
// codes of the refusal tables, read from the package's source.
func codeCodes(tb testing.TB) map[string]bool {
	tb.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		tb.Fatal(err)
	}
	codes := map[string]bool{}
	lit := func(e ast.Expr) {
		if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
			if s, err := strconv.Unquote(b.Value); err == nil && s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz_") == "" {
				codes[s] = true
			}
		}
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			tb.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && id.Name == "code" {
					lit(n.Value)
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok && id.Name == "code" && i < len(n.Rhs) {
						lit(n.Rhs[i])
					}
				}
			case *ast.ValueSpec:
				if len(n.Names) == 1 && strings.HasSuffix(n.Names[0].Name, "efusals") && len(n.Values) == 1 {
					ast.Inspect(n.Values[0], func(m ast.Node) bool {
						if c, ok := m.(*ast.CompositeLit); ok && len(c.Elts) >= 3 {
							lit(c.Elts[2])
						}
						return true
					})
				}
			}
			return true
		})
	}
	return codes
}

// TestErrorCodes checks that the document declares the contract's codes in
// the contract's order, and that they are the codes the code answers.
func TestErrorCodes(t *testing.T) {
	doc := docCodes(t)
	readme, err := tableCodes(t, filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(doc, readme) {
		t.Errorf("the document's codes\n%v\nare not the README's error table, in its order:\n%v", doc, readme)
	}
	// The contract lives beside the repository, where it is checked out
	// with it; a clone of the repository alone has the README's copy.
	// The contract's table, then the two codes of requests refused before
	// routing that its text names.
	if contract, err := tableCodes(t, filepath.Join("..", "..", "..", "shared", "api-contract.md")); err == nil && !slices.Equal(doc, append(contract, "headers_too_large", "not_implemented")) {
		t.Errorf("the document's codes\n%v\nare not the contract's, in its order:\n%v", doc, contract)
	}
	code := codeCodes(t)
	// Answers that are not refusals of the API: a form's CSRF refusal is an
	// HTML page, and internal_error is a bug's 500.
	for _, notAPI := range []string{"forbidden", "internal_error"} {
		if !code[notAPI] {
			t.Errorf("the code no longer answers %q: update this test", notAPI)
		}
		delete(code, notAPI)
	}
	for _, c := range doc {
		if !code[c] {
			t.Errorf("the document declares %q, which the code never answers", c)
		}
		delete(code, c)
	}
	for c := range code {
		t.Errorf("the code answers %q, which the document does not declare", c)
	}
}

// checked is a client whose every answer is validated against the
// document.
type checked struct {
	*client
	v  validator.Validator
	mu *sync.Mutex // the validator is not safe for concurrent use
}

// call sends a request as client.do does and validates the answer against
// the document; with valid, the request too. It returns the answer.
func (k checked) call(valid bool, method, path, body string, headers ...string) *response {
	k.tb.Helper()
	res := k.do(method, path, body, headers...)
	req, err := http.NewRequest(method, k.base+path, strings.NewReader(body))
	if err != nil {
		k.tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if k.cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: k.cookie})
	}
	resp := &http.Response{StatusCode: res.status, Header: res.header, Body: io.NopCloser(bytes.NewReader(res.body)), Request: req}
	k.mu.Lock()
	defer k.mu.Unlock()
	ok, errs := k.v.ValidateHttpResponse(req, resp)
	if valid {
		ok, errs = k.v.ValidateHttpRequestResponse(req, resp)
	}
	if !ok {
		for _, e := range errs {
			k.tb.Errorf("%s %s → %d %.200s: the document disagrees: %s", method, path, res.status, res.body, e.Error())
			for _, f := range e.SchemaValidationErrors {
				k.tb.Errorf("  %s at %s", f.Reason, f.FieldPath)
			}
		}
	}
	return res
}

// wantCode fails tb unless r is status with the contract's error code.
func wantCode(tb testing.TB, r *response, status int, code string) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d %s, want %d %s", r.status, r.body, status, code)
	}
	if code != "" {
		if got := r.errorCode(tb); got != code {
			tb.Fatalf("code %q, want %q", got, code)
		}
	}
}

// bigCatalog writes a catalog of 60 books (one with a stock of 2) to a
// file and returns its path: enough lines to fill a cart.
func bigCatalog(tb testing.TB) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`{"currency":"USD","products":[{"id":"dune","title":"Dune","author":"Frank Herbert","price":1899,"stock":20},{"id":"rare","title":"Rare","author":"A","price":999,"stock":2}`)
	for i := range 58 {
		fmt.Fprintf(&b, `,{"id":"book-%02d","title":"Book %d","author":"A","price":%d,"stock":50}`, i, i, 500+i)
	}
	b.WriteString("]}")
	path := filepath.Join(tb.TempDir(), "books.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestOpenAPIAnswers sends a request for every route and every error code
// of the contract to a running tote on each store, and validates each
// answer (and each well-formed request) against the document.
func TestOpenAPIAnswers(t *testing.T) {
	v := docValidator(t)
	mu := &sync.Mutex{}
	catalog := bigCatalog(t)
	stores := []struct {
		name string
		env  func(t *testing.T) map[string]string
		stop func() // stops the store, for 503; nil where it cannot be
	}{
		{"memory", func(*testing.T) map[string]string { return map[string]string{"SESSION_STORE": "memory"} }, nil},
		{"file", func(t *testing.T) map[string]string {
			return map[string]string{"SESSION_STORE": "file", "DATA_DIR": t.TempDir()}
		}, nil},
		{"redis", nil, nil},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			var srv *redistest.Server
			env := map[string]string{}
			if st.env != nil {
				env = st.env(t)
			} else {
				srv = redistest.Start(t)
				env["REDIS_URL"] = srv.URL()
			}
			env["CATALOG_FILE"] = catalog
			in := startTote(t, env)
			newClient := func() checked { return checked{client: in.client(t), v: v, mu: mu} }
			answers(t, newClient)
			t.Run("429 too_many_sessions", func(t *testing.T) {
				env2 := map[string]string{"NEW_SESSIONS_PER_IP": "1", "CATALOG_FILE": catalog}
				for k, val := range env {
					if k != "DATA_DIR" && k != "CATALOG_FILE" {
						env2[k] = val
					}
				}
				if env["DATA_DIR"] != "" {
					env2["DATA_DIR"] = t.TempDir()
				}
				in2 := startTote(t, env2)
				c := checked{client: in2.client(t), v: v, mu: mu}
				wantCode(t, c.call(true, "POST", "/api/cart/items", `{"product_id":"dune"}`, "Content-Type", "application/json"), 200, "")
				c2 := checked{client: in2.client(t), v: v, mu: mu}
				r := c2.call(true, "POST", "/api/cart/items", `{"product_id":"dune"}`, "Content-Type", "application/json")
				wantCode(t, r, 429, "too_many_sessions")
				if r.header.Get("Retry-After") == "" {
					t.Error("no Retry-After")
				}
			})
			if srv != nil {
				t.Run("503 storage_unavailable", func(t *testing.T) {
					c := newClient()
					wantCode(t, c.call(true, "POST", "/api/cart/items", `{"product_id":"dune"}`, "Content-Type", "application/json"), 200, "")
					srv.Stop(t)
					r := c.call(true, "GET", "/api/cart", "")
					wantCode(t, r, 503, "storage_unavailable")
					if r.header.Get("Retry-After") == "" {
						t.Error("no Retry-After")
					}
				})
			}
		})
	}
}

// answers runs the routes and error codes that every store answers alike.
func answers(t *testing.T, newClient func() checked) {
	json := []string{"Content-Type", "application/json"}
	with := func(extra ...string) []string { return append(slices.Clone(json), extra...) }

	t.Run("catalog", func(t *testing.T) {
		c := newClient()
		wantCode(t, c.call(true, "GET", "/api/products", ""), 200, "")
		wantCode(t, c.call(true, "GET", "/api/products/dune", ""), 200, "")
		wantCode(t, c.call(true, "GET", "/api/products/nope", ""), 404, "product_not_found")
		wantCode(t, c.call(true, "GET", "/api/openapi.json", ""), 200, "")
		wantCode(t, c.call(true, "GET", "/api/docs", ""), 200, "")
		// An unknown route is in no document: its answer is checked by hand.
		wantCode(t, c.do("GET", "/api/nope", ""), 404, "not_found")
	})

	t.Run("cart", func(t *testing.T) {
		c := newClient()
		r := c.call(true, "GET", "/api/cart", "")
		wantCode(t, r, 200, "")
		r = c.call(true, "POST", "/api/cart/items", `{"product_id":"dune","quantity":2}`, json...)
		wantCode(t, r, 200, "")
		tag := r.header.Get("ETag")
		wantCode(t, c.call(true, "GET", "/api/cart", "", "If-None-Match", tag), 304, "")
		wantCode(t, c.call(true, "PUT", "/api/cart/items/dune", `{"quantity":3}`, with("If-Match", `"stale"`)...), 412, "precondition_failed")
		wantCode(t, c.call(true, "PUT", "/api/cart/items/dune", `{"quantity":3}`, with("If-Match", tag)...), 200, "")
		r = c.call(true, "POST", "/api/cart/items", `{"product_id":"book-01"}`, with("Idempotency-Key", "k-1")...)
		wantCode(t, r, 200, "")
		again := c.call(true, "POST", "/api/cart/items", `{"product_id":"book-01"}`, with("Idempotency-Key", "k-1")...)
		wantCode(t, again, 200, "")
		if again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(r.body) {
			t.Errorf("the repeat: Idempotent-Replayed %q, body %s; want true and the first body %s", again.header.Get("Idempotent-Replayed"), again.body, r.body)
		}
		wantCode(t, c.call(true, "POST", "/api/cart/items", `{"product_id":"book-02"}`, with("Idempotency-Key", "k-1")...), 422, "idempotency_key_reused")
		wantCode(t, c.call(false, "POST", "/api/cart/items", `{"product_id":`, json...), 400, "invalid_request")
		wantCode(t, c.call(false, "POST", "/api/cart/items", `{"product_id":"dune","product_id":"dune"}`, json...), 400, "invalid_request")
		wantCode(t, c.call(false, "POST", "/api/cart/items", `{"product_id":"dune"}`, "Content-Type", "text/plain"), 415, "unsupported_media_type")
		wantCode(t, c.call(false, "POST", "/api/cart/items", `{"product_id":"dune","x":"`+strings.Repeat("a", 4096)+`"}`, json...), 413, "payload_too_large")
		wantCode(t, c.call(true, "POST", "/api/cart/items", `{"product_id":"nope"}`, json...), 404, "product_not_found")
		wantCode(t, c.call(false, "POST", "/api/cart/items", `{"product_id":"dune","quantity":2.5}`, json...), 422, "invalid_quantity")
		wantCode(t, c.call(true, "POST", "/api/cart/items", `{"product_id":"rare","quantity":3}`, json...), 422, "insufficient_stock")
		wantCode(t, c.call(false, "POST", "/api/cart/items", `{"product_id":"dune"}`, with("Sec-Fetch-Site", "cross-site")...), 403, "cross_site")
		wantCode(t, c.call(true, "DELETE", "/api/cart/items/dune", ""), 200, "")
		wantCode(t, c.call(true, "DELETE", "/api/cart/items/nope", ""), 404, "product_not_found")
		for i := range 49 { // with book-01: 50 lines
			wantCode(t, c.call(true, "POST", "/api/cart/items", fmt.Sprintf(`{"product_id":"book-%02d"}`, i+3), json...), 200, "")
		}
		wantCode(t, c.call(true, "POST", "/api/cart/items", `{"product_id":"dune"}`, json...), 422, "cart_full")
		wantCode(t, c.call(true, "DELETE", "/api/cart", ""), 200, "")
	})

	t.Run("accounts", func(t *testing.T) {
		c, other := newClient(), newClient()
		name := fmt.Sprintf("doc-%d", seq())
		wantCode(t, c.call(true, "GET", "/api/account", ""), 401, "not_logged_in")
		wantCode(t, c.call(true, "POST", "/api/account", `{"username":"ab","password":"long enough pw"}`, json...), 422, "invalid_username")
		wantCode(t, c.call(true, "POST", "/api/account", `{"username":"`+name+`","password":"password"}`, json...), 422, "weak_password")
		wantCode(t, c.call(true, "POST", "/api/account", `{"username":"`+name+`","password":"long enough pw"}`, json...), 201, "")
		wantCode(t, other.call(true, "POST", "/api/account", `{"username":"`+strings.ToUpper(name)+`","password":"long enough pw"}`, json...), 409, "username_taken")
		wantCode(t, c.call(true, "GET", "/api/account", ""), 200, "")
		wantCode(t, other.call(true, "POST", "/api/login", `{"username":"`+name+`","password":"wrong password"}`, json...), 401, "invalid_credentials")
		wantCode(t, other.call(true, "POST", "/api/login", `{"username":"`+name+`","password":"long enough pw","remember":false}`, json...), 200, "")
		wantCode(t, other.call(true, "POST", "/api/cart/items", `{"product_id":"dune"}`, json...), 200, "")
		wantCode(t, c.call(true, "PUT", "/api/account/password", `{"current_password":"wrong password","new_password":"another long one"}`, json...), 401, "invalid_credentials")
		wantCode(t, c.call(true, "PUT", "/api/account/password", `{"current_password":"long enough pw","new_password":"another long one"}`, json...), 204, "")
		wantCode(t, c.call(true, "POST", "/api/logout", `{"everywhere":true}`, json...), 204, "")
		wantCode(t, c.call(true, "POST", "/api/login", `{"username":"`+name+`","password":"another long one"}`, with("Idempotency-Key", "login-1")...), 200, "")
		wantCode(t, c.call(true, "DELETE", "/api/account", `{"password":"wrong password"}`, json...), 401, "invalid_credentials")
		wantCode(t, c.call(true, "DELETE", "/api/account", `{"password":"another long one"}`, json...), 204, "")
		wantCode(t, c.call(true, "POST", "/api/logout", ""), 204, "")
		for range 10 {
			other.call(true, "POST", "/api/login", `{"username":"`+name+`-x","password":"wrong password"}`, json...)
		}
		r := other.call(true, "POST", "/api/login", `{"username":"`+name+`-x","password":"wrong password"}`, json...)
		wantCode(t, r, 429, "too_many_attempts")
		if r.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	})

	t.Run("refused before routing", func(t *testing.T) {
		c := newClient()
		wantCode(t, c.call(false, "GET", "/api/cart", "", "X-Big", strings.Repeat("a", 20<<10)), 431, "headers_too_large")
	})

	t.Run("docs page", func(t *testing.T) {
		c := newClient()
		r := c.call(true, "GET", "/api/docs", "")
		doc, err := goquery.NewDocumentFromReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"GET /api/cart", "POST /api/cart/items", "POST /api/login", "DELETE /api/account"} {
			if doc.Find("section.op h2 code:contains('"+p+"')").Length() != 1 {
				t.Errorf("the docs page has no operation %q", p)
			}
		}
		if n := doc.Find("#codes tbody tr").Length(); n != len(docCodes(t)) {
			t.Errorf("the docs page lists %d codes, want %d", n, len(docCodes(t)))
		}
		doc.Find("[src], [href]").Each(func(_ int, s *goquery.Selection) {
			for _, attr := range []string{"src", "href"} {
				if v, ok := s.Attr(attr); ok && !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "#") {
					t.Errorf("the docs page loads %s=%q from elsewhere", attr, v)
				}
			}
		})
	})
}

var seqN struct {
	sync.Mutex
	n int
}

// seq returns a number no other call in this run returns.
func seq() int {
	seqN.Lock()
	defer seqN.Unlock()
	seqN.n++
	return seqN.n
}

// slowStore is a real store whose compare-and-swaps take a while: a
// request that writes is still running when its repeat arrives.
type slowStore struct {
	session.Store
	delay time.Duration
}

func (s slowStore) CompareAndSwap(ctx context.Context, key string, old uint64, w session.Write) error {
	time.Sleep(s.delay)
	return s.Store.CompareAndSwap(ctx, key, old, w)
}

// TestOpenAPIConflict: a repeat of a request with an Idempotency-Key that
// arrives while the first is still running is 409 conflict, and the first
// applies once.
func TestOpenAPIConflict(t *testing.T) {
	mem := memstore.New(memstore.Options{})
	t.Cleanup(func() { mem.Close() })
	a := newTestApp(t, withStore(slowStore{mem, 300 * time.Millisecond}))
	c := checked{client: a.client(t), v: docValidator(t), mu: &sync.Mutex{}}
	json := []string{"Content-Type", "application/json", "Idempotency-Key", "slow-1"}
	wantCode(t, c.call(true, "POST", "/api/cart/items", `{"product_id":"kindred"}`, "Content-Type", "application/json"), 200, "")
	first := make(chan *response)
	one := *c.client
	go func() {
		cc := checked{client: &one, v: c.v, mu: c.mu}
		first <- cc.call(true, "POST", "/api/cart/items", `{"product_id":"dune"}`, json...)
	}()
	time.Sleep(100 * time.Millisecond) // the first is in its compare-and-swap
	two := *c.client
	r := checked{client: &two, v: c.v, mu: c.mu}.call(true, "POST", "/api/cart/items", `{"product_id":"dune"}`, json...)
	wantCode(t, r, 409, "conflict")
	wantCode(t, <-first, 200, "")
	if q := c.cart().quantity("dune"); q != 1 {
		t.Errorf("dune %d, want 1: the first applied once, the repeat not at all", q)
	}
}

// TestOpenAPIOverloaded: logins past the queue of password checks answer
// 503 overloaded with Retry-After.
func TestOpenAPIOverloaded(t *testing.T) {
	a := newTestApp(t, withHasher(10, 1))
	v, mu := docValidator(t), &sync.Mutex{}
	c := checked{client: a.client(t), v: v, mu: mu}
	wantCode(t, c.call(true, "POST", "/api/account", `{"username":"busy","password":"long enough pw"}`, "Content-Type", "application/json"), 201, "")
	var wg sync.WaitGroup
	answers := make(chan *response, 6)
	for range 6 {
		one := checked{client: a.client(t), v: v, mu: mu}
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- one.call(true, "POST", "/api/login", `{"username":"busy","password":"long enough pw"}`, "Content-Type", "application/json")
		}()
	}
	wg.Wait()
	close(answers)
	overloaded := 0
	for r := range answers {
		switch r.status {
		case 200:
		case 503:
			wantCode(t, r, 503, "overloaded")
			if r.header.Get("Retry-After") == "" {
				t.Error("503 overloaded without Retry-After")
			}
			overloaded++
		default:
			t.Errorf("status %d %s", r.status, r.body)
		}
	}
	if overloaded == 0 {
		t.Error("6 logins at once with one check running and one queued: none was refused")
	}
}
