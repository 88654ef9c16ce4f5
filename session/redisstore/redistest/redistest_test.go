package redistest_test

import (
	"context"
	"testing"
	"time"

	"tote/session/redisstore/redistest"
)

func TestServerLifecycle(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	if srv.Addr() == "127.0.0.1:6379" {
		t.Fatalf("Start used the default Redis port")
	}
	if want := "redis://" + srv.Addr() + "/0"; srv.URL() != want {
		t.Fatalf("URL() = %q, want %q", srv.URL(), want)
	}
	c := srv.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	srv.ResetStats(t)
	c.Get(ctx, "k")
	c.Get(ctx, "k")
	if got := srv.CommandCalls(t); len(got) != 1 || got["get"] != 2 {
		t.Fatalf("CommandCalls = %v, want map[get:2]", got)
	}

	srv.Stop(t)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("Ping after Stop succeeded")
	}
	srv.Restart(t)
	if n, err := srv.Client(t).Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("after Restart EXISTS k = %d, %v; want 0 (no persistence)", n, err)
	}

	srv.Pause(t)
	hung := srv.Client(t)
	hungCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := hung.Ping(hungCtx).Err(); err == nil {
		t.Fatal("Ping of a paused server succeeded")
	}
	srv.Resume(t)
	if err := srv.Client(t).Ping(ctx).Err(); err != nil {
		t.Fatalf("Ping after Resume: %v", err)
	}
}

func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	if n := len(c.Addrs()); n != 3 {
		t.Fatalf("%d nodes, want 3", n)
	}
}
