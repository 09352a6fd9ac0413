package cluster

import (
	"context"
	"time"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

// This node's HA state, owned by the loop, and the settings of the HA
// rules that the cltab gives.

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
		c.flushes.Mark()
	})
}

// HAOff says why this node can keep no HA group, "" when it can: the
// cltab names no voters, or the node runs alone and takes part in no
// consensus. An hactl edit made there would be kept by no node.
func (c *Cluster) HAOff(ctx context.Context) (string, error) {
	var why string
	err := c.call(ctx, func() {
		switch {
		case !c.ha.on:
			why = "HA is off: the cltab names no voters (:::nodes: or :::servers:)"
		case c.rn == nil && c.rc == nil:
			why = "HA is off on this node: it runs alone (no --bind or --join), in no consensus"
		}
	})
	return why, err
}

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
