package node

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/daemon"
	"github.com/clinit/clinit/internal/promtext"
)

//go:embed status.html
var statusPage []byte

// MetricsAddr resolves --metrics: a bare port (or :PORT) binds loopback,
// so metrics are never exposed by accident.
func MetricsAddr(s string) string {
	if _, err := strconv.Atoi(s); err == nil {
		return "127.0.0.1:" + s
	}
	if host, port, err := net.SplitHostPort(s); err == nil && host == "" {
		return "127.0.0.1:" + port
	}
	return s
}

// StatusView is what the status page shows: this node, and the cluster.
type StatusView struct {
	Status api.Status `json:"status"`
	Hastat api.Hastat `json:"hastat"`
}

// serveMetrics serves Prometheus metrics on /metrics (read from the
// engine and the cluster at each scrape, metrics_families.go), the status
// page on /, and its data on /status.json. It returns once listening.
// names are the names the page may be reached by, beside its address and
// localhost (hostcheck.go).
func serveMetrics(addr, version string, eng *daemon.Engine, cl *cluster.Cluster, log *zap.Logger, names ...string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	srv := &http.Server{Handler: metricsHandler(version, eng, cl, log, allowedHosts(ln.Addr(), names...)), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(log.Named("metrics"))}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", zap.Error(err))
		}
	}()
	log.Info("metrics and status page", zap.String("addr", "http://"+ln.Addr().String()+"/"))
	return srv, nil
}

// metricsHandler answers /metrics to any Host (scrapers name the node
// as they will), the page and its data only to the names of allowed.
func metricsHandler(version string, eng *daemon.Engine, cl *cluster.Cluster, log *zap.Logger, allowed map[string]bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		v, err := view(r.Context(), eng, cl)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		var m promtext.Writer
		writeMetrics(&m, version, v, cl)
		cluster.LibraryMetrics().Write(&m)
		if err := m.WriteProcess(); err != nil {
			log.Debug("metrics: process figures", zap.Error(err))
		}
		w.Header().Set("Content-Type", promtext.ContentType)
		w.Write(m.Bytes())
	})
	mux.Handle("GET /status.json", hostGuard(allowed, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := view(r.Context(), eng, cl)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(v)
	})))
	mux.Handle("GET /{$}", hostGuard(allowed, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(statusPage)
	})))
	return mux
}

func view(ctx context.Context, eng *daemon.Engine, cl *cluster.Cluster) (StatusView, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := eng.Status(ctx)
	if err != nil {
		return StatusView{}, err
	}
	h, err := cl.Hastat(ctx)
	return StatusView{Status: st, Hastat: h}, err
}
