package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"tote/session"
	"tote/session/redisstore"
	"tote/session/redisstore/redistest"
)

// TestPipelineManyCallers runs far more concurrent calls than there are
// pipelines, each goroutine a chain of compare-and-swaps and reads on a
// session of its own: every call must return (none stuck in a queue) with
// the right outcome.
func TestPipelineManyCallers(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, redisstore.Options{URL: srv.URL()})
	ctx := context.Background()
	const goroutines, rounds = 96, 60
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("many-", g)
			for v := uint64(0); v < rounds; v++ {
				if err := s.CompareAndSwap(ctx, id, v, session.Write{Version: v + 1, Data: []byte(fmt.Sprint(v + 1)), TTL: time.Minute}); err != nil {
					errs <- fmt.Errorf("%s: swap %d: %w", id, v, err)
					return
				}
				rec, found, err := s.Get(ctx, id)
				if err != nil || !found || rec.Version != v+1 || string(rec.Data) != fmt.Sprint(v+1) {
					errs <- fmt.Errorf("%s: after swap %d: %+v %v %v", id, v, rec, found, err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("calls still waiting after 60 s: a pipeline queue is stuck")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkStoreParallel measures Get and CompareAndSwap from 64
// goroutines, each on sessions of its own: the calls share pipelines.
func BenchmarkStoreParallel(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, redisstore.Options{URL: srv.URL()})
	ctx := context.Background()
	var mu sync.Mutex
	next := 0
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		id := fmt.Sprint("bench-", next)
		next++
		mu.Unlock()
		var version uint64
		data := make([]byte, 120)
		for pb.Next() {
			if err := s.CompareAndSwap(ctx, id, version, session.Write{Version: version + 1, Data: data, TTL: time.Hour}); err != nil {
				b.Error(err)
				return
			}
			version++
			if _, _, err := s.Get(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
