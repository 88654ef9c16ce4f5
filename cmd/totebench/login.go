package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// login.go: -login, the routes measured again with a pool of logged-in
// sessions.
//
// After a store's guest rows, the same tote signs up an account per
// session of a second pool (POST /api/account from a new visitor, which
// logs the new session in), and adds the same 3 lines, which go to the
// account's cart. Each route is then measured with that pool exactly as
// with the guests'. Sign-up hashes the password, and at bcrypt's default
// cost, 10, 512 sign-ups take half a minute on a 2-core machine: tote runs
// with PASSWORD_COST=4 (loginCost) on every store when -login is on. No
// measured route hashes, so the cost changes nothing in the rows.

// loginCost is tote's PASSWORD_COST (bcrypt's cost) with -login.
const loginCost = 4

// loginTarget is the least rate of a logged-in row over the guest row of
// the same store and route, each over the hello world's in its own runs.
const loginTarget = 0.7

// loginRedisTargets are the most Redis commands per request that a
// logged-in session's request may take, by route: a read (the session and
// the account) and a change (and the account's compare-and-swap).
var loginRedisTargets = map[string]float64{"post": 3, "cart": 2, "page": 3}

// benchUser is the username of the n-th account the benchmark signs up
// with prefix ("bench" for the logged-in pool, "flood" for the login
// flood's): prefix-n.
func benchUser(prefix string, n int) string { return prefix + "-" + strconv.Itoa(n) }

// benchPassword is the password of the benchmark's account user: long
// enough, not the username and on no list of common passwords.
func benchPassword(user string) string { return user + "-totebench-pw" }

// credentialsBody is the JSON body of a sign-up or a login as user, with
// its benchmark password.
func credentialsBody(user string, login bool) string {
	body := map[string]any{"username": user, "password": benchPassword(user)}
	if login {
		body["remember"] = true
	}
	data, _ := json.Marshal(body)
	return string(data)
}

// signUp creates the account user from a new visitor (no cookie), which
// logs the new session in, and returns the session's id. A 503 (tote's
// queue of password checks full) is tried again, 10 times at most.
func (c *client) signUp(user string) (string, error) {
	for try := 0; ; try++ {
		id, err := c.do("POST", "/api/account", "", credentialsBody(user, false), nil)
		var se *statusError
		if errors.As(err, &se) && se.status == http.StatusServiceUnavailable && try < 10 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			return "", err
		}
		if id == "" {
			return "", fmt.Errorf("sign-up of %s: tote set no session cookie", user)
		}
		return id, nil
	}
}

// signUpAll signs up n accounts prefix-0 ... prefix-(n-1), 16 at a time,
// and returns their usernames.
func (c *client) signUpAll(prefix string, n int) ([]string, error) {
	users := make([]string, n)
	err := parallel(n, func(i int) error {
		users[i] = benchUser(prefix, i)
		_, err := c.signUp(users[i])
		return err
	})
	return users, err
}

// createLoginPool signs up n accounts, bench-0 ... bench-(n-1), each from
// a session of its own, adds one copy of each book to each (the account's
// cart), 16 at a time, and returns the sessions' ids.
func (c *client) createLoginPool(n int, books []string) ([]string, error) {
	ids := make([]string, n)
	err := parallel(n, func(i int) error {
		id, err := c.signUp(benchUser("bench", i))
		if err != nil {
			return err
		}
		ids[i], err = c.addLines(id, books)
		return err
	})
	return ids, err
}

// checkLoggedIn checks that the session id is logged in to user with a
// cart of lines copies.
func (c *client) checkLoggedIn(id, user string, lines int) error {
	var cart struct {
		User      *string `json:"user"`
		ItemCount int     `json:"item_count"`
	}
	if _, err := c.do("GET", "/api/cart", id, "", &cart); err != nil {
		return err
	}
	if cart.User == nil || *cart.User != user || cart.ItemCount != lines {
		got := "a guest"
		if cart.User != nil {
			got = *cart.User
		}
		return fmt.Errorf("a logged-in session's cart: user %s with %d items, want %s with %d", got, cart.ItemCount, user, lines)
	}
	return nil
}

// loginPool creates t's pool of logged-in sessions and returns the file of
// their ids.
func (b *bench) loginPool(t *target) (string, error) {
	fmt.Fprintf(b.out, "# %s%s: signing up %d accounts (PASSWORD_COST=%d), 3 lines each ...\n", t.store, t.tag, b.o.sessions, loginCost)
	start := time.Now()
	ids, err := t.client.createLoginPool(b.o.sessions, b.cartBooks)
	if err != nil {
		return "", err
	}
	if err := t.client.checkLoggedIn(ids[0], benchUser("bench", 0), len(b.cartBooks)); err != nil {
		return "", err
	}
	fmt.Fprintf(b.out, "# %s%s: %d accounts in %s\n", t.store, t.tag, len(ids), time.Since(start).Round(10*time.Millisecond))
	idFile := filepath.Join(b.dir, "ids-login-"+t.store+t.tag+".txt")
	return idFile, os.WriteFile(idFile, []byte(strings.Join(ids, "\n")+"\n"), 0o644)
}

// verdict is "held" when ok, else "missed".
func verdict(ok bool) string {
	if ok {
		return "held"
	}
	return "missed"
}

// printLogin compares each logged-in row with the guest row of the same
// store and route: the rate of each over the hello world's in its own runs,
// one over the other (target: at least loginTarget), both p99s, and on
// Redis the logged-in row's commands per request against
// loginRedisTargets.
func printLogin(w io.Writer, rows []row) {
	guest := func(r row) (row, bool) {
		for _, g := range rows {
			if !g.loggedIn && g.store == r.store && g.mode == r.mode {
				return g, true
			}
		}
		return row{}, false
	}
	width, redis := len("store"), false
	for _, r := range rows {
		width = max(width, len(r.store))
		redis = redis || r.loggedIn && r.roundTrips >= 0
	}
	redisHeader := ""
	if redis {
		redisHeader = "redis/req (target)"
	}
	header := false
	for _, r := range rows {
		if !r.loggedIn {
			continue
		}
		g, ok := guest(r)
		if !ok {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nlogged in against guest, same store and route (target: logged-in/guest >= %.2f):\n", loginTarget)
			line := fmt.Sprintf("  %-*s %-22s %8s %8s %6s %9s %9s %9s %-6s %s", width, "store", "route", "guest/s", "login/s", "l/g", "guest p99", "login p99", "ratio l/g", "", redisHeader)
			fmt.Fprintln(w, strings.TrimRight(line, " "))
			header = true
		}
		rel := r.ratio() / g.ratio()
		line := fmt.Sprintf("  %-*s %-22s %8.0f %8.0f %6.2f %9s %9s %9.2f %-6s", width, r.store, r.route, g.res.rps(), r.res.rps(), r.res.rps()/g.res.rps(),
			ms(g.res.percentile(99)), ms(r.res.percentile(99)), rel, verdict(rel >= loginTarget))
		if r.roundTrips >= 0 {
			limit := loginRedisTargets[r.mode]
			line += fmt.Sprintf(" %.2f (at most %.0f) %s", r.roundTrips, limit, verdict(r.roundTrips <= limit+0.005))
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if header {
		fmt.Fprintln(w, "  l/g: login/s over guest/s; ratio l/g, held or missed: the logged-in row's ratio (req/s over the hello world's in its own runs) over the guest row's.")
		if redis {
			fmt.Fprintln(w, "  redis/req: commands a logged-in request sent to Redis (a read: the session and the account; a change: and the account's compare-and-swap).")
		}
	}
}
