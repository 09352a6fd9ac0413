package cluster

import (
	"net"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
)

// Backoff of the first join, and how often dead members are tried again
// (a healed partition merges back; memberlist alone forgets the dead).
// A member that died holding an HA group is tried every second for a
// while: if it is alive after all (a short cut, and it never heard it was
// held dead), the push/pull tells it, it refutes, and the others stop
// counting down to taking its groups.
const (
	joinFirst       = 100 * time.Millisecond
	joinMax         = 5 * time.Second
	reconnectEvery  = 10 * time.Second
	deadHolderEvery = time.Second
	deadHolderFor   = 10 * time.Minute
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
	t := time.NewTicker(deadHolderEvery)
	defer t.Stop()
	var mu sync.Mutex
	trying := map[string]bool{}
	for tick := 1; ; tick++ {
		select {
		case <-t.C:
		case <-c.stop:
			return
		}
		if c.leaving.Load() {
			continue
		}
		all := tick%int(reconnectEvery/deadHolderEvery) == 0
		dead := c.deadMembers(all)
		if all {
			var addrs []string
			for _, d := range dead {
				addrs = append(addrs, d.addr)
			}
			if len(addrs) > 0 {
				if n, _ := c.ml.Join(addrs); n > 0 {
					c.log.Info("reconnected to dead members", zap.Int("contacted", n))
				}
			}
			continue
		}
		for _, d := range dead {
			mu.Lock()
			busy := trying[d.name]
			trying[d.name] = true
			mu.Unlock()
			if busy {
				continue
			}
			go func() {
				if _, err := c.ml.Join([]string{d.addr}); err == nil {
					c.log.Info("a member held dead that ran HA groups answers", zap.String("node", d.name))
				}
				mu.Lock()
				delete(trying, d.name)
				mu.Unlock()
			}()
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

// deadMember is a dead member to try again.
type deadMember struct{ name, addr string }

// deadMembers asks the loop for the members that died: all of them, or
// those that held an HA group when they died, not long ago; of those,
// the ones this node is a teller of (amongTellers): three live members
// try each.
func (c *Cluster) deadMembers(all bool) []deadMember {
	var dead []deadMember
	done := make(chan struct{})
	select {
	case c.reqs <- func() {
		defer close(done)
		now := time.Now()
		for name, m := range c.view.members {
			if m.state != api.NodeDead || m.addr == "" {
				continue
			}
			if !all && (now.Sub(m.changed) > deadHolderFor || !c.heldHAby(name)) {
				continue
			}
			if !c.amongTellers(name) {
				continue // three others try it
			}
			dead = append(dead, deadMember{name, m.addr})
		}
	}:
		<-done
	case <-c.stop:
	}
	return dead
}

// tellers is how many members reach out to one member in its stead: to
// try one held dead again.
const tellers = 3

// amongTellers reports whether this node is one of the tellers of member
// name: the live members (other than name) that rank first by the stable
// hash of (name, member), alike on every node that sees the same
// membership. On 100 nodes, all of them doing it was 99 TCP connections
// for each member that came back, and as many push/pulls a second with
// each member held dead; a member that a teller misses has the next
// push/pull.
func (c *Cluster) amongTellers(name string) bool {
	mine := stableHash(name, c.cfg.Node)
	before := 0
	for n := range c.view.members {
		if n != name && n != c.cfg.Node && c.view.up(n) && stableHash(name, n) < mine {
			if before++; before >= tellers {
				return false
			}
		}
	}
	return true
}

// heldHAby reports whether the committed state assigns a group to node.
func (c *Cluster) heldHAby(node string) bool {
	if c.committed == nil {
		return false
	}
	for _, a := range c.committed.Assign {
		if a.Node == node {
			return true
		}
	}
	return false
}
