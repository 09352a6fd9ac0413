package cluster

import (
	"fmt"
	"time"

	"github.com/clinit/clinit/api"
)

// Summary is the cluster's part of the one line a daemon shows systemd
// (STATUS=, `systemctl status`): whether it is in a cluster and runs HA,
// how many HA groups it holds, and whether a leader answers it.
type Summary struct {
	Clustered bool   // memberlist runs: not a single node
	HA        bool   // the cltab names voters
	Held      int    // HA groups this node runs
	Quorum    bool   // this node's lease holds: a leader a quorum follows answers it
	Leader    string // that leader ("" without quorum)
}

// String is the summary as it reads in the status line: "" for a single
// node, "HA off" in a cluster without voters, else "HA: 2 held here,
// quorum, leader n1" or "HA: 0 held here, no quorum".
func (s Summary) String() string {
	switch {
	case !s.Clustered && !s.HA:
		return ""
	case !s.HA:
		return "HA off"
	case !s.Quorum:
		return fmt.Sprintf("HA: %d held here, no quorum", s.Held)
	}
	return fmt.Sprintf("HA: %d held here, quorum, leader %s", s.Held, s.Leader)
}

// noteSummary hands OnSummary the summary when it changed, and tells
// the watchers when this node's lease lapses or holds again. The loop
// calls it after each flush and each renewal; a lease that ends with no
// renewal has no event of its own, so its end is timed.
func (c *Cluster) noteSummary() {
	now := time.Now()
	s := Summary{Clustered: c.ml != nil, HA: c.ha.on, Held: len(c.heldHA())}
	if l := c.ha.lease; leaseHeld(l, now) {
		s.Quorum, s.Leader = true, l.Grant.Leader
		if c.summaryTimer == nil {
			c.summaryTimer = time.AfterFunc(time.Hour, func() { c.enqueue(c.noteSummary) })
		}
		c.summaryTimer.Reset(time.Until(l.Until) + time.Millisecond)
	}
	if c.summarized && s == c.summary {
		return
	}
	prev, was := c.summary, c.summarized
	c.summary, c.summarized = s, true
	switch {
	case !s.HA:
	case prev.Quorum && !s.Quorum:
		c.emit(api.Event{Kind: api.EventLeaseLapsed, Time: now.UTC(), Node: c.cfg.Node,
			Why: fmt.Sprintf("no renewal answered since the lease from %s; HA groups stop here", prev.Leader)})
	case s.Quorum && (!prev.Quorum || prev.Leader != s.Leader) && was:
		c.emit(api.Event{Kind: api.EventLease, Time: now.UTC(), Node: c.cfg.Node, Leader: s.Leader})
	}
	if c.cfg.OnSummary != nil {
		c.cfg.OnSummary(s)
	}
}
