package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tote/session/redisstore/redistest"
)

// TestMain lets a test run tote as a separate process (TOTE_AS_MAIN=1), so
// that it can be killed with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("TOTE_AS_MAIN") == "1" {
		if err := run(context.Background(), nil, os.Getenv, os.Stdout); err != nil {
			os.Stderr.WriteString("tote: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestKilledMidChange: a tote process killed with SIGKILL while it changes a
// session leaves nothing behind that blocks the shopper (no lock, no
// half-written session), and loses none of the changes it answered 200.
func TestKilledMidChange(t *testing.T) {
	stores := []struct {
		name string
		env  func(t *testing.T) []string
	}{
		{"file", func(t *testing.T) []string { return []string{"DATA_DIR=" + t.TempDir()} }},
		{"redis", func(t *testing.T) []string { return []string{"REDIS_URL=" + redistest.Start(t).URL()} }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			env := append(st.env(t), "CATALOG_FILE="+deepStock(t))
			proc := startChild(t, nil, env...)
			base := proc.base
			c := &client{tb: t, base: base}
			c.page("/") // visit 1

			// Page views from 16 connections (each counts a visit), and kill
			// tote mid-way.
			var ok atomic.Int64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for i := 0; i < 16; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
						req.AddCookie(&http.Cookie{Name: cookieName, Value: c.cookie})
						res, err := httpClient.Do(req)
						if err != nil {
							return // tote is gone
						}
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode == http.StatusOK {
							ok.Add(1)
						}
					}
				}()
			}
			time.Sleep(300 * time.Millisecond)
			proc.kill()
			close(stop)
			wg.Wait()

			// A new tote on the same store serves the shopper at once.
			var next string
			if st.name == "file" {
				next = startChild(t, nil, env...).base
			} else {
				next = startTote(t, map[string]string{"REDIS_URL": strings.TrimPrefix(env[0], "REDIS_URL="), "CATALOG_FILE": strings.TrimPrefix(env[1], "CATALOG_FILE=")}).base
			}
			c.base = next
			start := time.Now()
			got := c.cart().Visits
			res := c.json(http.MethodPost, "/api/cart/items", `{"product_id":"dune"}`)
			if res.status != http.StatusOK || time.Since(start) > time.Second {
				t.Fatalf("after the kill: add answered %d after %v; want 200 at once", res.status, time.Since(start))
			}
			if got < 1+ok.Load() {
				t.Errorf("%d page views were answered 200 before the kill, but the session counts %d visits (1 before): changes were lost", ok.Load(), got)
			}
			if after := c.cart(); after.quantity("dune") != 1 || after.Visits != got {
				t.Errorf("after the kill an add gave %q with %d visits", lines(after), after.Visits)
			}
			t.Logf("%s: %d page views answered 200 before SIGKILL; the session counted %d visits after it", st.name, ok.Load(), got)
		})
	}
}
