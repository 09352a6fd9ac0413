package cluster

import (
	"context"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A second opinion before a fence. When the leader has not heard a
// renewal of a node for the fence silence (raftnode.FenceSilence), it
// pings the node's memberlist port directly, a few times. A node that
// answers none of them counts as suspect to the planner, which fences
// it (with a fencing command) at once instead of waiting for memberlist
// to declare it dead, seconds later. memberlist holds its own suspicions
// to itself (its events are joins, leaves and updates, and the State of
// the nodes it lists is never updated), hence these pings of our own.

// Probing: probePings pings, probeGap apart, each waiting memberlist's
// probe timeout for its ack.
const (
	probePings = 3
	probeGap   = 50 * time.Millisecond
)

// prober remembers, per node, when a probe found it unreachable.
type prober struct {
	mu          sync.Mutex
	running     map[string]bool
	unreachable map[string]time.Time // node -> when its last probe failed
}

func newProber() *prober {
	return &prober{running: map[string]bool{}, unreachable: map[string]time.Time{}}
}

// since reports whether a probe that began after t found node
// unreachable.
func (p *prober) since(node string, t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.unreachable[node]
	return ok && at.After(t)
}

// probeSilent pings node, which the leader has not heard for the fence
// silence, and plans again if none of the pings was answered. It returns
// at once; one probe of a node runs at a time.
func (c *Cluster) probeSilent(node string) {
	ml := c.mlRef.Load()
	if ml == nil || node == c.cfg.Node {
		return
	}
	p := c.probe
	p.mu.Lock()
	if p.running[node] {
		p.mu.Unlock()
		return
	}
	p.running[node] = true
	p.mu.Unlock()
	go func() {
		defer func() {
			p.mu.Lock()
			delete(p.running, node)
			p.mu.Unlock()
		}()
		began := time.Now()
		var addr string
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.call(ctx, func() {
			if m := c.view.members[node]; m != nil {
				addr = m.addr
			}
		})
		cancel()
		if err != nil || addr == "" {
			return
		}
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return
		}
		answered := make(chan bool, probePings)
		for i := 0; i < probePings; i++ {
			go func() {
				_, err := ml.Ping(node, ua)
				answered <- err == nil
			}()
			time.Sleep(probeGap)
		}
		for i := 0; i < probePings; i++ {
			if <-answered {
				return
			}
		}
		p.mu.Lock()
		p.unreachable[node] = began
		p.mu.Unlock()
		c.log.Info("a silent node answers no ping", zap.String("node", node))
		c.kickPlanner()
	}()
}
