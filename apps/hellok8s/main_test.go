package main

import (
	"net/http"
	"net/http/httptest"
	"os"
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
			want: []string{`hellok8s_http_requests_total{code="200"} 5`, `hellok8s_http_requests_total{code="404"} 1`},
		},
		{
			name:  "errors",
			env:   map[string]string{"FAIL_MODE": "errors"},
			paths: []string{"/", "/", "/", "/healthz"},
			want:  []string{`hellok8s_http_requests_total{code="200"} 2`, `hellok8s_http_requests_total{code="500"} 3`},
		},
		{
			name:  "unready",
			env:   map[string]string{"FAIL_MODE": "unready"},
			paths: []string{"/readyz", "/readyz"},
			want:  []string{`hellok8s_http_requests_total{code="200"} 1`, `hellok8s_http_requests_total{code="503"} 2`},
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
				"# HELP hellok8s_http_requests_total Total HTTP requests served, by status code.",
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
