package cluster

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cluster/store"
)

// The node's HA rules (hanode.go) carried out: run on the loop, their
// tells go to the engine (after the keeper holds the group), their
// reports to the log; a tell or report that fails is made again.

// decideHA runs this node's HA rules and carries out what they ask, and
// wakes the planner when this node leads.
func (c *Cluster) decideHA() {
	c.kickPlanner()
	if c.cfg.Tell == nil || !c.ha.on {
		return
	}
	now := time.Now()
	if c.ha.lease.Until.IsZero() && !c.ha.handoff {
		// A daemon restarted on its state may have adopted an HA group's
		// processes, still covered by its keeper's deadline: it waits up
		// to a lease for its first renewal before it decides anything,
		// rather than stop them for want of a lease it is about to get.
		if wait := c.ha.started.Add(c.ha.plan.lease); now.Before(wait) {
			c.ha.timer.Reset(time.Until(wait))
			return
		}
	}
	local := make(map[string]groupState, len(c.self.Groups))
	for _, gs := range c.self.Groups {
		local[gs.Group] = gs
	}
	// The daemon gives its groups up a little before its keeper's
	// deadline: the keeper then finds them stopped, or stopping under the
	// engine's own TERM, KILL after stoptimeout, and does not race it
	// (a respawn entry restarted, a stop command killed as it begins).
	lease := c.ha.lease
	if !lease.Until.IsZero() {
		lease.Until = lease.Until.Add(-stopAhead(c.ha.plan.lease))
	}
	out := runNode(nodeInput{self: c.cfg.Node, now: now, cfg: c.ha.node, lease: lease, hactl: c.hactl, local: local, handoff: c.ha.handoff}, c.ha.mem)
	c.updateGate()
	for _, a := range out.tells {
		c.haTell(a, slices.Contains(out.hold, a.Group))
	}
	c.report(out.cmds)
	// The keeper forgets groups that stopped here and are no longer
	// granted.
	for g := range c.ha.kept {
		if gs, ok := local[g]; (!ok || !gs.held()) && c.ha.mem.pending[g] == "" {
			if _, granted := c.ha.lease.Grant.Groups[g]; !granted || c.ha.handoff {
				delete(c.ha.kept, g)
				c.keeperRelease(g)
			}
		}
	}
	if !out.wake.IsZero() {
		c.ha.timer.Reset(max(time.Until(out.wake), time.Millisecond))
	}
}

// haTell tells the engine, on a goroutine of its own: the engine may be
// busy, and the loop must not wait for it. A group about to start is
// held by the keeper first: were the daemon to die before it could
// stop it, the keeper stops it at the lease's end.
func (c *Cluster) haTell(a haAction, hold bool) {
	c.log.Info("HA", zap.String("group", a.Group), zap.String("level", a.Level), zap.String("why", a.Why))
	if hold {
		c.ha.kept[a.Group] = true
	}
	deadline, stop := c.ha.lease.UntilBoot, c.ha.stop
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		if hold && c.cfg.Keeper != nil {
			// The keeper holds a group only under a lease: the one this
			// decision was made with goes first (keeperLease sends it on a
			// goroutine of its own, which may not have run yet).
			if err = c.sendKeeperLease(ctx, deadline, stop); err == nil {
				err = c.cfg.Keeper.Hold(ctx, a.Group)
			}
			if err != nil {
				c.log.Error("the keeper does not hold the group: not starting it", zap.String("group", a.Group), zap.Error(err))
			}
		}
		if err == nil {
			err = c.cfg.Tell(ctx, a.Group, a.Level)
		}
		if err == nil {
			return
		}
		c.enqueue(func() {
			c.log.Error("HA tell failed", zap.String("group", a.Group), zap.String("level", a.Level), zap.Error(err))
			if c.ha.mem.pending[a.Group] == a.Level {
				delete(c.ha.mem.pending, a.Group)
			}
			c.retryHA()
		})
	}()
}

// report sends this node's reports (releases, failures) to the log.
// One batch is in flight at a time, and what comes meanwhile goes in the
// next: a node that stops hundreds of groups at once reports them in a
// few round trips, not one each (each a commit of its own: 30 to 90 a
// second, 20 s for 500 groups). A report not committed is made again a
// second later.
func (c *Cluster) report(cmds []store.Command) {
	c.ha.reports = append(c.ha.reports, cmds...)
	if c.ha.reporting || len(c.ha.reports) == 0 {
		return
	}
	batch := c.ha.reports
	c.ha.reports, c.ha.reporting = nil, true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.proposeAll(ctx, batch)
		cancel()
		c.enqueue(func() {
			c.ha.reporting = false
			for i, cmd := range batch {
				e := err
				if e == nil {
					e = res[i].Err
				}
				if e != nil {
					c.log.Warn("HA report not committed", zap.String("op", cmd.Op), zap.String("group", cmd.Group), zap.Error(e))
					delete(c.ha.mem.sent, cmd.Group) // try again
					c.retryHA()
				}
			}
			c.report(nil)
		})
	}()
}

// retryHA runs the HA rules again in a second: a tell or a report that
// failed is made again. It has a timer of its own: ha.timer is set to the
// lease's end at every renewal.
func (c *Cluster) retryHA() {
	time.AfterFunc(time.Second, func() { c.enqueue(c.flushes.Mark) })
}
