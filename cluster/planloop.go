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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, ok := c.planInputNow(ctx)
	if !ok {
		return time.Time{}
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
	last, err := c.proposePlan(out.cmds, in.cfg.settle)
	if err != nil {
		return time.Now().Add(100 * time.Millisecond)
	}
	// Every member renews now, for its grant to name what it was just
	// given (or no longer has); this node too.
	c.hintCommit(ctx, last)
	// What was committed may allow the next step at once.
	return time.Now()
}

// planInputNow gathers what the planner reads: the members and their
// statuses from the loop, the suspects of the pings, the committed state
// and its hactl. ok is false when there is nothing to plan: HA is off,
// the loop has stopped, or the committed hactl does not parse.
func (c *Cluster) planInputNow(ctx context.Context) (in planInput, ok bool) {
	now := time.Now()
	in = planInput{now: now, expiry: c.rn.Expiry, fencing: c.fence.busy(now), members: map[string]planMember{}, leader: c.cfg.Node}
	on := false
	if err := c.call(ctx, func() {
		on = c.ha.on
		in.cfg = c.ha.plan
		for name, m := range c.view.members {
			s, ok := c.view.statuses[name]
			in.members[name] = planMember{state: m.state, status: s, hasStatus: ok, up: m.changed}
		}
	}); err != nil || !on {
		return in, false
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
			return in, false
		}
		in.hactl = h.Groups
	}
	return in, true
}

// proposePlan commits what the plan asks in one round trip, logs each
// change, and returns the newest version committed.
func (c *Cluster) proposePlan(cmds []store.Command, settle time.Duration) (uint64, error) {
	res, err := c.rn.ProposeAll(cmds)
	if err != nil {
		c.log.Warn("planned changes not committed", zap.Error(err))
		return 0, err
	}
	for i, r := range res {
		cmd := cmds[i]
		if r.Err != nil {
			c.log.Warn("planned change refused", zap.String("group", cmd.Group), zap.Error(r.Err))
			continue
		}
		if cmd.Op == store.OpSettle {
			c.log.Info("cluster settling: waiting for the expected members before the first placement", zap.Duration("settle", settle))
			continue
		}
		c.log.Info("HA assignment", zap.String("group", cmd.Group), zap.String("node", cmd.Node), zap.Bool("stop", cmd.Stop), zap.String("why", cmd.Why), zap.Uint64("version", r.Version))
	}
	var last uint64
	for _, r := range res {
		last = max(last, r.Version)
	}
	return last, nil
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
