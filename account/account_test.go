package account

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"tote/catalog"
	"tote/session"
	"tote/session/memstore"
)

func TestNormalizeUsername(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"alice", "alice", true},
		{"Alice", "alice", true},
		{"a.b_c-9", "a.b_c-9", true},
		{"abc", "abc", true},
		{strings.Repeat("x", 30), strings.Repeat("x", 30), true},
		{"ab", "", false},
		{strings.Repeat("x", 31), "", false},
		{"al ice", "", false},
		{" alice", "", false},
		{"ålice", "", false},
		{"alice!", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeUsername(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("NormalizeUsername(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
			if err != nil && (!errors.Is(err, ErrInvalidUsername) || err.Error() == "") {
				t.Fatalf("error %v does not match ErrInvalidUsername with a message", err)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name, user, password string
		ok                   bool
	}{
		{"good", "alice", "correct horse battery", true},
		{"8 characters", "alice", "xq7!zk2w", true},
		{"7 characters", "alice", "xq7!zk2", false},
		{"8 characters of 2 bytes", "alice", "éééééééé", true},
		{"128 characters", "alice", strings.Repeat("é", 128), true},
		{"129 characters", "alice", strings.Repeat("é", 129), false},
		{"the username", "alice123", "alice123", false},
		{"the username in capitals", "alice123", "ALICE123", false},
		{"common", "alice", "baseball", false},
		{"common in capitals", "alice", "PASSWORD1", false},
		{"common: 12345678", "alice", "12345678", false},
		{"not UTF-8", "alice", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPassword(tt.user, tt.password)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckPassword(%q, %q) = %v; want ok %v", tt.user, tt.password, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrWeakPassword) {
				t.Fatalf("error %v does not match ErrWeakPassword", err)
			}
			if err != nil && strings.Contains(err.Error(), tt.password) {
				t.Fatalf("the message %q repeats the password", err)
			}
		})
	}
}

func TestCommonList(t *testing.T) {
	lines := strings.Fields(commonPasswords)
	if len(lines) < 1000 {
		t.Fatalf("the list of common passwords has %d entries, want at least 1000", len(lines))
	}
	for _, p := range lines {
		if !Common(p) {
			t.Fatalf("Common(%q) = false for a password on the list", p)
		}
	}
	for _, p := range []string{"123456", "qwerty", "iloveyou", "football"} {
		if !Common(p) {
			t.Errorf("Common(%q) = false", p)
		}
	}
	if Common("correct horse battery") {
		t.Error("a passphrase is on the list")
	}
}

func testHasher() *Hasher { return NewHasher(HasherOptions{Cost: bcrypt.MinCost}) }

func TestHasher(t *testing.T) {
	ctx := context.Background()
	h := testHasher()
	long := strings.Repeat("ü", 128) // 256 bytes: past bcrypt's 72
	for _, pw := range []string{"correct horse", long} {
		hash, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(hash), pw) {
			t.Fatal("the hash holds the password")
		}
		if ok, err := h.Check(ctx, hash, pw); !ok || err != nil {
			t.Errorf("Check(right password) = %v, %v", ok, err)
		}
		if ok, _ := h.Check(ctx, hash, pw[:len(pw)-2]+"x"); ok {
			t.Error("Check(wrong password) = true")
		}
	}
	// Passwords that differ only past bcrypt's 72 bytes are told apart.
	hash, _ := h.Hash(ctx, long)
	if ok, _ := h.Check(ctx, hash, strings.Repeat("ü", 127)+"x"); ok {
		t.Error("a password differing only at the end matched")
	}
	if ok, err := h.Check(ctx, nil, "anything"); ok || err != nil {
		t.Errorf("Check(nil hash) = %v, %v; want false, nil", ok, err)
	}
}

func TestHasherRefusesPastItsQueue(t *testing.T) {
	ctx := context.Background()
	const pause = 50 * time.Millisecond
	h := NewHasher(HasherOptions{Cost: bcrypt.MinCost, Concurrency: 1, Queue: 2, Pause: pause})
	var held []func()
	for range 3 { // one running, two queued... all held here by hand
		release, err := h.enterNow()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	start := time.Now()
	_, err := h.Check(ctx, nil, "x")
	var e *Error
	if !errors.Is(err, ErrOverloaded) || !errors.As(err, &e) || e.Retry <= 0 {
		t.Fatalf("Check with the queue full = %v; want ErrOverloaded with a Retry", err)
	}
	if took := time.Since(start); took < pause {
		t.Errorf("the refusal came after %v; want the pause, %v", took, pause)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	start = time.Now()
	if _, err := h.Hash(gone, "x"); !errors.Is(err, ErrOverloaded) || time.Since(start) >= pause {
		t.Errorf("Hash with the queue full and its context ended: %v after %v; want ErrOverloaded at once", err, time.Since(start))
	}
	for _, release := range held {
		release()
	}
	if _, err := h.Check(ctx, nil, "x"); err != nil {
		t.Fatalf("Check after the queue emptied: %v", err)
	}
}

// enterNow takes a place as enter does, without waiting for a slot to run:
// the test holds places to fill the queue.
func (h *Hasher) enterNow() (func(), error) {
	select {
	case h.waiting <- struct{}{}:
		return func() { <-h.waiting }, nil
	default:
		return nil, errors.New("queue full")
	}
}

func newStores(tb testing.TB, n int) []*Store {
	tb.Helper()
	mem := memstore.New(memstore.Options{})
	tb.Cleanup(func() { mem.Close() })
	h := testHasher()
	out := make([]*Store, n) // instances sharing one store
	for i := range out {
		out[i] = NewStore(session.NewManager(mem, session.Options{}), h)
	}
	return out
}

func TestSignUpAndAuthenticate(t *testing.T) {
	ctx := context.Background()
	s := newStores(t, 1)[0]
	a, err := s.SignUp(ctx, "Alice", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if a.Username != "alice" || a.Created.IsZero() || a.Generation == 0 {
		t.Fatalf("SignUp = %+v", a)
	}
	tests := []struct {
		name, user, password string
		want                 error
	}{
		{"right", "alice", "correct horse", nil},
		{"right, capitals", "ALICE", "correct horse", nil},
		{"wrong password", "alice", "correct horsf", ErrInvalidCredentials},
		{"unknown user", "bob", "correct horse", ErrInvalidCredentials},
		{"invalid username", "b!", "correct horse", ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Authenticate(ctx, tt.user, tt.password)
			if !errors.Is(err, tt.want) || err == nil && got.Username != "alice" {
				t.Fatalf("Authenticate = %+v, %v; want %v", got.Username, err, tt.want)
			}
		})
	}
	// The wrong password and the unknown user get the same message.
	_, e1 := s.Authenticate(ctx, "alice", "nope nope")
	_, e2 := s.Authenticate(ctx, "nobody", "nope nope")
	if e1.Error() != e2.Error() {
		t.Errorf("messages differ: %q and %q", e1, e2)
	}

	for _, tt := range []struct {
		user, password string
		want           error
	}{
		{"alice", "another password", ErrUsernameTaken},
		{"ALICE", "another password", ErrUsernameTaken},
		{"al", "another password", ErrInvalidUsername},
		{"bob", "bob", ErrWeakPassword},
		{"bob", "qwerty123", ErrWeakPassword},
	} {
		if _, err := s.SignUp(ctx, tt.user, tt.password); !errors.Is(err, tt.want) {
			t.Errorf("SignUp(%q) = %v, want %v", tt.user, err, tt.want)
		}
	}
}

// TestSignUpRace: two instances signing up one name at once make one
// account.
func TestSignUpRace(t *testing.T) {
	ctx := context.Background()
	for round := range 10 {
		stores := newStores(t, 2)
		var ok, taken atomic.Int64
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := stores[i].SignUp(ctx, "carol", "password of "+string(rune('a'+i))+"xyz")
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrUsernameTaken):
					taken.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || taken.Load() != 1 {
			t.Fatalf("round %d: %d sign-ups succeeded and %d were refused; want 1 and 1", round, ok.Load(), taken.Load())
		}
	}
}

// TestUpdateLosesNothing: two instances adding to one account's cart at
// once lose no addition.
func TestUpdateLosesNothing(t *testing.T) {
	ctx := context.Background()
	stores := newStores(t, 2)
	if _, err := stores[0].SignUp(ctx, "dave", "long enough pw"); err != nil {
		t.Fatal(err)
	}
	dune, _ := catalog.Default().Product("dune")
	dune.Stock = 1000
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, _, err := stores[i%2].Get(ctx, "dave")
			if err != nil {
				t.Error(err)
				return
			}
			_, err = stores[i%2].Update(ctx, a, func(a *Account) error { return a.Cart.Add(dune, 1) })
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, session.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	a, _, _ := stores[0].Get(ctx, "dave")
	if got := a.Cart.Quantity("dune"); int64(got) != ok.Load() {
		t.Fatalf("%d additions succeeded, the cart has %d", ok.Load(), got)
	}
	gone, _, _ := stores[0].Get(ctx, "dave")
	if err := stores[0].Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	stale := gone
	stale.version = session.NewVersion() // a stale read: Update reads again and finds nothing
	if _, err := stores[0].Update(ctx, stale, func(a *Account) error { return a.Cart.Add(dune, 1) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update of a deleted account: %v, want ErrNotFound", err)
	}
}

func TestThrottle(t *testing.T) {
	ctx := context.Background()
	s := newStores(t, 2)
	now := time.Now()
	for _, st := range s {
		st.now = func() time.Time { return now }
	}
	if _, err := s[0].SignUp(ctx, "erin", "long enough pw"); err != nil {
		t.Fatal(err)
	}
	for i := range MaxFailures {
		if _, err := s[i%2].Authenticate(ctx, "erin", "wrong guess"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	// Counted across instances: the 11th is refused, even with the right
	// password, with a Retry-After within the window.
	_, err := s[1].Authenticate(ctx, "erin", "long enough pw")
	var e *Error
	if !errors.Is(err, ErrTooManyAttempts) || !errors.As(err, &e) || e.Retry <= 0 || e.Retry > FailureWindow {
		t.Fatalf("login after %d failures: %v; want ErrTooManyAttempts with a Retry", MaxFailures, err)
	}
	// Unknown usernames are throttled alike.
	for range MaxFailures {
		s[0].Authenticate(ctx, "ghost", "wrong guess")
	}
	if _, err := s[0].Authenticate(ctx, "ghost", "wrong guess"); !errors.Is(err, ErrTooManyAttempts) {
		t.Fatalf("unknown username after %d failures: %v", MaxFailures, err)
	}
	// Another username is not affected.
	if _, err := s[0].Authenticate(ctx, "frank", "wrong guess"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("another username: %v", err)
	}
	// When the window has passed, the right password works again.
	now = now.Add(FailureWindow + time.Second)
	if _, err := s[0].Authenticate(ctx, "erin", "long enough pw"); err != nil {
		t.Fatalf("login after the window: %v", err)
	}
}
