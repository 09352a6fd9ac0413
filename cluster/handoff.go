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
	released := make(chan struct{})
	if err := c.call(ctx, func() {
		c.ha.handoff = true
		c.self.Leaving = true
		c.bump()
		c.publishSelfNow()
		c.flushes.Mark()
		c.handoffs = append(c.handoffs, released)
	}); err != nil {
		return
	}
	select {
	case <-released:
	case <-ctx.Done():
	case <-c.done:
	}
}

// noteHandoffs releases the waiting Handoffs once nothing is handed
// over any more. The loop runs it before each wait, after the events
// and flushes that change what it checks: this node's groups, its
// lease, and the lease's end (summaryTimer wakes the loop then).
func (c *Cluster) noteHandoffs() {
	if len(c.handoffs) == 0 || c.handingOver() {
		return
	}
	for _, ch := range c.handoffs {
		close(ch)
	}
	c.handoffs = nil
}

// handingOver reports whether a handoff still waits: a group runs here,
// or the lease still grants one (its release not committed yet).
func (c *Cluster) handingOver() bool {
	if len(c.heldHA()) > 0 {
		return true
	}
	return leaseHeld(c.ha.lease, time.Now()) && (len(c.ha.lease.Grant.Groups) > 0 || len(c.ha.lease.Grant.Release) > 0)
}
