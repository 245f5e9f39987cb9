package main

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// envOf returns a getenv func backed by a map.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		port     string
		failMode string
		slow     time.Duration
	}{
		{"defaults", nil, "3000", "", 2000 * time.Millisecond},
		{"port override", map[string]string{"PORT": "8080"}, "8080", "", 2000 * time.Millisecond},
		{"slow with SLOW_MS", map[string]string{"FAIL_MODE": "slow", "SLOW_MS": "50"}, "3000", "slow", 50 * time.Millisecond},
		{"bad SLOW_MS", map[string]string{"SLOW_MS": "abc"}, "3000", "", 2000 * time.Millisecond},
		{"unknown FAIL_MODE", map[string]string{"FAIL_MODE": "explode"}, "3000", "", 2000 * time.Millisecond},
		{"crash", map[string]string{"FAIL_MODE": "crash"}, "3000", "crash", 2000 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configFromEnv(envOf(tt.env))
			if cfg.Port != tt.port || cfg.FailMode != tt.failMode || cfg.SlowDelay != tt.slow {
				t.Errorf("got port=%q failMode=%q slow=%s; want %q %q %s",
					cfg.Port, cfg.FailMode, cfg.SlowDelay, tt.port, tt.failMode, tt.slow)
			}
		})
	}
}

func TestRoot(t *testing.T) {
	host, _ := os.Hostname()
	const secret = "s3cr3t-P@ss"
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{
			name: "password set",
			env: map[string]string{
				"MESSAGE": "Hello from dev", "POD_NAMESPACE": "hellok8s-dev",
				"DB_URL": "postgres://hellok8s-db.dev.svc:5432/hellok8s", "DB_PASSWORD": secret,
			},
			want: "[dev] Hello, Kubernetes! Message: Hello from dev, namespace: hellok8s-dev, host: " + host +
				", database: postgres://hellok8s-db.dev.svc:5432/hellok8s, password set: yes",
		},
		{
			name: "password unset",
			env:  map[string]string{"MESSAGE": "hi", "POD_NAMESPACE": "ns"},
			want: "[dev] Hello, Kubernetes! Message: hi, namespace: ns, host: " + host + ", database: , password set: no",
		},
		{
			name: "unknown fail mode behaves normally",
			env:  map[string]string{"MESSAGE": "hi", "FAIL_MODE": "bogus"},
			want: "[dev] Hello, Kubernetes! Message: hi, namespace: , host: " + host + ", database: , password set: no",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, newServer(configFromEnv(envOf(tt.env))), "/")
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
			body := rec.Body.String()
			if body != tt.want {
				t.Errorf("body =\n%q\nwant\n%q", body, tt.want)
			}
			if strings.Contains(body, secret) {
				t.Errorf("body leaks the password: %q", body)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		path     string
		wantCode int
		wantBody string // prefix
	}{
		{"healthz", nil, "/healthz", 200, "ok"},
		{"healthz unready mode", map[string]string{"FAIL_MODE": "unready"}, "/healthz", 200, "ok"},
		{"readyz", nil, "/readyz", 200, "ready"},
		{"readyz unready", map[string]string{"FAIL_MODE": "unready"}, "/readyz", 503, "not ready"},
		{"root unready mode still serves", map[string]string{"FAIL_MODE": "unready"}, "/", 200, "[dev] Hello"},
		{"root errors", map[string]string{"FAIL_MODE": "errors"}, "/", 500, "internal error"},
		{"readyz errors mode", map[string]string{"FAIL_MODE": "errors"}, "/readyz", 200, "ready"},
		{"not found", nil, "/nope", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, newServer(configFromEnv(envOf(tt.env))), tt.path)
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			if !strings.HasPrefix(rec.Body.String(), tt.wantBody) {
				t.Errorf("body = %q, want prefix %q", rec.Body.String(), tt.wantBody)
			}
		})
	}
}

func TestSlow(t *testing.T) {
	h := newServer(configFromEnv(envOf(map[string]string{"FAIL_MODE": "slow", "SLOW_MS": "50"})))
	start := time.Now()
	rec := get(t, h, "/")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("took %s, want >= 50ms", d)
	}
	if rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200", rec.Code)
	}
	// Other endpoints are not slowed down.
	start = time.Now()
	get(t, h, "/healthz")
	if d := time.Since(start); d >= 50*time.Millisecond {
		t.Errorf("/healthz took %s, should not be slowed", d)
	}
}

func TestMetrics(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		paths []string
		want  []string // lines expected in the second /metrics scrape
	}{
		{
			name:  "normal",
			paths: []string{"/", "/", "/healthz", "/readyz", "/nope"},
			// 4 x 200 + the first /metrics scrape = 5
			want: []string{`hellok8s_http_requests_total{code="200",track="stable"} 5`, `hellok8s_http_requests_total{code="404",track="stable"} 1`},
		},
		{
			name:  "errors",
			env:   map[string]string{"FAIL_MODE": "errors"},
			paths: []string{"/", "/", "/", "/healthz"},
			want:  []string{`hellok8s_http_requests_total{code="200",track="stable"} 2`, `hellok8s_http_requests_total{code="500",track="stable"} 3`},
		},
		{
			name:  "unready",
			env:   map[string]string{"FAIL_MODE": "unready"},
			paths: []string{"/readyz", "/readyz"},
			want:  []string{`hellok8s_http_requests_total{code="200",track="stable"} 1`, `hellok8s_http_requests_total{code="503",track="stable"} 2`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newServer(configFromEnv(envOf(tt.env)))
			for _, p := range tt.paths {
				get(t, h, p)
			}
			get(t, h, "/metrics")
			rec := get(t, h, "/metrics")
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
				t.Errorf("Content-Type = %q", ct)
			}
			body := rec.Body.String()
			lines := strings.Split(strings.TrimSpace(body), "\n")
			has := func(s string) bool {
				for _, l := range lines {
					if l == s {
						return true
					}
				}
				return false
			}
			for _, w := range append([]string{
				"# HELP hellok8s_http_requests_total Total HTTP requests served, by status code and track.",
				"# TYPE hellok8s_http_requests_total counter",
				`hellok8s_build_info{version="dev"} 1`,
			}, tt.want...) {
				if !has(w) {
					t.Errorf("missing line %q in:\n%s", w, body)
				}
			}
		})
	}
}

func TestTrack(t *testing.T) {
	tests := []struct{ env, want string }{{"", "stable"}, {"stable", "stable"}, {"canary", "canary"}}
	for _, tt := range tests {
		t.Run(tt.want+"/"+tt.env, func(t *testing.T) {
			h := newServer(configFromEnv(envOf(map[string]string{"TRACK": tt.env})))
			for _, p := range []string{"/", "/healthz", "/nope"} {
				if got := get(t, h, p).Header().Get("X-Track"); got != tt.want {
					t.Errorf("%s: X-Track = %q, want %q", p, got, tt.want)
				}
			}
			body := get(t, h, "/metrics").Body.String()
			for _, line := range []string{
				fmt.Sprintf(`hellok8s_http_requests_total{code="200",track=%q} 2`, tt.want),
				fmt.Sprintf(`hellok8s_http_requests_total{code="404",track=%q} 1`, tt.want),
			} {
				if !strings.Contains(body, line+"\n") {
					t.Errorf("missing %q in:\n%s", line, body)
				}
			}
		})
	}
}

func TestErrorRateConfig(t *testing.T) {
	tests := []struct {
		rate, seed string
		want       float64
		wantSeed   uint64
	}{
		{"", "", 0, 0},
		{"0.12", "7", 0.12, 7},
		{"1", "", 1, 0},
		{"1.5", "", 0, 0},
		{"-0.1", "x", 0, 0},
		{"lots", "", 0, 0},
	}
	for _, tt := range tests {
		cfg := configFromEnv(envOf(map[string]string{"ERROR_RATE": tt.rate, "ERROR_SEED": tt.seed}))
		if cfg.ErrorRate != tt.want || cfg.ErrorSeed != tt.wantSeed {
			t.Errorf("ERROR_RATE=%q ERROR_SEED=%q: got %g %d, want %g %d",
				tt.rate, tt.seed, cfg.ErrorRate, cfg.ErrorSeed, tt.want, tt.wantSeed)
		}
	}
}

// TestErrorRate: about ERROR_RATE of GET / fail, probes never do, and a seed repeats the sequence.
func TestErrorRate(t *testing.T) {
	const n = 4000
	env := map[string]string{"ERROR_RATE": "0.12", "ERROR_SEED": "42", "TRACK": "canary"}
	run := func() (codes []int) {
		h := newServer(configFromEnv(envOf(env)))
		for i := 0; i < n; i++ {
			codes = append(codes, get(t, h, "/").Code)
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			if c := get(t, h, p).Code; c != 200 {
				t.Errorf("%s = %d with ERROR_RATE set, want 200", p, c)
			}
		}
		failed := 0
		for _, c := range codes {
			if c == 500 {
				failed++
			}
		}
		body := get(t, h, "/metrics").Body.String()
		want := fmt.Sprintf(`hellok8s_http_requests_total{code="500",track="canary"} %d`, failed)
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, body)
		}
		return codes
	}
	first := run()
	failed := 0
	for _, c := range first {
		if c == 500 {
			failed++
		}
	}
	// Binomial(n, 0.12): 4 standard deviations either side.
	sigma := math.Sqrt(n * 0.12 * 0.88)
	if d := math.Abs(float64(failed) - n*0.12); d > 4*sigma {
		t.Errorf("%d of %d failed, want about %.0f ± %.0f", failed, n, n*0.12, 4*sigma)
	}
	second := run()
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("request %d: %d then %d with the same ERROR_SEED", i, first[i], second[i])
		}
	}
	none := newServer(configFromEnv(envOf(map[string]string{"ERROR_RATE": "0"})))
	for i := 0; i < 200; i++ {
		if c := get(t, none, "/").Code; c != 200 {
			t.Fatalf("ERROR_RATE=0: status %d", c)
		}
	}
}

// TestCrashExitsOne runs the test binary itself as hellok8s with FAIL_MODE=crash.
func TestCrashExitsOne(t *testing.T) {
	if os.Getenv("HELLOK8S_RUN_MAIN") == "1" {
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashExitsOne$")
	cmd.Env = append(os.Environ(), "HELLOK8S_RUN_MAIN=1", "FAIL_MODE=crash", "PORT=0")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "exiting at start (FAIL_MODE=crash)") {
		t.Errorf("output does not say why:\n%s", out)
	}
}
