package cluster

import (
	"sync"
	"time"

	metrics "github.com/hashicorp/go-metrics"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/internal/gometrics"
)

// memberlist and raft report what they do to go-metrics' global metrics;
// the sink, installed there once per process, keeps all of it for
// /metrics (package gometrics). Tests with several members in one process
// see their sum. It is made on first use, not at init: every clinit
// command links this package (t/startup_test.go).
var (
	libSink      *gometrics.Sink
	libSinkOnce  sync.Once
	libSinceTime time.Time
	libOnce      sync.Once
)

func installMetrics() {
	libOnce.Do(func() {
		conf := metrics.DefaultConfig("")
		conf.EnableHostname, conf.EnableRuntimeMetrics, conf.EnableHostnameLabel = false, false, false
		metrics.NewGlobal(conf, LibraryMetrics())
		libSinceTime = time.Now().UTC()
	})
}

// LibraryMetrics is the sink of memberlist's and raft's metrics.
func LibraryMetrics() *gometrics.Sink {
	libSinkOnce.Do(func() { libSink = gometrics.New() })
	return libSink
}

// GossipStats is what this process's memberlist sent and received.
func GossipStats() api.GossipStats {
	return api.GossipStats{
		Since:            libSinceTime,
		UDPSentBytes:     uint64(LibraryMetrics().Counter("memberlist", "udp", "sent")),
		TCPSentBytes:     uint64(LibraryMetrics().Counter("memberlist", "tcp", "sent")),
		UDPReceivedBytes: uint64(LibraryMetrics().Counter("memberlist", "udp", "received")),
	}
}
