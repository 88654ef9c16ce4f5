package main

import (
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tote/session"
	"tote/session/filestore"
)

// metrics are what GET /metrics shows, in the Prometheus text format.
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec   // by route, method, status
	latency     *prometheus.HistogramVec // by route
	storeOps    *prometheus.HistogramVec // by op: get, cas
	storeErrors *prometheus.CounterVec   // by op
	conflicts   prometheus.Counter
	created     prometheus.Counter
	refused     prometheus.Counter     // new sessions refused: the client's budget spent, or the store full
	logins      *prometheus.CounterVec // by result: success, failure, throttled, overloaded
	signups     prometheus.Counter
	logouts     prometheus.Counter

	// The children of the vectors that requests and store operations
	// use, found once: a lookup by label values hashes them every time.
	counters  sync.Map // requestKey -> prometheus.Counter
	latencies sync.Map // route -> prometheus.Observer
	getOp     prometheus.Observer
	casOp     prometheus.Observer
}

// requestKey is a request's labels. Its strings are constants or routes as
// registered, never Fiber's reused buffers.
type requestKey struct {
	route, method string
	status        int
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tote_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tote_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tote_session_store_operation_duration_seconds", Help: "Time of session store operations (get, cas), failed ones included.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tote_session_store_errors_total", Help: "Session store operations that failed (the store was unreachable or broken).",
		}, []string{"op"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tote_session_conflicts_total", Help: "Session changes refused with 409 because too many requests changed the same session at once.",
		}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tote_sessions_created_total", Help: "New sessions stored.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tote_sessions_refused_total", Help: "New sessions not stored: the client's budget (NEW_SESSIONS_PER_IP) was spent, or the store was full of sessions that may not be evicted.",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tote_logins_total", Help: "Logins by result: success, failure (wrong username or password), throttled (too many failures), overloaded (too many password checks waiting).",
		}, []string{"result"}),
		signups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tote_signups_total", Help: "Accounts created.",
		}),
		logouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tote_logouts_total", Help: "Logouts of logged-in sessions.",
		}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.storeOps, m.storeErrors, m.conflicts, m.created, m.refused, m.logins, m.signups, m.logouts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, op := range []string{"get", "cas", "delete"} {
		m.storeErrors.WithLabelValues(op) // show zero before the first error
	}
	for _, r := range []string{"success", "failure", "throttled", "overloaded"} {
		m.logins.WithLabelValues(r)
	}
	m.getOp, m.casOp = m.storeOps.WithLabelValues("get"), m.storeOps.WithLabelValues("cas")
	return m
}

// watchStore adds what the embedded stores tell of themselves: the records
// they hold and evict, and for the file store its log's size,
// compactions, failed writes and recoveries.
func (m *metrics) watchStore(store session.Store) {
	if s, ok := store.(interface {
		Len() int
		Evicted() int64
	}); ok {
		m.registry.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "tote_store_records", Help: "Records (sessions, accounts, login throttles) the embedded store holds in memory, expired ones not yet swept included.",
			}, func() float64 { return float64(s.Len()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "tote_sessions_evicted_total", Help: "Sessions that held nothing but visits, evicted to make room at SESSION_MAX.",
			}, func() float64 { return float64(s.Evicted()) }),
		)
	}
	if s, ok := store.(*filestore.Store); ok {
		m.registry.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "tote_file_store_log_bytes", Help: "Size of the file store's log (tote.log).",
			}, func() float64 { return float64(s.LogSize()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "tote_file_store_compactions_total", Help: "Compactions of the file store's log since start.",
			}, func() float64 { return float64(s.Compactions()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "tote_file_store_write_failures_total", Help: "Writes of the file store's log that failed (a full disk, an I/O error); changes are refused until a write succeeds again.",
			}, func() float64 { return float64(s.Failures()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "tote_file_store_recoveries_total", Help: "Times the file store took changes again after failed writes.",
			}, func() float64 { return float64(s.Recoveries()) }),
		)
	}
}

// request counts a request and observes its latency. route must be a
// constant or a route as registered (see routeLabel).
func (m *metrics) request(route, method string, status int, took time.Duration) {
	k := requestKey{route, methodLabel(method), status}
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	h, ok := m.latencies.Load(route)
	if !ok {
		h, _ = m.latencies.LoadOrStore(route, m.latency.WithLabelValues(route))
	}
	h.(prometheus.Observer).Observe(took.Seconds())
}

// sessionHooks feed the session manager's events into the metrics.
func (m *metrics) sessionHooks() session.Hooks {
	return session.Hooks{
		StoreOp: func(op string, took time.Duration, err error) {
			switch op {
			case "get":
				m.getOp.Observe(took.Seconds())
			case "cas":
				m.casOp.Observe(took.Seconds())
			default:
				m.storeOps.WithLabelValues(op).Observe(took.Seconds())
			}
			if err != nil {
				m.storeErrors.WithLabelValues(op).Inc()
			}
		},
		Conflict: m.conflicts.Inc,
		Created:  m.created.Inc,
	}
}

// handler serves GET /metrics.
func (m *metrics) handler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
}

// methodLabel returns a constant string for an HTTP method: Fiber's method
// string points into a buffer that the next request reuses, and a metric
// keeps its labels. Unknown methods share one label, to keep the set bounded.
func methodLabel(m string) string {
	for _, known := range []string{fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete, fiber.MethodPatch, fiber.MethodOptions} {
		if m == known {
			return known
		}
	}
	return "OTHER"
}
