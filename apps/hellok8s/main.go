// Command hellok8s is a tiny sample web app used to exercise the ship
// GitOps release pipeline. It uses the Go standard library only.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

const (
	defaultPort     = "3000"
	defaultSlowMS   = 2000
	defaultTrack    = "stable"
	shutdownTimeout = 10 * time.Second
)

// Failure modes selectable with FAIL_MODE, used to exercise rollbacks.
const (
	failNone    = ""
	failErrors  = "errors"  // GET / answers 500
	failSlow    = "slow"    // GET / sleeps SLOW_MS before answering
	failUnready = "unready" // GET /readyz answers 503
	failCrash   = "crash"   // the process exits 1 at start (CrashLoopBackOff on a real node)
)

// config is everything the app reads from its environment.
type config struct {
	Port        string
	Message     string
	Namespace   string
	Hostname    string
	DBURL       string
	PasswordSet bool // DB_PASSWORD itself is never kept nor shown
	FailMode    string
	SlowDelay   time.Duration
	// ErrorRate is the share of GET / answered 500 (0 to 1), chosen at random per request:
	// a release that fails only in part, as a canary's analysis must catch.
	ErrorRate float64
	// ErrorSeed seeds that choice (0: a random seed), so tests can count exact outcomes.
	ErrorSeed uint64
	// Track is "stable" or "canary": the pod's ship.dev/track label through the downward API.
	// It labels the metrics and the X-Track header, so a split can be counted from outside.
	Track string
}

// configFromEnv builds a config from getenv (os.Getenv in production).
// Invalid values are logged and replaced by their defaults.
func configFromEnv(getenv func(string) string) config {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	cfg := config{
		Port:        getenv("PORT"),
		Message:     getenv("MESSAGE"),
		Namespace:   getenv("POD_NAMESPACE"),
		Hostname:    host,
		DBURL:       getenv("DB_URL"),
		PasswordSet: getenv("DB_PASSWORD") != "",
		FailMode:    getenv("FAIL_MODE"),
		SlowDelay:   defaultSlowMS * time.Millisecond,
		Track:       getenv("TRACK"),
	}
	if cfg.Track == "" {
		cfg.Track = defaultTrack // no ship.dev/track label: a workload without a canary router
	}
	if cfg.Port == "" {
		cfg.Port = defaultPort
	}
	switch cfg.FailMode {
	case failNone, failErrors, failSlow, failUnready, failCrash:
	default:
		log.Printf("warning: unknown FAIL_MODE %q, behaving normally", cfg.FailMode)
		cfg.FailMode = failNone
	}
	if s := getenv("SLOW_MS"); s != "" {
		ms, err := strconv.Atoi(s)
		if err != nil || ms < 0 {
			log.Printf("warning: invalid SLOW_MS %q, using %d", s, defaultSlowMS)
		} else {
			cfg.SlowDelay = time.Duration(ms) * time.Millisecond
		}
	}
	if s := getenv("ERROR_RATE"); s != "" {
		rate, err := strconv.ParseFloat(s, 64)
		if err != nil || rate < 0 || rate > 1 {
			log.Printf("warning: invalid ERROR_RATE %q (want 0 to 1), using 0", s)
		} else {
			cfg.ErrorRate = rate
		}
	}
	if s := getenv("ERROR_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			log.Printf("warning: invalid ERROR_SEED %q, using a random seed", s)
		} else {
			cfg.ErrorSeed = seed
		}
	}
	return cfg
}

// metrics counts HTTP responses by status code; every series carries the process's track.
type metrics struct {
	mu     sync.Mutex
	track  string
	byCode map[int]uint64
}

func (m *metrics) inc(code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byCode[code]++
}

func (m *metrics) writeTo(w http.ResponseWriter) {
	m.mu.Lock()
	codes := make([]int, 0, len(m.byCode))
	for c := range m.byCode {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	counts := make([]uint64, len(codes))
	for i, c := range codes {
		counts[i] = m.byCode[c]
	}
	m.mu.Unlock()

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	fmt.Fprintln(w, "# HELP hellok8s_http_requests_total Total HTTP requests served, by status code and track.")
	fmt.Fprintln(w, "# TYPE hellok8s_http_requests_total counter")
	for i, c := range codes {
		fmt.Fprintf(w, "hellok8s_http_requests_total{code=\"%d\",track=%q} %d\n", c, m.track, counts[i])
	}
	fmt.Fprintln(w, "# HELP hellok8s_build_info Build information of the running binary.")
	fmt.Fprintln(w, "# TYPE hellok8s_build_info gauge")
	fmt.Fprintf(w, "hellok8s_build_info{version=%q} 1\n", version)
}

// coin comes up true with probability p; safe for concurrent use.
type coin struct {
	mu  sync.Mutex
	p   float64
	rnd *rand.Rand
}

func newCoin(p float64, seed uint64) *coin {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &coin{p: p, rnd: rand.New(rand.NewPCG(seed, seed))}
}

func (c *coin) flip() bool {
	if c.p <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rnd.Float64() < c.p
}

// statusRecorder remembers the status code written by a handler.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// newServer returns the app's HTTP handler for cfg.
func newServer(cfg config) http.Handler {
	m := &metrics{track: cfg.Track, byCode: map[int]uint64{}}
	failing := newCoin(cfg.ErrorRate, cfg.ErrorSeed)
	mux := http.NewServeMux()

	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if cfg.FailMode == failErrors {
			http.Error(w, "internal error (FAIL_MODE=errors)", http.StatusInternalServerError)
			return
		}
		if failing.flip() {
			http.Error(w, "internal error (ERROR_RATE)", http.StatusInternalServerError)
			return
		}
		if cfg.FailMode == failSlow {
			select {
			case <-time.After(cfg.SlowDelay):
			case <-r.Context().Done():
				return
			}
		}
		pw := "no"
		if cfg.PasswordSet {
			pw = "yes"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "[%s] Hello, Kubernetes! Message: %s, namespace: %s, host: %s, database: %s, password set: %s",
			version, cfg.Message, cfg.Namespace, cfg.Hostname, cfg.DBURL, pw)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if cfg.FailMode == failUnready {
			http.Error(w, "not ready (FAIL_MODE=unready)", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ready")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		m.writeTo(w)
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Track", cfg.Track)
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		mux.ServeHTTP(rec, r)
		m.inc(rec.code)
	})
}

func main() {
	cfg := configFromEnv(os.Getenv)
	if cfg.FailMode == failCrash {
		log.Fatalf("hellok8s %s: exiting at start (FAIL_MODE=crash)", version)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	srv := &http.Server{
		Addr:              net.JoinHostPort("", cfg.Port),
		Handler:           newServer(cfg),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("hellok8s %s starting on %s (namespace=%q, track=%q, fail_mode=%q, error_rate=%g)",
		version, srv.Addr, cfg.Namespace, cfg.Track, cfg.FailMode, cfg.ErrorRate)

	select {
	case err := <-errc:
		log.Fatalf("server error: %v", err)
	case <-ctx.Done():
	}

	log.Printf("shutting down (timeout %s)", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Printf("shutdown: %v", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("server error: %v", err)
	}
	log.Print("bye")
}
