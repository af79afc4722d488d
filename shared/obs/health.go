package obs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health collects readiness checks. /healthz answers 200 while the process runs; /readyz answers
// 200 only when every registered check passes (a joiner reports not-ready until its tables are
// loaded, every service until it is connected).
type Health struct {
	mu     sync.Mutex
	checks map[string]func() error
}

// NewHealth returns an empty Health.
func NewHealth() *Health { return &Health{checks: map[string]func() error{}} }

// Register adds (or replaces) a named readiness check.
func (h *Health) Register(name string, check func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
}

// Ready runs every check and joins the failures.
func (h *Health) Ready() error {
	h.mu.Lock()
	names := make([]string, 0, len(h.checks))
	for n := range h.checks {
		names = append(names, n)
	}
	checks := h.checks
	h.mu.Unlock()
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		if err := checks[n](); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// ReadyFlag is a readiness check that fails until Set is called.
type ReadyFlag struct {
	mu     sync.Mutex
	ready  bool
	reason string
}

// NewReadyFlag returns a flag that is not ready, for the given reason.
func NewReadyFlag(reason string) *ReadyFlag { return &ReadyFlag{reason: reason} }

// Set marks it ready.
func (f *ReadyFlag) Set() { f.mu.Lock(); f.ready = true; f.mu.Unlock() }

// Check is the readiness check.
func (f *ReadyFlag) Check() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return errors.New(f.reason)
	}
	return nil
}

// Server serves /healthz, /readyz, /metrics and whatever else is added to Mux.
type Server struct {
	Mux    *http.ServeMux
	Health *Health
}

// NewServer returns a Server with the standard endpoints.
func NewServer(h *Health) *Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := h.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.ReplaceAll(err.Error(), "\n", "; "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.Handler())
	// Profiles for finding where CPU and memory go (the listener is loopback by default).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &Server{Mux: mux, Health: h}
}

// ListenAndServe serves on addr until ctx ends, then shuts down gracefully. An empty addr or
// "none" serves nothing.
func (s *Server) ListenAndServe(ctx context.Context, addr string, log *slog.Logger) error {
	if addr == "" || addr == "none" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", addr, err)
	}
	log.Info("HTTP endpoints", "addr", ln.Addr().String(), "paths", "/healthz /readyz /metrics")
	srv := &http.Server{Handler: s.Mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
