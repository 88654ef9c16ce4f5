// Command tote is a bookshop's shopping cart kept in server-side sessions:
// HTML pages for people, a JSON API for programs, sessions in an embedded
// database, in memory or in Redis. Configuration comes from the environment;
// see README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"tote/catalog"
	"tote/session"
	"tote/session/filestore"
	"tote/session/memstore"
	"tote/session/redisstore"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tote:", err)
		os.Exit(1)
	}
}

// shutdownTimeout bounds how long in-flight requests may take to finish after
// SIGTERM or SIGINT.
const shutdownTimeout = 10 * time.Second

// run starts tote and serves until ctx is cancelled or a signal arrives,
// then finishes in-flight requests, closes the store and returns nil. Its
// error is one line saying what is wrong.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// One JSON line per request, buffered (see logWriter); flushed when run
	// returns.
	logOut := newLogWriter(stdout)
	defer logOut.Close()
	// Errors are rate-limited by kind: an outage logs one line a second
	// with a count, not one a request.
	limited := newLimitedHandler(slog.NewJSONHandler(logOut, nil), time.Second)
	log := slog.New(limited)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				limited.flush(context.Background())
			}
		}
	}()

	cat := catalog.Default()
	if cfg.catalogFile != "" {
		f, err := os.Open(cfg.catalogFile)
		if err != nil {
			return fmt.Errorf("CATALOG_FILE: %w", err)
		}
		cat, err = catalog.Load(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("CATALOG_FILE %s: %w", cfg.catalogFile, err)
		}
	}

	store, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()

	m := newMetrics()
	m.watchStore(store)
	sessions := session.NewManager(store, session.Options{TTL: cfg.ttl, BareTTL: cfg.bareTTL, Hooks: m.sessionHooks()})
	srv, err := newServer(cat, sessions, cfg, log, logOut, m)
	if err != nil {
		return err
	}
	app := srv.routes()

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("ADDR: %w", err)
	}
	if cfg.debugAddr != "" {
		dln, err := net.Listen("tcp", cfg.debugAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("DEBUG_ADDR: %w", err)
		}
		dbg := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 5 * time.Second}
		go dbg.Serve(dln)
		defer dbg.Close()
		log.Info("pprof listening", "addr", dln.Addr().String())
	}
	log.Info("listening", "addr", ln.Addr().String(), "store", cfg.store, "products", len(cat.Products()), "session_ttl", cfg.ttl.String(),
		"connections", app.Server().Concurrency, "connections_per_ip", app.Server().MaxConnsPerIP)
	logOut.Flush()

	served := make(chan error, 1)
	go func() { served <- app.Listener(srv.listen(ln)) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	if err := app.ShutdownWithTimeout(shutdownTimeout); err != nil {
		log.Error("shutdown", "err", err)
	}
	if err := store.Close(); err != nil {
		return fmt.Errorf("closing the session store: %w", err)
	}
	log.Info("stopped")
	return nil
}

// openStore opens the session store the configuration names. It never waits
// for Redis: a Redis that is down makes tote not ready, not absent.
func openStore(cfg config, log *slog.Logger) (session.Store, error) {
	switch cfg.store {
	case "memory":
		return memstore.New(memstore.Options{Max: cfg.sessionMax}), nil
	case "redis":
		// go-redis logs a line of its own on stderr for every failed dial:
		// thousands a second while Redis is down. Its lines go to tote's
		// log instead, rate-limited like tote's own errors.
		goredis.SetLogger(redisLog{log})
		s, err := redisstore.Open(redisstore.Options{URL: cfg.redisURL, ClusterAddrs: cfg.clusterAddrs})
		if err != nil {
			if cfg.redisURL != "" {
				return nil, fmt.Errorf("REDIS_URL: %w", err)
			}
			return nil, fmt.Errorf("REDIS_CLUSTER_ADDRS: %w", err)
		}
		return s, nil
	default:
		s, err := filestore.Open(cfg.dataDir, filestore.Options{SweepEvery: min(time.Minute, cfg.bareTTL/4), Max: cfg.sessionMax})
		if err != nil {
			return nil, fmt.Errorf("DATA_DIR: %w", err)
		}
		if n := s.Cut(); n > 0 {
			log.Warn("cut the torn end of the session log: a write that a crash interrupted", "bytes", n, "file", s.Path())
		}
		return s, nil
	}
}

// redisLog writes go-redis's own log lines as errors of tote's log, all
// under one message, so that the limit of one a second holds for them.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.ErrorContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// debugMux serves net/http/pprof for DEBUG_ADDR.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
