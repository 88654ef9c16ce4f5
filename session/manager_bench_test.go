package session_test

import (
	"context"
	"sync/atomic"
	"testing"

	"tote/session"
	"tote/session/redisstore"
	"tote/session/redisstore/redistest"
)

func redisStore(tb testing.TB) session.Store {
	srv := redistest.Start(tb)
	s, err := redisstore.Open(redisstore.Options{URL: srv.URL()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// benchSessions stores n sessions of a 3-line cart and returns their ids.
func benchSessions(b *testing.B, m *session.Manager, n int) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		s, _, err := m.Update(context.Background(), "", func(d *session.Data) error {
			d.Cart = dataCart(b, 3, 12)
			d.CSRF = "Jq3v0bX9_aZ-Yk2mT7wQeR4uI8oP1sDfJq3v0bX9_aZ"
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = s.ID
	}
	return ids
}

// BenchmarkManager measures Manager.Load (a read: one store Get and a
// Decode) and Manager.Update (a change: Get, Decode, Append and
// CompareAndSwap) of sessions with a 3-line cart on each store, from one
// goroutine, and Update from 64 goroutines each with sessions of its own,
// as tote serves 64 connections (the file store shares fsyncs between
// concurrent writes). The redis store uses a private redis-server.
func BenchmarkManager(b *testing.B) {
	all := append(stores, struct {
		name string
		open func(testing.TB) session.Store
	}{"redis", redisStore})
	ctx := context.Background()
	for _, st := range all {
		b.Run(st.name, func(b *testing.B) {
			m := session.NewManager(st.open(b), session.Options{})
			ids := benchSessions(b, m, 512)
			b.Run("load", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					s, err := m.Load(ctx, ids[i%len(ids)])
					if err != nil || s.ID == "" {
						b.Fatalf("Load: %v, id %q", err, s.ID)
					}
					i++
				}
			})
			b.Run("update", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, saved, err := m.Update(ctx, ids[i%len(ids)], visit); err != nil || !saved {
						b.Fatalf("Update: saved %v, %v", saved, err)
					}
					i++
				}
			})
			b.Run("update-64", func(b *testing.B) {
				var next atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(32) // 64 goroutines on 2 cores
				b.RunParallel(func(pb *testing.PB) {
					// 8 sessions of its own for each goroutine.
					first := int(next.Add(8)) - 8
					i := 0
					for pb.Next() {
						id := ids[(first+i%8)%len(ids)]
						if _, _, err := m.Update(ctx, id, visit); err != nil {
							b.Errorf("Update: %v", err)
							return
						}
						i++
					}
				})
			})
		})
	}
}
