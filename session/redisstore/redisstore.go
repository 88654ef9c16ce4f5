// Package redisstore is a session.Store kept in Redis, a single server or a
// Redis Cluster. It is gofiber/storage/redis/v3's Storage on a go-redis
// client built here (so that its timeouts are ours and nothing pings,
// panics or flushes at start); the Storage closes the client. A read is a
// GET, a write a compare-and-swap Lua script, a delete a DEL or a script:
// one command and so one round trip per call, and the commands of
// concurrent calls travel together in pipelines (see pipeline). The
// timeouts are short enough that an unreachable or hung Redis fails each
// call within about a second instead of stalling the request that made it.
//
// Each record is one Redis string under Prefix+key: the 8-byte big-endian
// version followed by the data, set with a millisecond expiry (PX), or none
// for a record that never expires.
package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	fiberredis "github.com/gofiber/storage/redis/v3"
	goredis "github.com/redis/go-redis/v9"

	"tote/session"
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty: a
// session is under tote:session:<id>, an account under tote:account:<name>.
const DefaultPrefix = "tote:"

// The client settings that bound how long a call can take when Redis is down
// or hung. A call makes at most two attempts (MaxRetries 1); an attempt is one
// dial (DialerRetries 1) and one write and read, each capped at 300 ms, so a
// stopped Redis (connection refused) fails at once and a hung one fails after
// about 2 × 300 ms plus a few milliseconds of backoff.
const (
	dialTimeout     = 300 * time.Millisecond
	readTimeout     = 300 * time.Millisecond
	writeTimeout    = 300 * time.Millisecond
	poolTimeout     = 400 * time.Millisecond
	maxRetries      = 1
	minRetryBackoff = 8 * time.Millisecond
	maxRetryBackoff = 64 * time.Millisecond
	// dialerRetries is the number of dial attempts per connection. go-redis
	// defaults to 5 attempts 100 ms apart, which alone would take half a
	// second per command against a stopped Redis; the command retry
	// (MaxRetries) already tries a second dial.
	dialerRetries = 1
	// maxRedirects bounds the cluster client's attempts per command (MOVED
	// and ASK redirects and retries after network errors): at most
	// 1+maxRedirects attempts, enough for a redirect after a broken
	// connection and a slot migration.
	maxRedirects = 2
)

// Options says where Redis is. Exactly one of URL and ClusterAddrs is set.
type Options struct {
	URL          string   // redis://host:port/db or rediss:// (TLS); parsed with goredis.ParseURL
	ClusterAddrs []string // host:port of Redis Cluster nodes: uses goredis.NewClusterClient
	Prefix       string   // key prefix; "" means DefaultPrefix
}

// Store is a session.Store on Redis. It is safe for concurrent use.
type Store struct {
	storage *fiberredis.Storage
	conn    goredis.UniversalClient
	cluster *goredis.ClusterClient // nil for a single server
	prefix  string
	pipe    *pipeline // the commands of concurrent calls, sent together

	closeOnce sync.Once
	closeErr  error
}

var _ session.Store = (*Store)(nil)

// Open builds the client and the store. It does not contact Redis: tote must
// start while Redis is down, and the first call that needs Redis connects.
// It returns an error only for options that cannot work (an unparsable URL,
// both or neither of URL and ClusterAddrs set), saying what is wrong.
//
// With a URL, the URL's address, user, password, database and TLS (rediss://)
// are kept, and a client setting written in its query (?read_timeout=2s,
// which go-redis's ParseURL understands) wins over ours: DialTimeout,
// ReadTimeout and WriteTimeout 300 ms, PoolTimeout 400 ms, MaxRetries 1,
// retry backoff 8–64 ms. DialerRetries 1 and ContextTimeoutEnabled are
// always ours. With ClusterAddrs the same timeouts apply to every node, and
// only the cluster client retries (MaxRedirects 2), so that a hung node
// fails a call in about a second.
//
// After a long outage under load, go-redis stops dialing and probes Redis
// once a second, so calls keep failing for up to about a second after Redis
// is back.
func Open(o Options) (*Store, error) {
	prefix := o.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	var conn goredis.UniversalClient
	var cluster *goredis.ClusterClient
	var bound time.Duration // what a command's attempts may take in all
	switch {
	case o.URL != "" && len(o.ClusterAddrs) > 0:
		return nil, errors.New("redisstore: both URL and ClusterAddrs are set; set exactly one")
	case o.URL == "" && len(o.ClusterAddrs) == 0:
		return nil, errors.New("redisstore: neither URL nor ClusterAddrs is set; set exactly one")
	case o.URL != "":
		opt, err := parseURL(o.URL)
		if err != nil {
			return nil, err
		}
		conn = goredis.NewClient(opt)
		bound = attemptsBound(opt.MaxRetries+1, opt.ReadTimeout, opt.MaxRetryBackoff)
	default:
		opt, err := clusterOptions(o.ClusterAddrs)
		if err != nil {
			return nil, err
		}
		cluster = goredis.NewClusterClient(opt)
		conn = cluster
		bound = attemptsBound(opt.MaxRedirects+1, opt.ReadTimeout, opt.MaxRetryBackoff)
	}
	storage := fiberredis.NewFromConnection(conn)
	return &Store{storage: storage, conn: storage.Conn(), cluster: cluster, prefix: prefix,
		pipe: &pipeline{conn: storage.Conn(), timeout: bound}}, nil
}

// attemptsBound is how long a plain command takes to fail on a hung Redis:
// each attempt waits out the read timeout, with a backoff in between. 0 if
// reads have no timeout (a read_timeout of -1 in the URL).
func attemptsBound(attempts int, read, backoff time.Duration) time.Duration {
	if read <= 0 {
		return 0
	}
	return time.Duration(max(attempts, 1))*read + backoff
}

// parseURL turns a redis:// or rediss:// URL into client options with our
// timeouts filled in where the URL does not set them. Its errors never
// contain the URL's password.
func parseURL(raw string) (*goredis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included: report only
		// what is wrong with it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redisstore: URL is not a valid URL: %v", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("redisstore: URL %s: scheme %q is not supported; want redis:// or rediss:// (TLS)", u.Redacted(), u.Scheme)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("redisstore: URL %s: invalid port %q", u.Redacted(), p)
		}
	}
	opt, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("redisstore: URL %s: %w", u.Redacted(), err)
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = dialTimeout
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = readTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = writeTimeout
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = poolTimeout
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = maxRetries
	}
	if opt.MinRetryBackoff == 0 {
		opt.MinRetryBackoff = minRetryBackoff
	}
	if opt.MaxRetryBackoff == 0 {
		opt.MaxRetryBackoff = maxRetryBackoff
	}
	opt.DialerRetries = dialerRetries
	opt.DialerRetryTimeout = minRetryBackoff
	opt.ContextTimeoutEnabled = true
	return opt, nil
}

// clusterOptions checks the node addresses and returns the cluster client's
// options.
func clusterOptions(addrs []string) (*goredis.ClusterOptions, error) {
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("redisstore: ClusterAddrs[%d] %q is not host:port: %v", i, a, err)
		}
		if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("redisstore: ClusterAddrs[%d] %q is not host:port with a host and a port number", i, a)
		}
	}
	return &goredis.ClusterOptions{
		Addrs:                 append([]string(nil), addrs...),
		MaxRedirects:          maxRedirects,
		MaxRetries:            -1, // no retries inside each node's client: the cluster loop retries
		MinRetryBackoff:       minRetryBackoff,
		MaxRetryBackoff:       maxRetryBackoff,
		DialTimeout:           dialTimeout,
		DialerRetries:         dialerRetries,
		DialerRetryTimeout:    minRetryBackoff,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		PoolTimeout:           poolTimeout,
		ContextTimeoutEnabled: true,
	}, nil
}

// key is the Redis key of a store key.
func (s *Store) key(key string) string { return s.prefix + key }

// Get returns the record stored under key, in one GET. A value that is not
// a record (shorter than the 8-byte version, or version 0) counts as
// absent.
func (s *Store) Get(ctx context.Context, key string) (session.Record, bool, error) {
	cmd := goredis.NewStringCmd(ctx, "get", s.key(key))
	s.pipe.do(ctx, cmd)
	val, err := cmd.Bytes()
	if errors.Is(err, goredis.Nil) {
		return session.Record{}, false, nil
	}
	if err != nil {
		return session.Record{}, false, fmt.Errorf("redis get: %w", err)
	}
	if len(val) < 8 {
		return session.Record{}, false, nil
	}
	version := binary.BigEndian.Uint64(val[:8])
	if version == 0 {
		return session.Record{}, false, nil
	}
	return session.Record{Version: version, Data: val[8:]}, true, nil
}

// run runs script on key with args, in a pipeline: EVALSHA, falling back
// to EVAL if Redis does not have the script cached.
func (s *Store) run(ctx context.Context, script *goredis.Script, key string, args ...any) (int64, error) {
	cmd := goredis.NewCmd(ctx, append([]any{"evalsha", script.Hash(), 1, key}, args...)...)
	cmd.SetFirstKeyPos(3) // the key, for Redis Cluster
	s.pipe.do(ctx, cmd)
	if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT ") {
		cmd = script.Eval(ctx, s.conn, []string{key}, args...)
	}
	return cmd.Int64()
}

// casScript sets KEYS[1] to ARGV[2], to expire after ARGV[3] milliseconds
// (0: never), if the stored version is ARGV[1], and returns 1; otherwise it
// changes nothing and returns 0. ARGV[1] is the 8-byte big-endian version,
// or "" for "no record": a missing key, or a value too short to hold a
// version, or version 0 (what Get reports as not found).
var casScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local absent = (not cur) or string.len(cur) < 8 or string.sub(cur, 1, 8) == '\0\0\0\0\0\0\0\0'
if ARGV[1] == '' then
  if not absent then return 0 end
elseif absent or string.sub(cur, 1, 8) ~= ARGV[1] then
  return 0
end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// delScript deletes KEYS[1] if its version is ARGV[1] (8 bytes big-endian)
// and returns 1; otherwise it changes nothing and returns 0.
var delScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if (not cur) or string.sub(cur, 1, 8) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// CompareAndSwap stores w under key, to expire after w.TTL (rounded up to
// whole milliseconds; 0: never), if the stored version is old; old == 0
// means no record may exist. It is one round trip: a Lua script that
// compares and sets a single key (so it works on Redis Cluster).
//
// An error other than session.ErrConflict (a timeout, a dropped connection)
// leaves it unknown whether the record was stored, as with any remote write.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old uint64, w session.Write) error {
	if w.Version == 0 {
		return errors.New("redisstore: CompareAndSwap with version 0")
	}
	if w.TTL < 0 {
		return fmt.Errorf("redisstore: CompareAndSwap with ttl %v", w.TTL)
	}
	ms := int64((w.TTL + time.Millisecond - 1) / time.Millisecond)
	var want []byte // "" when old == 0
	if old != 0 {
		want = binary.BigEndian.AppendUint64(make([]byte, 0, 8), old)
	}
	val := make([]byte, 8, 8+len(w.Data))
	binary.BigEndian.PutUint64(val, w.Version)
	val = append(val, w.Data...)
	n, err := s.run(ctx, casScript, s.key(key), want, val, ms)
	if err != nil {
		return fmt.Errorf("redis compare-and-swap: %w", err)
	}
	if n != 1 {
		return session.ErrConflict
	}
	return nil
}

// Delete removes the record under key if its version is version (0: any,
// a plain DEL); see session.Store.
func (s *Store) Delete(ctx context.Context, key string, version uint64) error {
	if version == 0 {
		if err := s.storage.DeleteWithContext(ctx, s.key(key)); err != nil {
			return fmt.Errorf("redis delete: %w", err)
		}
		return nil
	}
	want := binary.BigEndian.AppendUint64(make([]byte, 0, 8), version)
	n, err := s.run(ctx, delScript, s.key(key), want)
	if err != nil {
		return fmt.Errorf("redis delete: %w", err)
	}
	if n != 1 {
		return session.ErrConflict
	}
	return nil
}

// Ping reports whether Redis answers: the server, or on a cluster every
// master (each one holds part of the sessions).
func (s *Store) Ping(ctx context.Context) error {
	if s.cluster == nil {
		if err := s.conn.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis ping: %w", err)
		}
		return nil
	}
	var mu sync.Mutex
	masters := 0
	err := s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		mu.Lock()
		masters++
		mu.Unlock()
		if err := c.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("%s: %w", c.Options().Addr, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis cluster ping: %w", err)
	}
	if masters == 0 {
		return errors.New("redis cluster ping: the cluster reports no masters")
	}
	return nil
}

// Close closes the client and its connections. It deletes nothing. Calls
// after the first return nil; the store must not be used after Close.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.storage.Close(); err != nil {
			s.closeErr = fmt.Errorf("redis close: %w", err)
		}
	})
	return s.closeErr
}
