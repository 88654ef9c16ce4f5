package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// config is the contract's configuration, read from the environment.
type config struct {
	addr         string        // ADDR
	store        string        // SESSION_STORE: file, memory or redis
	dataDir      string        // DATA_DIR
	redisURL     string        // REDIS_URL
	clusterAddrs []string      // REDIS_CLUSTER_ADDRS
	ttl          time.Duration // SESSION_TTL
	secure       bool          // COOKIE_SECURE
	catalogFile  string        // CATALOG_FILE
	debugAddr    string        // DEBUG_ADDR: net/http/pprof on a loopback listener, off when empty
	bareTTL      time.Duration // EMPTY_SESSION_TTL: the lifetime of a session that holds only visits
	sessionMax   int           // SESSION_MAX: records the embedded stores hold at most
	newPerIP     int           // NEW_SESSIONS_PER_IP: new sessions per client per minute; 0: no limit
	connsPerIP   int           // MAX_CONNS_PER_IP: open connections per client address; 0: no limit
	proxies      proxies       // TRUSTED_PROXIES
	hashCost     int           // PASSWORD_COST: bcrypt's cost; 0: its default, 10 (tests lower it)
	hashQueue    int           // password checks waiting at most; 0: account's default (tests lower it)
}

// loadConfig reads and checks the configuration. Its error is one line that
// names the variable at fault.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		addr:        or(getenv("ADDR"), ":8080"),
		dataDir:     or(getenv("DATA_DIR"), "./data"),
		redisURL:    strings.TrimSpace(getenv("REDIS_URL")),
		catalogFile: getenv("CATALOG_FILE"),
		debugAddr:   getenv("DEBUG_ADDR"),
		ttl:         336 * time.Hour,
		bareTTL:     24 * time.Hour,
		sessionMax:  1_000_000,
		newPerIP:    120,
		connsPerIP:  256,
	}
	if v := strings.TrimSpace(getenv("REDIS_CLUSTER_ADDRS")); v != "" {
		for _, a := range strings.Split(v, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if !strings.Contains(a, ":") {
				return c, fmt.Errorf("REDIS_CLUSTER_ADDRS: %q is not host:port", a)
			}
			c.clusterAddrs = append(c.clusterAddrs, a)
		}
		if len(c.clusterAddrs) == 0 {
			return c, errors.New("REDIS_CLUSTER_ADDRS: no address in " + strconv.Quote(v))
		}
	}
	if c.redisURL != "" && len(c.clusterAddrs) > 0 {
		return c, errors.New("REDIS_URL and REDIS_CLUSTER_ADDRS are both set: set one")
	}
	redis := c.redisURL != "" || len(c.clusterAddrs) > 0

	switch s := strings.TrimSpace(getenv("SESSION_STORE")); s {
	case "":
		c.store = "file"
		if redis {
			c.store = "redis"
		}
	case "file", "memory":
		c.store = s
	case "redis":
		if !redis {
			return c, errors.New("SESSION_STORE=redis needs REDIS_URL or REDIS_CLUSTER_ADDRS")
		}
		c.store = s
	default:
		return c, fmt.Errorf("SESSION_STORE: unknown store %q (want file, memory or redis)", s)
	}

	if v := strings.TrimSpace(getenv("SESSION_TTL")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("SESSION_TTL: %q is not a duration such as 336h or 30m", v)
		}
		if d < time.Second {
			return c, fmt.Errorf("SESSION_TTL: %s is too short (at least 1s)", v)
		}
		c.ttl = d
	}
	if v := strings.TrimSpace(getenv("EMPTY_SESSION_TTL")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return c, fmt.Errorf("EMPTY_SESSION_TTL: %q is not a duration of at least 1s, such as 24h", v)
		}
		c.bareTTL = d
	}
	c.bareTTL = min(c.bareTTL, c.ttl)
	for _, n := range []struct {
		name string
		v    *int
		min  int
	}{
		{"SESSION_MAX", &c.sessionMax, 1},
		{"NEW_SESSIONS_PER_IP", &c.newPerIP, 0},
		{"MAX_CONNS_PER_IP", &c.connsPerIP, 0},
	} {
		if v := strings.TrimSpace(getenv(n.name)); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < n.min {
				return c, fmt.Errorf("%s: %q is not a whole number of at least %d", n.name, v, n.min)
			}
			*n.v = i
		}
	}
	if v := strings.TrimSpace(getenv("PASSWORD_COST")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4 || n > 16 {
			return c, fmt.Errorf("PASSWORD_COST: %q is not a bcrypt cost from 4 to 16 (default 10; below 10 only for tests)", v)
		}
		c.hashCost = n
	}
	if v := getenv("TRUSTED_PROXIES"); strings.TrimSpace(v) != "" {
		ps, err := parseProxies(v)
		if err != nil {
			return c, fmt.Errorf("TRUSTED_PROXIES: %w", err)
		}
		c.proxies = ps
	}
	if v := strings.TrimSpace(getenv("COOKIE_SECURE")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("COOKIE_SECURE: %q is not true or false", v)
		}
		c.secure = b
	}
	if c.debugAddr != "" && !loopback(c.debugAddr) {
		return c, fmt.Errorf("DEBUG_ADDR: %q must be a loopback address such as 127.0.0.1:6060 (pprof is not for the open network)", c.debugAddr)
	}
	return c, nil
}

func loopback(addr string) bool {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return false
	}
	host := strings.Trim(addr[:i], "[]")
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

func or(v, def string) string {
	if v = strings.TrimSpace(v); v == "" {
		return def
	}
	return v
}
