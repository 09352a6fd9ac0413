package cluster

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

// The leader's planner loop: one goroutine that plans (plan.go, pure),
// proposes what the plan asks and starts the fencing it asks
// (stomith.go). It plans only while this node leads a term it has made
// ready (raftnode.Node.Ready), from the state this voter has applied,
// which a ready leader's is.

// kickPlanner asks for a plan soon; it never blocks.
func (c *Cluster) kickPlanner() {
	if c.rn == nil {
		return
	}
	select {
	case c.planKick <- struct{}{}:
	default:
	}
}

// planLoop is the planner's goroutine.
func (c *Cluster) planLoop() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-c.planKick:
		case <-t.C:
		case <-c.stop:
			return
		}
		wake := c.planOnce()
		if !wake.IsZero() {
			t.Reset(max(time.Until(wake), time.Millisecond))
		}
	}
}

// planOnce plans and proposes, and returns when to plan again.
func (c *Cluster) planOnce() time.Time {
	if !c.rn.IsLeader() {
		c.call(context.Background(), func() { c.ha.why = map[string]string{} })
		c.renewSince = nil // a later term counts afresh
		return time.Time{}
	}
	if err := c.rn.Ready(); err != nil {
		return time.Now().Add(100 * time.Millisecond)
	}
	now := time.Now()
	in := planInput{now: now, expiry: c.rn.Expiry, fencing: c.fence.busy(now), members: map[string]planMember{}, leader: c.cfg.Node}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	on := false
	if err := c.call(ctx, func() {
		on = c.ha.on
		in.cfg = c.ha.plan
		for name, m := range c.view.members {
			s, ok := c.view.statuses[name]
			in.members[name] = planMember{state: m.state, status: s, hasStatus: ok, up: m.changed}
		}
	}); err != nil || !on {
		return time.Time{}
	}
	// A member that memberlist still holds alive, silent to this leader
	// and unanswering to its pings since (probe.go), is suspect.
	for name, m := range in.members {
		if exp, ok := in.expiry(name); ok && m.state == api.NodeAlive &&
			c.probe.since(name, exp.Add(-time.Duration(float64(in.cfg.lease)*(1+raftnode.Drift)))) {
			m.state = api.NodeSuspect
			in.members[name] = m
		}
	}
	c.noteUp(in)
	st, _ := c.rn.State()
	in.state = st
	if f, ok := st.Files[store.KindHactl]; ok {
		h, err := cltab.ParseHactl("committed hactl", []byte(f.Text))
		if err != nil {
			c.log.Error("the committed hactl does not parse: planning nothing", zap.Error(err))
			return time.Time{}
		}
		in.hactl = h.Groups
	}
	out := plan(in)
	c.call(ctx, func() { c.ha.why = out.why })
	// A leader frozen, then thawed, plans at once on what it heard before
	// the freeze: every node looks silent, and it would fence them all,
	// itself included (the HA simulation, 3 nodes with stomith, seed 12).
	// Only a leader a quorum still follows fences.
	if len(out.fence) > 0 && c.rn.VerifyLeader() != nil {
		return time.Now().Add(100 * time.Millisecond)
	}
	for _, n := range out.fence {
		c.startFence(n)
	}
	if len(out.cmds) == 0 {
		return out.wake
	}
	res, err := c.rn.ProposeAll(out.cmds)
	if err != nil {
		c.log.Warn("planned changes not committed", zap.Error(err))
		return time.Now().Add(100 * time.Millisecond)
	}
	for i, r := range res {
		cmd := out.cmds[i]
		if r.Err != nil {
			c.log.Warn("planned change refused", zap.String("group", cmd.Group), zap.Error(r.Err))
			continue
		}
		if cmd.Op == store.OpSettle {
			c.log.Info("cluster settling: waiting for the expected members before the first placement", zap.Duration("settle", in.cfg.settle))
			continue
		}
		c.log.Info("HA assignment", zap.String("group", cmd.Group), zap.String("node", cmd.Node), zap.Bool("stop", cmd.Stop), zap.String("why", cmd.Why), zap.Uint64("version", r.Version))
	}
	// Every member renews now, for its grant to name what it was just
	// given (or no longer has); this node too.
	var last uint64
	for _, r := range res {
		last = max(last, r.Version)
	}
	c.call(ctx, func() {
		// By TCP to each member in a cluster this small; a bigger one
		// waits for its next renewal (a quarter lease) rather than take
		// a hundred connections at every plan.
		if c.ml != nil && c.ml.NumMembers() <= directLimit {
			c.sendAll(encode(msgCommit, commitHint{Index: last}))
		}
	})
	c.kickRenewal()
	// What was committed may allow the next step at once.
	return time.Now()
}

// noteUp sets each member's up time: since when it has been alive to
// memberlist (from the view) and renewing with this leader, whichever is
// later; zero for a member that is not both now. A renewal lapse seen
// by no plan goes unnoticed here, but a daemon that restarted is also a
// new member to memberlist, and a new leader counts from its own first
// plan: the hold can only come out longer than the truth, never shorter
// than this leader has seen.
func (c *Cluster) noteUp(in planInput) {
	if c.renewSince == nil {
		c.renewSince = map[string]time.Time{}
	}
	for name, m := range in.members {
		exp, ok := in.expiry(name)
		if m.state != api.NodeAlive || !ok || !in.now.Before(exp) {
			delete(c.renewSince, name)
			m.up = time.Time{}
			in.members[name] = m
			continue
		}
		since, seen := c.renewSince[name]
		if !seen {
			since = in.now
			c.renewSince[name] = since
		}
		m.up = maxTime(m.up, since)
		in.members[name] = m
	}
	for name := range c.renewSince {
		if _, ok := in.members[name]; !ok {
			delete(c.renewSince, name)
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
