package cluster

import (
	"context"
	"time"

	"github.com/clinit/clinit/cluster/raftnode"
)

// This node's lease: renewed with the leader every quarter of it, taken
// by the loop (the gate, the keeper's deadline, the rules run again),
// and ended a little ahead of the keeper's deadline.

// renew runs this node's lease renewals until the cluster stops.
func (c *Cluster) renew() {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-c.stop
		cancel()
	}()
	r := &raftnode.Renewer{Node: c.cfg.Node, Client: c.leaseClient, Lease: c.ha.plan.lease, Log: c.log, Kick: c.renewKick,
		OnLease: func(l raftnode.Lease) {
			c.call(ctx, func() { c.onLease(l) })
		}}
	r.Run(ctx)
}

// kickRenewal asks for a renewal now; it never blocks.
func (c *Cluster) kickRenewal() {
	select {
	case c.renewKick <- struct{}{}:
	default:
	}
}

// hintCommit tells the members that the leader committed index, for
// each to renew at once (msgCommit), and renews this node's lease. By
// TCP to each member in a cluster this small; a bigger one waits for
// its next renewal (raftnode.RenewEvery: at most 500 ms) rather than
// take a hundred connections at every plan.
func (c *Cluster) hintCommit(ctx context.Context, index uint64) {
	c.call(ctx, func() {
		if c.ml != nil && c.ml.NumMembers() <= directLimit {
			c.sendAll(encode(msgCommit, commitHint{Index: index}))
		}
	})
	c.kickRenewal()
}

// onLease takes a renewal's lease: the keeper gets its deadline, and the
// rules run again.
func (c *Cluster) onLease(l raftnode.Lease) {
	prev := c.ha.lease
	c.ha.lease = l
	c.dropForgotten(l.Grant.Forgotten)
	c.updateGate()
	c.keeperLease(l.UntilBoot)
	if c.rn == nil {
		// A node that does not vote learns the committed files from
		// the leader when their versions move.
		for kind, v := range l.Grant.Files {
			if r := c.fileCopy(kind); r != nil && r.version < v {
				c.fetchState()
				break
			}
		}
	}
	if !sameGrant(prev.Grant, l.Grant) || !leaseHeld(prev, time.Now()) {
		c.flushes.Mark()
	}
	c.noteLearned()
	c.ha.timer.Reset(max(time.Until(l.Until.Add(-stopAhead(c.ha.plan.lease))), time.Millisecond))
	c.noteSummary()
}

func sameGrant(a, b raftnode.Grant) bool {
	if len(a.Groups) != len(b.Groups) || len(a.Release) != len(b.Release) || a.Maintenance != b.Maintenance {
		return false
	}
	for g, e := range a.Groups {
		if b.Groups[g] != e {
			return false
		}
	}
	for g, e := range a.Release {
		if b.Release[g] != e {
			return false
		}
	}
	return true
}

// stopAhead is how long before its keeper the daemon stops its groups
// when its lease runs out: a tenth of the lease, at most half a second.
func stopAhead(lease time.Duration) time.Duration { return min(lease/10, 500*time.Millisecond) }
