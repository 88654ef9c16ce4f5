package main

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"tote/cart"
)

// FuzzCartAPI sends arbitrary JSON bodies to the cart API: every answer is a
// contract status with the contract's body, never a 500, and a refused
// request leaves the cart as it was.
func FuzzCartAPI(f *testing.F) {
	for _, seed := range []string{
		`{"product_id":"dune","quantity":2}`, `{"product_id":"dune"}`, `{"quantity":2.5}`, `{"quantity":"2"}`,
		`{"product_id":"dune","quantity":1e400}`, `[1,2]`, `null`, `{"product_id":null}`, `{"product_id":"dune"}{}`,
		`{"product_id":"\u0000"}`, `{"quantity":-0}`, `{"quantity":99999999999999999999}`, "{\"product_id\":\"dune\",\"quantity\":1}\n",
	} {
		f.Add("POST", seed)
		f.Add("PUT", seed)
	}
	a := newTestApp(f)
	app := a.app
	allowed := map[int]bool{200: true, 400: true, 404: true, 413: true, 415: true, 422: true}
	f.Fuzz(func(t *testing.T, method, body string) {
		if len(body) > bodyLimit {
			return
		}
		path := "/api/cart/items"
		if method != "POST" {
			method, path = "PUT", "/api/cart/items/kindred"
		}
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !allowed[res.StatusCode] {
			t.Fatalf("%s %s %q: status %d %s", method, path, body, res.StatusCode, b)
		}
		if res.StatusCode == 200 {
			var c cartJSON
			if err := json.Unmarshal(b, &c); err != nil || c.Items == nil {
				t.Fatalf("200 with a body that is not a cart: %s", b)
			}
			return
		}
		var e errorBody
		if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%d with a body that is not a contract error: %s", res.StatusCode, b)
		}
		if res.Header.Get("Set-Cookie") != "" {
			t.Fatalf("a refused request set a cookie")
		}
	})
}

// FuzzParseQuantity: a quantity is a whole number written in decimal
// digits with an optional minus sign, saturated to the int range, or a
// refusal that says so; never a panic, a silent default or another number.
func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"1", " 2 ", "", "0", "-0", "-1", "99", "100", "2.5", "1.0", "1e2", "1e-400", "0.99999999999999999999",
		"abc", "99999999999999999999", "-99999999999999999999", "+5", "٣", "-", "--1", "0x10", "1_000"} {
		f.Add(s)
	}
	whole := regexp.MustCompile(`^-?[0-9]+$`)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseQuantity(s)
		if err != nil {
			if !errors.Is(err, cart.ErrInvalidQuantity) {
				t.Fatalf("parseQuantity(%q): %v is not an invalid-quantity error", s, err)
			}
			if whole.MatchString(s) {
				t.Fatalf("parseQuantity(%q) refused a whole number: %v", s, err)
			}
			return
		}
		if !whole.MatchString(s) {
			t.Fatalf("parseQuantity(%q) = %d for a value that is not a whole number", s, n)
		}
		want, _ := new(big.Int).SetString(s, 10)
		if lo := big.NewInt(math.MinInt); want.Cmp(lo) < 0 {
			want = lo
		}
		if hi := big.NewInt(math.MaxInt); want.Cmp(hi) > 0 {
			want = hi
		}
		if want.Cmp(big.NewInt(int64(n))) != 0 {
			t.Fatalf("parseQuantity(%q) = %d, want %s", s, n, want)
		}
	})
}
