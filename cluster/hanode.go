package cluster

import (
	"sort"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

// What every node does with its lease (SPEC 7, HA.md I1 and I3): it
// runs an HA group only while its lease holds and the grant names the
// group, walking plan, test, then the hactl level; it stops the group
// when either ends, and reports through the log what only it knows:
// that it failed a group, and that it has stopped one it gives up.

// nodeConfig is what the node's rules need from the cltab.
type nodeConfig struct {
	testBackoff time.Duration // a failed test rules this node out this long
	failBackoff time.Duration // a failed level, this long
}

// nodeInput is everything a node's HA decision depends on.
type nodeInput struct {
	self    string
	now     time.Time
	cfg     nodeConfig
	lease   raftnode.Lease // zero: none yet
	hactl   *cltab.Hactl
	local   map[string]groupState // the engine's groups, by name
	handoff bool                  // shutting down: give every group up
}

// nodeMemory is what a node remembers between decisions.
type nodeMemory struct {
	pending map[string]string // group -> level told, not yet seen
	giveUp  map[string]uint64 // group -> epoch this node gives up
	sent    map[string]uint64 // group -> epoch whose release was proposed
}

func newNodeMemory() *nodeMemory {
	return &nodeMemory{pending: map[string]string{}, giveUp: map[string]uint64{}, sent: map[string]uint64{}}
}

// nodeOut is what the node is to do.
type nodeOut struct {
	tells []haAction
	cmds  []store.Command
	// hold: groups about to start, for the keeper before any start.
	hold []string
	wake time.Time
}

// haAction is a tell the HA rules ask for.
type haAction struct {
	Group, Level string
	Why          string
}

func (a haAction) String() string { return a.Group + " -> " + a.Level + ": " + a.Why }

// leaseHeld reports whether the lease runs at now.
func leaseHeld(l raftnode.Lease, now time.Time) bool {
	return !l.Until.IsZero() && now.Before(l.Until)
}

// runNode applies a node's HA rules.
func runNode(in nodeInput, mem *nodeMemory) nodeOut {
	var out nodeOut
	held := leaseHeld(in.lease, in.now)
	if held {
		out.wake = in.lease.Until
	}
	levelOf := func(g string) (string, bool) {
		if h := in.hactl.Group(g); h != nil {
			return h.Level, true
		}
		return "", false
	}
	// Every group this node has to think about: in its grant, in its
	// engine, or in its memory. A group of the hactl that is none of
	// these asks nothing of this node (most of them, on a big cluster).
	names := map[string]bool{}
	for g := range in.lease.Grant.Groups {
		names[g] = true
	}
	for g := range in.lease.Grant.Release {
		names[g] = true
	}
	for g := range mem.pending {
		names[g] = true
	}
	for _, m := range []map[string]uint64{mem.giveUp, mem.sent} {
		for g := range m {
			names[g] = true
		}
	}
	for g := range in.local {
		if _, ha := levelOf(g); ha || mem.pending[g] != "" {
			names[g] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for g := range names {
		sorted = append(sorted, g)
	}
	sort.Strings(sorted)

	for _, g := range sorted {
		gs, known := in.local[g]
		if p, ok := mem.pending[g]; ok && known && gs.Level == p {
			delete(mem.pending, g)
		}
		tell := func(level, why string) {
			if mem.pending[g] == level || (known && gs.Level == level && level != "") {
				return
			}
			if level != cltab.LevelStop && (!known || !gs.held()) {
				out.hold = append(out.hold, g)
			}
			mem.pending[g] = level
			out.tells = append(out.tells, haAction{Group: g, Level: level, Why: why})
		}
		running := known && gs.held()
		stopped := !running && mem.pending[g] == ""
		epoch, granted := in.lease.Grant.Groups[g]
		if e, ok := mem.giveUp[g]; ok && (!granted || e != epoch) {
			delete(mem.giveUp, g) // released, or another epoch now
		}
		if e, ok := mem.sent[g]; ok && (!granted || e != epoch) {
			if _, rel := in.lease.Grant.Release[g]; !rel || in.lease.Grant.Release[g] != e {
				delete(mem.sent, g)
			}
		}
		giveUp := func(why string, backoff time.Duration) {
			mem.giveUp[g] = epoch
			if backoff > 0 {
				out.cmds = append(out.cmds, store.Command{Op: store.OpFail, Group: g, Node: in.self, Until: in.now.Add(backoff).UnixMilli(), Why: why})
			}
			tell(cltab.LevelStop, why)
		}
		release := func(e uint64) {
			if mem.sent[g] == e || !held {
				return
			}
			mem.sent[g] = e
			out.cmds = append(out.cmds, store.Command{Op: store.OpAssign, Group: g, Epoch: e, Why: "released by " + in.self})
		}

		_, givingUp := mem.giveUp[g]
		level, listed := levelOf(g)
		if held && in.lease.Grant.Maintenance && !in.handoff {
			// Maintenance mode: nothing is started, stopped or
			// reported; what runs keeps running while the lease holds.
			continue
		}
		switch {
		case !held || !granted || in.handoff || givingUp:
			why := "not assigned here"
			switch {
			case !held:
				why = "no lease"
			case in.handoff:
				why = "handing over: this node is shutting down"
			case givingUp:
				why = "giving it up"
			}
			if running {
				tell(cltab.LevelStop, why)
				continue
			}
			if !stopped {
				continue // a level in progress
			}
			// Stopped here: release what the log still gives this node.
			if e, ok := in.lease.Grant.Release[g]; ok {
				release(e)
			} else if granted && (in.handoff || givingUp) {
				release(epoch)
			}
		case !listed || level == cltab.LevelStop:
			// The planner will ask for it back; start nothing.
			if running && gs.Level == LevelPlan {
				tell(cltab.LevelStop, "not in the hactl")
			}
		case mem.pending[g] != "" || (known && gs.State == api.StateStopping):
			// wait for the level in progress
		case !running:
			tell(LevelPlan, "assigned here")
		case gs.Level == LevelPlan && gs.State == api.StateFailed:
			giveUp("plan failed", in.cfg.testBackoff)
		case gs.Level == LevelPlan && (gs.State == api.StateDone || gs.State == api.StatePassed):
			tell(LevelTest, "planned")
		case gs.Level == LevelPlan:
			// planning
		case gs.Level == LevelTest && gs.State == api.StateFailed:
			giveUp("test failed: ruled out for "+in.cfg.testBackoff.String(), in.cfg.testBackoff)
		case gs.Level == LevelTest && (gs.State == api.StatePassed || gs.State == api.StateDone):
			tell(level, "test passed")
		case gs.Level == LevelTest:
			// testing
		case gs.State == api.StateFailed || gs.Throttled:
			giveUp("level "+gs.Level+" failed: ruled out for "+in.cfg.failBackoff.String(), in.cfg.failBackoff)
		case gs.Level != level:
			tell(level, "hactl level changed")
		}
	}
	return out
}
