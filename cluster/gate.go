package cluster

import (
	"context"
	"time"

	"github.com/clinit/clinit/cltab"
)

// The gate: which groups are HA (a local tell of one is refused, IsHA),
// and whether a process of one may start now (MayStart), from the
// hactl and this node's lease.

// IsHA reports whether group g is an HA group: listed in the committed
// hactl. Its levels are the cluster's to set, not a local tell's.
func (c *Cluster) IsHA(ctx context.Context, g string) bool {
	var listed bool
	c.call(ctx, func() { listed = c.hactl.Group(g) != nil })
	return listed
}

// gate is what MayStart reads: the HA groups, and until when this
// node's lease lets each run here. Made by the loop, read by the engine.
type gate struct {
	hactl *cltab.Hactl         // the HA groups listed; never changed once parsed
	until map[string]time.Time // the granted groups
}

// isHA: listed in the hactl, or granted (a group the hactl no longer
// lists may still run here until it is stopped).
func (gt *gate) isHA(g string) bool {
	_, granted := gt.until[g]
	return granted || gt.hactl.Group(g) != nil
}

// MayStart reports whether a process of group g may start now at level:
// any group that is not HA, any group's stop entries (they undo what
// the group did: an address released), and an HA group at another level
// only while this node's lease (less the margin of stopAhead) holds it.
// It never blocks.
func (c *Cluster) MayStart(g, level string) bool {
	gt := c.gate.Load()
	if gt == nil || !gt.isHA(g) || level == LevelStop {
		return true
	}
	until := gt.until[g]
	return time.Now().Before(until)
}

// updateGate rebuilds the gate from the lease and the hactl; the loop
// calls it before any tell of a decision, and at every renewal.
func (c *Cluster) updateGate() {
	if !c.ha.on {
		c.gate.Store(nil)
		return
	}
	l := c.ha.lease
	gt := &gate{hactl: c.hactl, until: make(map[string]time.Time, len(l.Grant.Groups))}
	for g := range l.Grant.Groups {
		// A granted group that may not start (given up, handing over,
		// no lease yet) stays in until, at the zero time: still HA.
		var until time.Time
		if _, givingUp := c.ha.mem.giveUp[g]; !givingUp && !c.ha.handoff && !l.Until.IsZero() {
			until = l.Until.Add(-stopAhead(c.ha.plan.lease))
		}
		gt.until[g] = until
	}
	c.gate.Store(gt)
}
