package redisstore

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestClientOptions checks the client settings Open chooses; nothing here
// contacts Redis.
func TestClientOptions(t *testing.T) {
	ours := goredis.Options{
		DialTimeout:           300 * time.Millisecond,
		ReadTimeout:           300 * time.Millisecond,
		WriteTimeout:          300 * time.Millisecond,
		PoolTimeout:           400 * time.Millisecond,
		MaxRetries:            1,
		MinRetryBackoff:       8 * time.Millisecond,
		MaxRetryBackoff:       64 * time.Millisecond,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	}
	tests := []struct {
		name string
		url  string
		want func(o *goredis.Options) // sets what differs from ours
	}{
		{"plain", "redis://127.0.0.1:1/0", func(o *goredis.Options) { o.Addr = "127.0.0.1:1" }},
		{"url keeps address, user, password, database", "redis://alice:pw@10.0.0.9:6380/3", func(o *goredis.Options) {
			o.Addr, o.Username, o.Password, o.DB = "10.0.0.9:6380", "alice", "pw", 3
		}},
		{"query overrides ours", "redis://127.0.0.1:1/0?read_timeout=2s&max_retries=3&pool_timeout=5s", func(o *goredis.Options) {
			o.Addr, o.ReadTimeout, o.MaxRetries, o.PoolTimeout = "127.0.0.1:1", 2*time.Second, 3, 5*time.Second
		}},
		{"query db overrides path", "redis://127.0.0.1:1/3?db=5", func(o *goredis.Options) { o.Addr, o.DB = "127.0.0.1:1", 5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(Options{URL: tt.url})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := s.conn.(*goredis.Client).Options()
			want := ours
			tt.want(&want)
			check := []struct {
				field     string
				got, want any
			}{
				{"Addr", got.Addr, want.Addr},
				{"Username", got.Username, want.Username},
				{"Password", got.Password, want.Password},
				{"DB", got.DB, want.DB},
				{"DialTimeout", got.DialTimeout, want.DialTimeout},
				{"ReadTimeout", got.ReadTimeout, want.ReadTimeout},
				{"WriteTimeout", got.WriteTimeout, want.WriteTimeout},
				{"PoolTimeout", got.PoolTimeout, want.PoolTimeout},
				{"MaxRetries", got.MaxRetries, want.MaxRetries},
				{"MinRetryBackoff", got.MinRetryBackoff, want.MinRetryBackoff},
				{"MaxRetryBackoff", got.MaxRetryBackoff, want.MaxRetryBackoff},
				{"DialerRetries", got.DialerRetries, want.DialerRetries},
				{"ContextTimeoutEnabled", got.ContextTimeoutEnabled, want.ContextTimeoutEnabled},
				{"TLS", got.TLSConfig != nil, false},
			}
			for _, c := range check {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
				}
			}
		})
	}

	t.Run("rediss means TLS", func(t *testing.T) {
		s, err := Open(Options{URL: "rediss://cache.example:6380/0"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tls := s.conn.(*goredis.Client).Options().TLSConfig
		if tls == nil || tls.ServerName != "cache.example" {
			t.Fatalf("TLSConfig = %+v, want one with ServerName cache.example", tls)
		}
	})

	t.Run("cluster", func(t *testing.T) {
		s, err := Open(Options{ClusterAddrs: []string{"127.0.0.1:1", "127.0.0.1:2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got := s.cluster.Options()
		if got.ReadTimeout != ours.ReadTimeout || got.WriteTimeout != ours.WriteTimeout ||
			got.DialTimeout != ours.DialTimeout || got.PoolTimeout != ours.PoolTimeout ||
			got.DialerRetries != 1 || !got.ContextTimeoutEnabled ||
			got.MaxRedirects != 2 || got.MaxRetries != -1 {
			t.Fatalf("cluster options = %+v", got)
		}
	})

	t.Run("prefix", func(t *testing.T) {
		for prefix, want := range map[string]string{"": DefaultPrefix, "x:": "x:"} {
			s, err := Open(Options{URL: "redis://127.0.0.1:1/0", Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			if s.prefix != want {
				t.Errorf("Prefix %q: keys start with %q, want %q", prefix, s.prefix, want)
			}
			s.Close()
		}
	})
}
