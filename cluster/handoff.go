package cluster

import (
	"context"
	"time"
)

// Handoff gives up every HA group this node runs (moves them to stop,
// then releases them through the log) and returns once they are
// released or ctx ends; the others take them over without waiting for
// the lease. The node is marked leaving, so nobody picks it again.
func (c *Cluster) Handoff(ctx context.Context) {
	if err := c.call(ctx, func() {
		c.ha.handoff = true
		c.self.Leaving = true
		c.bump()
		c.publishSelfNow()
		c.flushes.Mark()
	}); err != nil {
		return
	}
	for {
		var busy bool
		if err := c.call(ctx, func() { busy = c.handingOver() }); err != nil || !busy {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// handingOver reports whether a handoff still waits: a group runs here,
// or the lease still grants one (its release not committed yet).
func (c *Cluster) handingOver() bool {
	if len(c.heldHA()) > 0 {
		return true
	}
	return leaseHeld(c.ha.lease, time.Now()) && (len(c.ha.lease.Grant.Groups) > 0 || len(c.ha.lease.Grant.Release) > 0)
}
