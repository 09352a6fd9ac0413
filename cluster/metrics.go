package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	metrics "github.com/hashicorp/go-metrics"

	"github.com/clinit/clinit/api"
)

// memberlist reports what it sends and receives to go-metrics' global
// sink; gossipSink keeps the byte counts (one set per process: tests with
// several members in one process see their sum).
type gossipSink struct {
	metrics.BlackholeSink
	udpSent, tcpSent, udpRecv atomic.Uint64
}

func (s *gossipSink) IncrCounterWithLabels(key []string, val float32, _ []metrics.Label) {
	s.IncrCounter(key, val)
}

func (s *gossipSink) IncrCounter(key []string, val float32) {
	n := len(key)
	if n < 3 || key[n-3] != "memberlist" {
		return
	}
	switch key[n-2] + "." + key[n-1] {
	case "udp.sent":
		s.udpSent.Add(uint64(val))
	case "tcp.sent":
		s.tcpSent.Add(uint64(val))
	case "udp.received":
		s.udpRecv.Add(uint64(val))
	}
}

var (
	gossip      = &gossipSink{}
	gossipSince time.Time
	gossipOnce  sync.Once
)

func countGossip() {
	gossipOnce.Do(func() {
		conf := metrics.DefaultConfig("")
		conf.EnableHostname, conf.EnableRuntimeMetrics, conf.EnableHostnameLabel = false, false, false
		metrics.NewGlobal(conf, gossip)
		gossipSince = time.Now().UTC()
	})
}

// GossipStats is what this process's memberlist sent and received.
func GossipStats() api.GossipStats {
	return api.GossipStats{
		Since:        gossipSince,
		UDPSentBytes: gossip.udpSent.Load(), TCPSentBytes: gossip.tcpSent.Load(),
		UDPReceivedBytes: gossip.udpRecv.Load(),
	}
}
