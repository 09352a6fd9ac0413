package cluster

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

// Keeper is what the cluster needs of the node's lease keeper (package
// keeper): the deadline it enforces, the groups it holds.
type Keeper interface {
	Lease(ctx context.Context, deadline int64, stopTimeout time.Duration) error
	Hold(ctx context.Context, group string) error
	Release(ctx context.Context, group string) error
	// Close lets it go when the daemon stops (it exits if it holds
	// nothing).
	Close()
}

// haState is the HA part of the loop's state. Only Cluster.run touches
// it, except where a field says otherwise.
type haState struct {
	on      bool // the cltab names voters: HA runs
	plan    planConfig
	node    nodeConfig
	stop    time.Duration // the stop timeout the keeper applies
	mem     *nodeMemory
	lease   raftnode.Lease
	why     map[string]string // the leader's planner's, for hastat
	timer   *time.Timer
	dirty   bool            // decide again
	handoff bool            // shutting down: give every HA group up
	kept    map[string]bool // groups the keeper holds
	started time.Time       // when this daemon started
	// reports waiting for the batch in flight (report), and whether one is
	reports   []store.Command
	reporting bool
}

// Defaults of the HA rules.
const (
	DefaultFenceTime = 10 * time.Second
	testBackoff      = time.Minute
	failBackoff      = 5 * time.Minute
)

// The levels of the HA lifecycle (SPEC 7): a node assigned a group
// prepares it at plan, checks it can run it at test, then runs it at
// its hactl level; giving it up is stop.
const (
	LevelPlan = "plan"
	LevelTest = "test"
	LevelStop = cltab.LevelStop
)

func newHAState(t *cltab.Tab) *haState {
	tm := time.NewTimer(time.Hour)
	tm.Stop()
	h := &haState{mem: newNodeMemory(), why: map[string]string{}, timer: tm, kept: map[string]bool{}, started: time.Now()}
	h.configure(t)
	return h
}

// configure reads the HA settings of a cltab.
func (h *haState) configure(t *cltab.Tab) {
	_, on, _ := votersOf(t)
	h.on = on
	h.plan = planConfig{fenceTime: DefaultFenceTime, lease: raftnode.DefaultLease, failback: true}
	h.node = nodeConfig{testBackoff: testBackoff, failBackoff: failBackoff}
	h.stop = cltab.DefaultStopTimeout
	if t == nil {
		return
	}
	h.plan.fenceTime = t.Duration("fencetime", DefaultFenceTime)
	h.plan.lease = t.Duration("lease", raftnode.DefaultLease)
	h.plan.failback, h.plan.failbackHold = t.Failback(), FailbackHold(h.plan.lease)
	h.plan.settle = t.Duration("settle", cltab.DefaultSettle)
	if v, ok := t.Setting("servers"); ok {
		h.plan.expectNames = cltab.SplitNames(v)
	}
	h.plan.expectCount = t.Int("nodes", 0)
	_, h.plan.stomith = t.Setting("stomith")
	if v, ok := t.Setting("witness"); ok {
		h.plan.witness = map[string]bool{}
		for _, n := range cltab.SplitNames(v) {
			h.plan.witness[n] = true
		}
	}
	h.stop = t.Duration("stoptimeout", cltab.DefaultStopTimeout)
}

// SetTab hands the cluster a new cltab (its HA settings).
func (c *Cluster) SetTab(ctx context.Context, t *cltab.Tab) error {
	return c.call(ctx, func() {
		c.ha.configure(t)
		c.cfg.Tab = t
		c.ha.dirty = true
	})
}

// IsHA reports whether group g is an HA group: listed in the committed
// hactl. Its levels are the cluster's to set, not a local tell's.
func (c *Cluster) IsHA(ctx context.Context, g string) bool {
	var listed bool
	c.call(ctx, func() { listed = c.hactl.Group(g) != nil })
	return listed
}

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
		c.ha.dirty = true
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

// stopAhead is how long before its keeper the daemon stops its groups
// when its lease runs out: a tenth of the lease, at most half a second.
func stopAhead(lease time.Duration) time.Duration { return min(lease/10, 500*time.Millisecond) }

// heldHA lists the HA groups this node still runs.
func (c *Cluster) heldHA() []string {
	var held []string
	for _, gs := range c.self.Groups {
		if gs.held() && (c.hactl.Group(gs.Group) != nil || c.ha.kept[gs.Group]) {
			held = append(held, gs.Group)
		}
	}
	return held
}

// held: at a level that is not stop, or still stopping.
func (gs groupState) held() bool { return gs.Level != LevelStop || gs.State == "STOPPING" }

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
		c.ha.dirty = true
	}
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

// decideHA runs this node's HA rules and carries out what they ask, and
// wakes the planner when this node leads.
func (c *Cluster) decideHA() {
	c.ha.dirty = false
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
	c.dirtyView = true
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

// keeperState serialises what is sent to the keeper.
type keeperState struct {
	mu   sync.Mutex
	sent int64 // the latest deadline sent
}

// keeperLease sends a new deadline to the keeper. Deadlines only grow:
// an older one arriving late would shorten the lease for nothing.
func (c *Cluster) keeperLease(deadline int64) {
	if c.cfg.Keeper == nil {
		return
	}
	stop := c.ha.stop
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.sendKeeperLease(ctx, deadline, stop); err != nil {
			c.log.Error("the keeper did not take the lease", zap.Error(err))
		}
	}()
}

// sendKeeperLease makes sure the keeper has a deadline at least as late
// as deadline: sends it unless a later one went already.
func (c *Cluster) sendKeeperLease(ctx context.Context, deadline int64, stop time.Duration) error {
	c.keeper.mu.Lock()
	defer c.keeper.mu.Unlock()
	if deadline <= c.keeper.sent {
		return nil
	}
	if err := c.cfg.Keeper.Lease(ctx, deadline, stop); err != nil {
		return err
	}
	c.keeper.sent = deadline
	return nil
}

// retryHA runs the HA rules again in a second: a tell or a report that
// failed is made again. It has a timer of its own: ha.timer is set to the
// lease's end at every renewal.
func (c *Cluster) retryHA() {
	time.AfterFunc(time.Second, func() { c.enqueue(func() { c.ha.dirty = true }) })
}

func (c *Cluster) keeperRelease(g string) {
	if c.cfg.Keeper == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.cfg.Keeper.Release(ctx, g); err != nil {
			c.log.Warn("keeper release", zap.String("group", g), zap.Error(err))
		}
	}()
}

// haAction is a tell the HA rules ask for.
type haAction struct {
	Group, Level string
	Why          string
}

func (a haAction) String() string { return a.Group + " -> " + a.Level + ": " + a.Why }

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

// hastatNow is the collated view with what the cluster decided: the
// committed assignments and their epochs, the leader, this node's lease,
// and why each group that runs nowhere does.
func (c *Cluster) hastatNow() api.Hastat {
	now := time.Now()
	held := leaseHeld(c.ha.lease, now)
	why := map[string]string{}
	for _, g := range c.hactl.Groups {
		a := store.Assignment{}
		if c.committed != nil {
			a = c.committed.Assign[g.Group]
		}
		switch w, ok := c.ha.why[g.Group]; {
		case c.committed != nil && c.committed.Maintenance:
			why[g.Group] = whyMaintenance
		case !c.ha.on:
			why[g.Group] = "HA is off: the cltab names no voters (:::nodes: or :::servers:)"
		case ok && w != "" && c.rn != nil && c.rn.IsLeader():
			why[g.Group] = w
		case !held:
			why[g.Group] = "no quorum: no leader answers this node's renewals"
		case a.Node != "":
			why[g.Group] = "assigned to " + a.Node + ", not running yet"
		case a.Why != "":
			why[g.Group] = a.Why
		case c.committed != nil && c.committed.SettleFrom > 0 && len(c.committed.Assign) == 0 && c.ha.plan.settle > 0:
			// The leader's why names who it waits for; here, the
			// committed start says it waits.
			why[g.Group] = whySettling + "the leader waits for the expected members up to " + c.ha.plan.settle.String()
		default:
			why[g.Group] = "not placed yet"
		}
	}
	h := c.view.hastat(c.hactl, why)
	for i, n := range h.Nodes {
		if m := c.view.members[n.Node]; m != nil {
			h.Nodes[i].Address = m.addr
		}
	}
	if st := c.committed; st != nil {
		for i := range h.Groups {
			g := &h.Groups[i]
			a := st.Assign[g.Group]
			g.Assigned, g.Epoch = a.Node, a.Epoch
			g.MovedTo = st.Moves[g.Group]
			if len(st.Fails[g.Group]) > 0 {
				g.Fails = maps.Clone(st.Fails[g.Group])
			}
			for _, n := range slices.Sorted(maps.Keys(st.RuleOuts[g.Group])) {
				r := st.RuleOuts[g.Group][n]
				if r.Until > now.UnixMilli() {
					g.RuleOuts = append(g.RuleOuts, api.RuleOut{Node: n, Until: time.UnixMilli(r.Until).UTC(), Why: r.Why})
				}
			}
			for _, n := range slices.Sorted(maps.Keys(st.Bans[g.Group])) {
				g.RuleOuts = append(g.RuleOuts, api.RuleOut{Node: n, Why: st.Bans[g.Group][n].Why})
			}
		}
		for i := range h.Nodes {
			h.Nodes[i].Standby = st.Standby[h.Nodes[i].Node]
		}
	}
	// Maintenance as this node honours it: from its grant while its
	// lease holds.
	h.Maintenance = held && c.ha.lease.Grant.Maintenance
	if held {
		h.Leader, h.LeaseUntil = c.ha.lease.Grant.Leader, c.ha.lease.Until.UTC()
	}
	for _, r := range c.files {
		if r.version > 0 {
			if h.Versions == nil {
				h.Versions = map[string]uint64{}
			}
			h.Versions[r.Kind] = r.version
		}
	}
	return h
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
