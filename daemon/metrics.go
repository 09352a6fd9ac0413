package daemon

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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster"
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

// serveMetrics serves Prometheus metrics on /metrics, the status page on
// /, and its data on /status.json. It returns once listening. names are
// the names the page may be reached by, beside its address and localhost
// (hostcheck.go).
func serveMetrics(addr string, eng *Engine, cl *cluster.Cluster, log *zap.Logger, names ...string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	srv := &http.Server{Handler: metricsHandler(eng, cl, allowedHosts(ln.Addr(), names...)), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(log.Named("metrics"))}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", zap.Error(err))
		}
	}()
	log.Info("metrics and status page", zap.String("addr", "http://"+ln.Addr().String()+"/"))
	return srv, nil
}

// metricsHandler routes the metrics listener; the page and its data
// answer only the Hosts in allowed.
func metricsHandler(eng *Engine, cl *cluster.Cluster, allowed map[string]bool) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{eng: eng, cl: cl}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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

func view(ctx context.Context, eng *Engine, cl *cluster.Cluster) (StatusView, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := eng.Status(ctx)
	if err != nil {
		return StatusView{}, err
	}
	h, err := cl.Hastat(ctx)
	return StatusView{Status: st, Hastat: h}, err
}

// collector reads the engine and the cluster at each scrape: the numbers
// are those of the moment, and nothing is kept twice.
type collector struct {
	eng *Engine
	cl  *cluster.Cluster
}

var (
	descGroup       = prometheus.NewDesc("clinit_group_state", "1 for the level and state each told group of this node is in.", []string{"group", "level", "state"}, nil)
	descRestarts    = prometheus.NewDesc("clinit_entry_restarts_total", "Restarts of each respawn entry.", []string{"group", "tag"}, nil)
	descThrottled   = prometheus.NewDesc("clinit_entry_throttled", "1 while an entry rests after restarting too rapidly.", []string{"group", "tag"}, nil)
	descFailed      = prometheus.NewDesc("clinit_group_failed", "1 for each FAILED group of this node, with why.", []string{"group", "why"}, nil)
	descProcesses   = prometheus.NewDesc("clinit_processes", "Entries of this node with a running process.", nil, nil)
	descTransitions = prometheus.NewDesc("clinit_group_transitions_total", "Changes of level or state of this node's groups.", nil, nil)
	descMembers     = prometheus.NewDesc("clinit_members", "Cluster members by state, as this node sees them.", []string{"state"}, nil)
	descHA          = prometheus.NewDesc("clinit_ha_group_running", "1 when an HA group runs on some node, by where.", []string{"group", "node"}, nil)
	descGossip      = prometheus.NewDesc("clinit_gossip_bytes_total", "Bytes memberlist sent and received.", []string{"direction", "proto"}, nil)
	descFence       = prometheus.NewDesc("clinit_fencing_runs_total", "Runs of the stomith command, by result.", []string{"result"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	v, err := view(context.Background(), c.eng, c.cl)
	if err != nil {
		return
	}
	procs := 0
	for _, g := range v.Status.Groups {
		ch <- prometheus.MustNewConstMetric(descGroup, prometheus.GaugeValue, 1, g.Group, g.Level, g.State)
		if g.State == api.StateFailed {
			ch <- prometheus.MustNewConstMetric(descFailed, prometheus.GaugeValue, 1, g.Group, g.Why)
		}
		for _, e := range g.Entries {
			if e.Pid != 0 {
				procs++
			}
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(e.Restarts), g.Group, e.Tag)
			ch <- prometheus.MustNewConstMetric(descThrottled, prometheus.GaugeValue, b2f(e.Throttled), g.Group, e.Tag)
		}
	}
	ch <- prometheus.MustNewConstMetric(descProcesses, prometheus.GaugeValue, float64(procs))
	transitions, fenceOK, fenceFailed := c.cl.Counters()
	ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(transitions))
	members := map[string]int{api.NodeAlive: 0, api.NodeDead: 0, api.NodeLeft: 0}
	for _, n := range v.Hastat.Nodes {
		members[n.State]++
	}
	for s, n := range members {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(n), s)
	}
	for _, g := range v.Hastat.Groups {
		ch <- prometheus.MustNewConstMetric(descHA, prometheus.GaugeValue, b2f(g.Node != "-"), g.Group, g.Node)
	}
	if g := v.Hastat.Gossip; g != nil {
		ch <- prometheus.MustNewConstMetric(descGossip, prometheus.CounterValue, float64(g.UDPSentBytes), "sent", "udp")
		ch <- prometheus.MustNewConstMetric(descGossip, prometheus.CounterValue, float64(g.TCPSentBytes), "sent", "tcp")
		ch <- prometheus.MustNewConstMetric(descGossip, prometheus.CounterValue, float64(g.UDPReceivedBytes), "received", "udp")
	}
	ch <- prometheus.MustNewConstMetric(descFence, prometheus.CounterValue, float64(fenceOK), "ok")
	ch <- prometheus.MustNewConstMetric(descFence, prometheus.CounterValue, float64(fenceFailed), "failed")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
