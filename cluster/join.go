package cluster

import (
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
)

// Backoff of the first join, and how often dead members are tried again
// (a healed partition merges back; memberlist alone forgets the dead).
const (
	joinFirst      = 100 * time.Millisecond
	joinMax        = 5 * time.Second
	reconnectEvery = 10 * time.Second
)

// join contacts the seeds until one answers, so that nodes can start in
// any order; then it keeps trying the members that died, so that the two
// sides of a healed partition find each other again.
func (c *Cluster) join() {
	wait := joinFirst
	warned := false
	for c.ml.NumMembers() < 2 {
		seeds := c.seeds()
		if len(seeds) == 0 {
			break
		}
		n, err := c.ml.Join(seeds)
		if n > 0 {
			c.log.Info("joined the cluster", zap.Int("contacted", n))
			break
		}
		if !warned {
			c.log.Warn("no seed answers yet; retrying", zap.Strings("seeds", seeds), zap.Error(err))
			warned = true
		}
		select {
		case <-time.After(wait):
		case <-c.stop:
			return
		}
		wait = min(2*wait, joinMax)
	}
	t := time.NewTicker(reconnectEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.stop:
			return
		}
		if addrs := c.deadAddrs(); len(addrs) > 0 && !c.leaving.Load() {
			if n, _ := c.ml.Join(addrs); n > 0 {
				c.log.Info("reconnected to dead members", zap.Int("contacted", n))
			}
		}
	}
}

// seeds resolves the --join addresses, leaving this node out.
func (c *Cluster) seeds() []string {
	self := c.ml.LocalNode()
	var out []string
	for _, s := range c.cfg.Join {
		host, port, err := splitHostPort(s)
		if err != nil {
			c.log.Warn("bad --join address", zap.String("seed", s), zap.Error(err))
			continue
		}
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			out = append(out, net.JoinHostPort(host, strconv.Itoa(port)))
			continue
		}
		for _, ip := range ips {
			if ip.Equal(self.Addr) && port == int(self.Port) {
				continue
			}
			out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		}
	}
	return out
}

// deadAddrs asks the loop for the addresses of members that died.
func (c *Cluster) deadAddrs() []string {
	var addrs []string
	done := make(chan struct{})
	select {
	case c.reqs <- func() {
		for _, m := range c.view.members {
			if m.state == api.NodeDead && m.addr != "" {
				addrs = append(addrs, m.addr)
			}
		}
		close(done)
	}:
		<-done
	case <-c.stop:
	}
	return addrs
}
