package cart_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"tote/cart"
	"tote/catalog"
)

// testCatalog returns a catalog with products of stock 0 ("out"), 1 ("one"),
// 2 ("two") and 500 ("many"), and 60 more ("p01".."p60", stock 500) to fill a
// cart to its line limit.
func testCatalog(tb testing.TB) *catalog.Catalog {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`{"currency": "USD", "products": [
		{"id": "out", "title": "Out Title", "author": "A", "price": 1099, "stock": 0},
		{"id": "one", "title": "One Title", "author": "A", "price": 1399, "stock": 1},
		{"id": "two", "title": "Two Title", "author": "A", "price": 1699, "stock": 2},
		{"id": "many", "title": "Many Title", "author": "A", "price": 1499, "stock": 500},
		{"id": "dear", "title": "Dear Title", "author": "A", "price": 1000000, "stock": 500}`)
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&b, `,
		{"id": "p%02d", "title": "Title %d", "author": "A", "price": %d, "stock": 500}`, i, i, 100+i)
	}
	b.WriteString("]}")
	cat, err := catalog.Load(strings.NewReader(b.String()))
	if err != nil {
		tb.Fatalf("catalog.Load: %v", err)
	}
	return cat
}

func product(tb testing.TB, cat *catalog.Catalog, id string) catalog.Product {
	tb.Helper()
	p, err := cat.Product(id)
	if err != nil {
		tb.Fatalf("Product(%q): %v", id, err)
	}
	return p
}

// newCart returns a cart holding a copy of lines (FromLines keeps the slice it
// is given, and the table's lines must not change).
func newCart(tb testing.TB, lines []cart.Line) cart.Cart {
	tb.Helper()
	c, err := cart.FromLines(slices.Clone(lines))
	if err != nil {
		tb.Fatalf("FromLines(%v): %v", lines, err)
	}
	return c
}

// fullLines returns MaxLines lines of p01..p50, one copy each.
func fullLines() []cart.Line {
	lines := make([]cart.Line, cart.MaxLines)
	for i := range lines {
		lines[i] = cart.Line{ProductID: fmt.Sprintf("p%02d", i+1), Quantity: 1}
	}
	return lines
}

// withLine returns lines with l set: replaced in place, or appended.
func withLine(lines []cart.Line, l cart.Line) []cart.Line {
	out := slices.Clone(lines)
	for i := range out {
		if out[i].ProductID == l.ProductID {
			out[i] = l
			return out
		}
	}
	return append(out, l)
}

// checkRefusal checks that err is a *cart.Error for sentinel whose message
// is a sentence containing each of msgs.
func checkRefusal(tb testing.TB, err, sentinel error, msgs ...string) {
	tb.Helper()
	if !errors.Is(err, sentinel) {
		tb.Fatalf("err = %v, want one matching %v", err, sentinel)
	}
	var ce *cart.Error
	if !errors.As(err, &ce) {
		tb.Fatalf("err = %T %v, want a *cart.Error", err, err)
	}
	if ce.Unwrap() != sentinel {
		tb.Errorf("Unwrap() = %v, want %v", ce.Unwrap(), sentinel)
	}
	checkSentence(tb, err.Error())
	for _, m := range msgs {
		if !strings.Contains(err.Error(), m) {
			tb.Errorf("message %q does not contain %q", err.Error(), m)
		}
	}
}

// checkSentence checks that msg reads as a sentence for a person.
func checkSentence(tb testing.TB, msg string) {
	tb.Helper()
	if msg == "" {
		tb.Fatal("empty message")
	}
	if r := []rune(msg)[0]; !unicode.IsUpper(r) {
		tb.Errorf("message %q does not start with a capital letter", msg)
	}
	if !strings.HasSuffix(msg, ".") {
		tb.Errorf("message %q does not end with a full stop", msg)
	}
	if strings.Contains(msg, "cart:") {
		tb.Errorf("message %q carries a package prefix", msg)
	}
}

type changeTest struct {
	name    string
	start   []cart.Line
	id      string
	qty     int
	want    []cart.Line // the lines after the change; ignored when wantErr is set (the cart must be unchanged)
	wantErr error
	wantMsg []string // substrings of the error message
}

func runChangeTests(t *testing.T, tests []changeTest, change func(c *cart.Cart, p catalog.Product, qty int) error) {
	t.Helper()
	cat := testCatalog(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCart(t, tt.start)
			err := change(&c, product(t, cat, tt.id), tt.qty)
			if tt.wantErr != nil {
				checkRefusal(t, err, tt.wantErr, tt.wantMsg...)
				if got := c.Lines(); !slices.Equal(got, tt.start) {
					t.Errorf("refused change changed the cart: lines = %v, want %v", got, tt.start)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if got := c.Lines(); !slices.Equal(got, tt.want) {
				t.Errorf("lines = %v, want %v", got, tt.want)
			}
			if c.Len() != len(tt.want) {
				t.Errorf("Len() = %d, want %d", c.Len(), len(tt.want))
			}
		})
	}
}

func TestAdd(t *testing.T) {
	full := fullLines()
	tests := []changeTest{
		{name: "new line in empty cart", id: "many", qty: 1, want: []cart.Line{{"many", 1}}},
		{name: "new line appended at end", start: []cart.Line{{"two", 1}, {"p01", 4}}, id: "many", qty: 3,
			want: []cart.Line{{"two", 1}, {"p01", 4}, {"many", 3}}},
		{name: "existing line keeps its position", start: []cart.Line{{"many", 1}, {"two", 1}, {"p01", 1}}, id: "many", qty: 2,
			want: []cart.Line{{"many", 3}, {"two", 1}, {"p01", 1}}},
		{name: "99 at once", id: "many", qty: 99, want: []cart.Line{{"many", 99}}},
		{name: "98 plus 1 reaches 99", start: []cart.Line{{"many", 98}}, id: "many", qty: 1, want: []cart.Line{{"many", 99}}},
		{name: "up to stock 2", start: []cart.Line{{"two", 1}}, id: "two", qty: 1, want: []cart.Line{{"two", 2}}},
		{name: "the only copy", id: "one", qty: 1, want: []cart.Line{{"one", 1}}},
		{name: "existing line of a full cart", start: full, id: "p50", qty: 5, want: withLine(full, cart.Line{"p50", 6})},
		{name: "49 lines take a 50th", start: full[:49], id: "many", qty: 1, want: append(slices.Clone(full[:49]), cart.Line{"many", 1})},

		{name: "quantity 0", start: []cart.Line{{"many", 1}}, id: "many", qty: 0, wantErr: cart.ErrInvalidQuantity, wantMsg: []string{"99"}},
		{name: "quantity -1", start: []cart.Line{{"many", 1}}, id: "many", qty: -1, wantErr: cart.ErrInvalidQuantity},
		{name: "quantity 100", start: []cart.Line{{"many", 1}}, id: "many", qty: 100, wantErr: cart.ErrInvalidQuantity},
		{name: "quantity 100 in empty cart", id: "many", qty: 100, wantErr: cart.ErrInvalidQuantity},
		{name: "98 plus 2 exceeds 99", start: []cart.Line{{"many", 98}}, id: "many", qty: 2, wantErr: cart.ErrInvalidQuantity,
			wantMsg: []string{"Many Title", "98"}},
		{name: "1 plus 99 exceeds 99", start: []cart.Line{{"many", 1}}, id: "many", qty: 99, wantErr: cart.ErrInvalidQuantity},

		{name: "out of stock", id: "out", qty: 1, wantErr: cart.ErrInsufficientStock,
			wantMsg: []string{"Out Title is out of stock."}},
		{name: "stock 2, add 3", id: "two", qty: 3, wantErr: cart.ErrInsufficientStock,
			wantMsg: []string{"Only 2 copies of Two Title are in stock."}},
		{name: "stock 1, add 2", id: "one", qty: 2, wantErr: cart.ErrInsufficientStock,
			wantMsg: []string{"Only 1 copy of One Title is in stock."}},
		{name: "stock 2, have 1, add 2", start: []cart.Line{{"two", 1}}, id: "two", qty: 2, wantErr: cart.ErrInsufficientStock,
			wantMsg: []string{"Only 2 copies of Two Title are in stock.", "already has 1"}},
		{name: "stock 1, have 1, add 1", start: []cart.Line{{"p01", 2}, {"one", 1}}, id: "one", qty: 1, wantErr: cart.ErrInsufficientStock,
			wantMsg: []string{"Only 1 copy of One Title is in stock.", "already has 1"}},

		{name: "51st line", start: full, id: "many", qty: 1, wantErr: cart.ErrFull, wantMsg: []string{"50"}},
		{name: "51st line via p51", start: full, id: "p51", qty: 1, wantErr: cart.ErrFull},

		// First failure wins: quantity, then stock, then line count.
		{name: "order: quantity 100 out of stock", id: "out", qty: 100, wantErr: cart.ErrInvalidQuantity},
		{name: "order: quantity 0 out of stock", id: "out", qty: 0, wantErr: cart.ErrInvalidQuantity},
		{name: "order: line over 99 beats stock", start: []cart.Line{{"two", 98}}, id: "two", qty: 2, wantErr: cart.ErrInvalidQuantity},
		{name: "order: quantity 0 on full cart", start: full, id: "many", qty: 0, wantErr: cart.ErrInvalidQuantity},
		{name: "order: quantity 100 on full cart", start: full, id: "many", qty: 100, wantErr: cart.ErrInvalidQuantity},
		{name: "order: out of stock on full cart", start: full, id: "out", qty: 1, wantErr: cart.ErrInsufficientStock},
		{name: "order: over stock on full cart", start: full, id: "two", qty: 3, wantErr: cart.ErrInsufficientStock},
		{name: "order: existing line over stock on full cart", start: withLine(full[:49], cart.Line{"two", 2}), id: "two", qty: 1,
			wantErr: cart.ErrInsufficientStock, wantMsg: []string{"already has 2"}},
	}
	runChangeTests(t, tests, func(c *cart.Cart, p catalog.Product, qty int) error { return c.Add(p, qty) })
}

func TestSet(t *testing.T) {
	full := fullLines()
	tests := []changeTest{
		{name: "0 removes the line, others keep order", start: []cart.Line{{"p01", 1}, {"many", 3}, {"p02", 2}}, id: "many", qty: 0,
			want: []cart.Line{{"p01", 1}, {"p02", 2}}},
		{name: "0 on an absent line", start: []cart.Line{{"p01", 1}}, id: "many", qty: 0, want: []cart.Line{{"p01", 1}}},
		{name: "0 on an empty cart", id: "many", qty: 0, want: nil},
		{name: "0 on an absent line of a full cart", start: full, id: "many", qty: 0, want: full},
		{name: "0 on an out-of-stock line", start: []cart.Line{{"out", 3}}, id: "out", qty: 0, want: nil},
		{name: "exact quantity, lower", start: []cart.Line{{"many", 5}, {"p01", 1}}, id: "many", qty: 2,
			want: []cart.Line{{"many", 2}, {"p01", 1}}},
		{name: "exact quantity, higher", start: []cart.Line{{"many", 5}, {"p01", 1}}, id: "many", qty: 99,
			want: []cart.Line{{"many", 99}, {"p01", 1}}},
		{name: "new line at the end", start: []cart.Line{{"p01", 1}, {"p02", 1}}, id: "two", qty: 2,
			want: []cart.Line{{"p01", 1}, {"p02", 1}, {"two", 2}}},
		{name: "existing line of a full cart", start: full, id: "p01", qty: 7, want: withLine(full, cart.Line{"p01", 7})},
		{name: "lower a line above stock", start: []cart.Line{{"two", 5}}, id: "two", qty: 2, want: []cart.Line{{"two", 2}}},

		{name: "quantity -1", start: []cart.Line{{"many", 1}}, id: "many", qty: -1, wantErr: cart.ErrInvalidQuantity, wantMsg: []string{"99"}},
		{name: "quantity 100", start: []cart.Line{{"many", 1}}, id: "many", qty: 100, wantErr: cart.ErrInvalidQuantity},
		{name: "over stock 2", start: []cart.Line{{"two", 1}}, id: "two", qty: 3, wantErr: cart.ErrInsufficientStock,
			wantMsg: []string{"Only 2 copies of Two Title are in stock."}},
		{name: "over stock 1", id: "one", qty: 2, wantErr: cart.ErrInsufficientStock,
			wantMsg: []string{"Only 1 copy of One Title is in stock."}},
		{name: "out of stock", id: "out", qty: 1, wantErr: cart.ErrInsufficientStock, wantMsg: []string{"out of stock"}},
		{name: "51st line", start: full, id: "many", qty: 1, wantErr: cart.ErrFull},

		{name: "order: quantity 100 out of stock", id: "out", qty: 100, wantErr: cart.ErrInvalidQuantity},
		{name: "order: quantity -1 on full cart", start: full, id: "many", qty: -1, wantErr: cart.ErrInvalidQuantity},
		{name: "order: over stock on full cart", start: full, id: "two", qty: 3, wantErr: cart.ErrInsufficientStock},
		{name: "order: out of stock on full cart", start: full, id: "out", qty: 1, wantErr: cart.ErrInsufficientStock},
	}
	runChangeTests(t, tests, func(c *cart.Cart, p catalog.Product, qty int) error { return c.Set(p, qty) })
}

func TestAddFillsToMaxLines(t *testing.T) {
	cat := testCatalog(t)
	var c cart.Cart
	for i := 1; i <= cart.MaxLines; i++ {
		if err := c.Add(product(t, cat, fmt.Sprintf("p%02d", i)), 1); err != nil {
			t.Fatalf("Add of line %d: %v", i, err)
		}
	}
	if c.Len() != cart.MaxLines {
		t.Fatalf("Len() = %d, want %d", c.Len(), cart.MaxLines)
	}
	for _, id := range []string{"p51", "p60", "many"} {
		checkRefusal(t, c.Add(product(t, cat, id), 1), cart.ErrFull)
		checkRefusal(t, c.Set(product(t, cat, id), 1), cart.ErrFull)
	}
	if !slices.Equal(c.Lines(), fullLines()) {
		t.Errorf("lines = %v, want %v", c.Lines(), fullLines())
	}
	// Making room lets a new line in, at the end.
	if !c.Remove("p01") {
		t.Fatal("Remove(p01) = false")
	}
	if err := c.Add(product(t, cat, "p51"), 1); err != nil {
		t.Fatalf("Add after Remove: %v", err)
	}
	if got := c.Lines()[cart.MaxLines-1]; got != (cart.Line{"p51", 1}) {
		t.Errorf("last line = %v, want p51", got)
	}
}

func TestQuantity(t *testing.T) {
	c := newCart(t, []cart.Line{{"many", 3}, {"two", 1}})
	tests := []struct {
		name string
		id   string
		want int
	}{
		{name: "first line", id: "many", want: 3},
		{name: "second line", id: "two", want: 1},
		{name: "absent", id: "one", want: 0},
		{name: "empty id", id: "", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Quantity(tt.id); got != tt.want {
				t.Errorf("Quantity(%q) = %d, want %d", tt.id, got, tt.want)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	start := []cart.Line{{"p01", 1}, {"p02", 2}, {"p03", 3}, {"p04", 4}}
	tests := []struct {
		name  string
		start []cart.Line
		id    string
		want  bool
		lines []cart.Line
	}{
		{name: "first", start: start, id: "p01", want: true, lines: []cart.Line{{"p02", 2}, {"p03", 3}, {"p04", 4}}},
		{name: "middle", start: start, id: "p03", want: true, lines: []cart.Line{{"p01", 1}, {"p02", 2}, {"p04", 4}}},
		{name: "last", start: start, id: "p04", want: true, lines: []cart.Line{{"p01", 1}, {"p02", 2}, {"p03", 3}}},
		{name: "only", start: []cart.Line{{"p01", 1}}, id: "p01", want: true, lines: nil},
		{name: "absent", start: start, id: "p09", want: false, lines: start},
		{name: "empty cart", id: "p01", want: false, lines: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCart(t, tt.start)
			if got := c.Remove(tt.id); got != tt.want {
				t.Errorf("Remove(%q) = %v, want %v", tt.id, got, tt.want)
			}
			if !slices.Equal(c.Lines(), tt.lines) {
				t.Errorf("lines = %v, want %v", c.Lines(), tt.lines)
			}
			if c.Quantity(tt.id) != 0 {
				t.Errorf("Quantity(%q) = %d after Remove", tt.id, c.Quantity(tt.id))
			}
			if c.Remove(tt.id) {
				t.Errorf("second Remove(%q) = true", tt.id)
			}
		})
	}
}

func TestClear(t *testing.T) {
	cat := testCatalog(t)
	c := newCart(t, fullLines())
	c.Clear()
	if c.Len() != 0 || len(c.Lines()) != 0 {
		t.Fatalf("after Clear: Len() = %d, lines = %v", c.Len(), c.Lines())
	}
	if c.Quantity("p01") != 0 {
		t.Errorf("Quantity(p01) = %d after Clear", c.Quantity("p01"))
	}
	if err := c.Add(product(t, cat, "many"), 2); err != nil {
		t.Fatalf("Add after Clear: %v", err)
	}
	if want := []cart.Line{{"many", 2}}; !slices.Equal(c.Lines(), want) {
		t.Errorf("lines = %v, want %v", c.Lines(), want)
	}
}

func TestClone(t *testing.T) {
	cat := testCatalog(t)
	start := []cart.Line{{"many", 1}, {"two", 1}, {"p01", 5}}
	tests := []struct {
		name   string
		change func(tb testing.TB, c *cart.Cart)
	}{
		{name: "add to existing line", change: func(tb testing.TB, c *cart.Cart) {
			tb.Helper()
			if err := c.Add(product(tb, cat, "many"), 4); err != nil {
				tb.Fatal(err)
			}
		}},
		{name: "add a new line", change: func(tb testing.TB, c *cart.Cart) {
			tb.Helper()
			if err := c.Add(product(tb, cat, "p02"), 1); err != nil {
				tb.Fatal(err)
			}
		}},
		{name: "set existing line", change: func(tb testing.TB, c *cart.Cart) {
			tb.Helper()
			if err := c.Set(product(tb, cat, "p01"), 9); err != nil {
				tb.Fatal(err)
			}
		}},
		{name: "remove first line", change: func(tb testing.TB, c *cart.Cart) {
			tb.Helper()
			if !c.Remove("many") {
				tb.Fatal("Remove = false")
			}
		}},
		{name: "remove last line then add", change: func(tb testing.TB, c *cart.Cart) {
			tb.Helper()
			c.Remove("p01")
			if err := c.Add(product(tb, cat, "p03"), 2); err != nil {
				tb.Fatal(err)
			}
		}},
		{name: "clear", change: func(tb testing.TB, c *cart.Cart) { c.Clear() }},
	}
	for _, tt := range tests {
		t.Run(tt.name+" on the clone", func(t *testing.T) {
			orig := newCart(t, start)
			clone := orig.Clone()
			tt.change(t, &clone)
			if !slices.Equal(orig.Lines(), start) {
				t.Errorf("original lines = %v, want %v", orig.Lines(), start)
			}
		})
		t.Run(tt.name+" on the original", func(t *testing.T) {
			orig := newCart(t, start)
			clone := orig.Clone()
			tt.change(t, &orig)
			if !slices.Equal(clone.Lines(), start) {
				t.Errorf("clone lines = %v, want %v", clone.Lines(), start)
			}
		})
	}

	t.Run("empty", func(t *testing.T) {
		var c cart.Cart
		clone := c.Clone()
		if err := clone.Add(product(t, cat, "many"), 1); err != nil {
			t.Fatal(err)
		}
		if c.Len() != 0 {
			t.Errorf("original Len() = %d, want 0", c.Len())
		}
	})
}

func TestFromLines(t *testing.T) {
	id64 := strings.Repeat("a", 64)
	var fifty, fiftyOne []cart.Line
	for i := range 51 {
		l := cart.Line{ProductID: fmt.Sprintf("p%02d", i+1), Quantity: i%cart.MaxQuantity + 1}
		if i < 50 {
			fifty = append(fifty, l)
		}
		fiftyOne = append(fiftyOne, l)
	}
	tests := []struct {
		name    string
		lines   []cart.Line
		wantErr bool
	}{
		{name: "nil", lines: nil},
		{name: "one line", lines: []cart.Line{{"many", 1}}},
		{name: "quantities 1 and 99", lines: []cart.Line{{"a", 1}, {"b", 99}}},
		{name: "50 lines", lines: fifty},
		{name: "id of 64 bytes", lines: []cart.Line{{id64, 3}}},
		{name: "id not in any catalog", lines: []cart.Line{{"gone", 3}}},
		{name: "51 lines", lines: fiftyOne, wantErr: true},
		{name: "duplicate id", lines: []cart.Line{{"a", 1}, {"b", 1}, {"a", 2}}, wantErr: true},
		{name: "empty id", lines: []cart.Line{{"a", 1}, {"", 1}}, wantErr: true},
		{name: "id of 65 bytes", lines: []cart.Line{{id64 + "a", 1}}, wantErr: true},
		{name: "quantity 0", lines: []cart.Line{{"a", 0}}, wantErr: true},
		{name: "quantity 100", lines: []cart.Line{{"a", 1}, {"b", 100}}, wantErr: true},
		{name: "quantity -1", lines: []cart.Line{{"a", -1}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cart.FromLines(slices.Clone(tt.lines))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("FromLines(%v) = %v, want an error", tt.lines, c.Lines())
				}
				if c.Len() != 0 {
					t.Errorf("refused FromLines returned a cart of %d lines", c.Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("FromLines: %v", err)
			}
			if !slices.Equal(c.Lines(), tt.lines) {
				t.Errorf("lines = %v, want %v", c.Lines(), tt.lines)
			}
		})
	}
}

func TestPrice(t *testing.T) {
	cat := testCatalog(t)
	tests := []struct {
		name  string
		lines []cart.Line
		want  []cart.PricedLine // Product given by id only; filled from cat
		count int
		sub   int64
	}{
		{name: "empty", lines: nil, want: nil},
		{name: "one line", lines: []cart.Line{{"many", 3}},
			want: []cart.PricedLine{{Product: catalog.Product{ID: "many"}, Quantity: 3, LineTotal: 4497}}, count: 3, sub: 4497},
		{name: "several lines in cart order", lines: []cart.Line{{"two", 2}, {"many", 1}, {"p07", 10}},
			want: []cart.PricedLine{
				{Product: catalog.Product{ID: "two"}, Quantity: 2, LineTotal: 3398},
				{Product: catalog.Product{ID: "many"}, Quantity: 1, LineTotal: 1499},
				{Product: catalog.Product{ID: "p07"}, Quantity: 10, LineTotal: 1070},
			}, count: 13, sub: 5967},
		{name: "lines not in the catalog are skipped", lines: []cart.Line{{"gone", 5}, {"many", 2}, {"also-gone", 1}},
			want: []cart.PricedLine{{Product: catalog.Product{ID: "many"}, Quantity: 2, LineTotal: 2998}}, count: 2, sub: 2998},
		{name: "only unknown lines", lines: []cart.Line{{"gone", 5}}, want: nil},
		{name: "large integer totals", lines: []cart.Line{{"dear", 99}, {"many", 99}},
			want: []cart.PricedLine{
				{Product: catalog.Product{ID: "dear"}, Quantity: 99, LineTotal: 99_000_000},
				{Product: catalog.Product{ID: "many"}, Quantity: 99, LineTotal: 148_401},
			}, count: 198, sub: 99_148_401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCart(t, tt.lines)
			s := c.Price(cat)
			if s.Currency != "USD" {
				t.Errorf("Currency = %q, want USD", s.Currency)
			}
			if s.ItemCount != tt.count {
				t.Errorf("ItemCount = %d, want %d", s.ItemCount, tt.count)
			}
			if s.Subtotal != tt.sub {
				t.Errorf("Subtotal = %d, want %d", s.Subtotal, tt.sub)
			}
			if len(s.Lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d: %+v", len(s.Lines), len(tt.want), s.Lines)
			}
			for i, w := range tt.want {
				w.Product = product(t, cat, w.Product.ID)
				if s.Lines[i] != w {
					t.Errorf("line %d = %+v, want %+v", i, s.Lines[i], w)
				}
				if s.Lines[i].LineTotal != s.Lines[i].Product.Price*int64(s.Lines[i].Quantity) {
					t.Errorf("line %d total %d is not price × quantity", i, s.Lines[i].LineTotal)
				}
			}
			if !slices.Equal(c.Lines(), tt.lines) {
				t.Errorf("Price changed the cart: %v", c.Lines())
			}
		})
	}
}

// TestErrorMessages checks every refusal reads as a sentence and unwraps to
// its sentinel.
func TestErrorMessages(t *testing.T) {
	cat := testCatalog(t)
	full := newCart(t, fullLines())
	tests := []struct {
		name     string
		err      func() error
		sentinel error
	}{
		{name: "add invalid", err: func() error { var c cart.Cart; return c.Add(product(t, cat, "many"), 0) }, sentinel: cart.ErrInvalidQuantity},
		{name: "add over 99", err: func() error {
			c := newCart(t, []cart.Line{{"many", 99}})
			return c.Add(product(t, cat, "many"), 1)
		}, sentinel: cart.ErrInvalidQuantity},
		{name: "set invalid", err: func() error { var c cart.Cart; return c.Set(product(t, cat, "many"), 100) }, sentinel: cart.ErrInvalidQuantity},
		{name: "out of stock", err: func() error { var c cart.Cart; return c.Add(product(t, cat, "out"), 1) }, sentinel: cart.ErrInsufficientStock},
		{name: "stock with have", err: func() error {
			c := newCart(t, []cart.Line{{"two", 2}})
			return c.Add(product(t, cat, "two"), 1)
		}, sentinel: cart.ErrInsufficientStock},
		{name: "full", err: func() error { c := full.Clone(); return c.Add(product(t, cat, "many"), 1) }, sentinel: cart.ErrFull},
		{name: "InvalidQuantity helper", err: func() error { return cart.InvalidQuantity("The quantity must be a number.") }, sentinel: cart.ErrInvalidQuantity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			checkRefusal(t, err, tt.sentinel)
			for _, other := range []error{cart.ErrInvalidQuantity, cart.ErrInsufficientStock, cart.ErrFull} {
				if other != tt.sentinel && errors.Is(err, other) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
			wrapped := fmt.Errorf("handler: %w", err)
			if !errors.Is(wrapped, tt.sentinel) {
				t.Errorf("wrapped error does not match %v", tt.sentinel)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	cat := testCatalog(t)
	l := func(id string, q int) cart.Line { return cart.Line{ProductID: id, Quantity: q} }
	tests := []struct {
		name           string
		account, guest []cart.Line
		want           []cart.Line
		notices        []string // a part of each notice, in order
	}{
		{name: "both empty"},
		{name: "guest into empty", guest: []cart.Line{l("many", 2), l("one", 1)}, want: []cart.Line{l("many", 2), l("one", 1)}},
		{name: "empty guest", account: []cart.Line{l("many", 2)}, want: []cart.Line{l("many", 2)}},
		{
			name:    "account first, then the guest's new lines in their order; sums",
			account: []cart.Line{l("p01", 1), l("many", 3)},
			guest:   []cart.Line{l("p03", 1), l("many", 4), l("p02", 2)},
			want:    []cart.Line{l("p01", 1), l("many", 7), l("p03", 1), l("p02", 2)},
		},
		{
			name: "stock cuts the sum", account: []cart.Line{l("two", 1)}, guest: []cart.Line{l("two", 2)},
			want: []cart.Line{l("two", 2)}, notices: []string{"Only 2 copies of Two Title are in stock; your cart has 2."},
		},
		{
			name: "stock of one", account: []cart.Line{l("one", 1)}, guest: []cart.Line{l("one", 1)},
			want: []cart.Line{l("one", 1)}, notices: []string{"Only 1 copy of One Title is in stock; your cart has 1."},
		},
		{
			name: "99 per line", account: []cart.Line{l("many", 60)}, guest: []cart.Line{l("many", 60)},
			want: []cart.Line{l("many", 99)}, notices: []string{"at most 99 copies of Many Title; your cart has 99."},
		},
		{
			name: "50 lines", account: fullLines()[:49], guest: []cart.Line{l("many", 1), l("p55", 1), l("p01", 2), l("p56", 1)},
			want:    append(withLine(fullLines()[:49], l("p01", 3)), l("many", 1)),
			notices: []string{"at most 50 different books, so these were not added: Title 55, Title 56."},
		},
		{
			name: "out of stock", guest: []cart.Line{l("out", 1), l("many", 1)},
			want: []cart.Line{l("many", 1)}, notices: []string{"Out Title is out of stock"},
		},
		{name: "unknown product dropped", guest: []cart.Line{l("gone", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCart(t, tt.account)
			notices := c.Merge(newCart(t, tt.guest), cat)
			if !slices.Equal(c.Lines(), tt.want) && !(len(c.Lines()) == 0 && len(tt.want) == 0) {
				t.Errorf("lines = %v, want %v", c.Lines(), tt.want)
			}
			if len(notices) != len(tt.notices) {
				t.Fatalf("notices = %q, want %d like %q", notices, len(tt.notices), tt.notices)
			}
			for i, n := range notices {
				checkSentence(t, n)
				if !strings.Contains(n, tt.notices[i]) {
					t.Errorf("notice %d = %q, want it to say %q", i, n, tt.notices[i])
				}
			}
		})
	}
}
