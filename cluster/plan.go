package cluster

import (
	"fmt"
	"sort"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

// The leader's planner (SPEC 7, HA.md I2 and I4): a pure function of
// the committed state, the membership, the statuses heard and the time,
// to proposals. It never acts on a status alone: statuses rank
// candidates, only the lease bookkeeping of the leader and committed
// fencings say that an old copy is gone.

// planConfig is what the planner needs from the cltab.
type planConfig struct {
	// fenceTime is how long a node's keeper needs, after its lease,
	// to have stopped its HA groups (TERM, then KILL after stoptimeout).
	fenceTime time.Duration
	stomith   bool // a fencing command is configured
	lease     time.Duration
	witness   map[string]bool // voters that hold no group (:::witness:)
}

// fenceSilence is raftnode.FenceSilence of the lease.
func (c planConfig) fenceSilence() time.Duration { return raftnode.FenceSilence(c.lease) }

// planMember is one member as the planner sees it.
type planMember struct {
	state     string // api.NodeAlive, ...
	status    nodeStatus
	hasStatus bool
}

// planInput is everything a plan depends on.
type planInput struct {
	now     time.Time
	cfg     planConfig
	state   *store.State
	hactl   []*cltab.HAGroup
	members map[string]planMember
	// expiry is when the leader knows a node's lease to have ended in
	// real time (raftnode.Node.Expiry); ok false: unknown, never past.
	expiry func(node string) (time.Time, bool)
	// fencing: nodes whose fencing runs now.
	fencing map[string]bool
	// leader is the node that plans; it ranks as one load level busier
	// than it is (below).
	leader string
}

// planOut is what the leader is to do.
type planOut struct {
	cmds  []store.Command
	fence []string          // nodes to fence, each with a group to free
	why   map[string]string // group -> why it runs nowhere ("" when it runs)
	wake  time.Time         // plan again then, if nothing happens first
}

// Why texts that hastat shows.
const (
	whyStopped     = "stopped in hactl"
	whyNoNode      = "no eligible node"
	whyUnlisted    = "no longer in the hactl"
	whyMaintenance = "maintenance mode: HA starts, stops and moves nothing"
)

// plan applies the HA rules on the leader.
func plan(in planInput) planOut {
	out := planOut{why: map[string]string{}}
	wake := func(t time.Time) {
		if out.wake.IsZero() || t.Before(out.wake) {
			out.wake = t
		}
	}
	nowMs := in.now.UnixMilli()
	fenceAsked := map[string]bool{}
	if in.state.Maintenance {
		// An operator's: nothing is proposed, nobody fenced, until it
		// is off. The nodes keep what they run while their lease holds.
		for _, h := range in.hactl {
			out.why[h.Group] = whyMaintenance
		}
		return out
	}

	// gone reports whether node's copy of an assignment made at version
	// v is known to be gone: fenced since; or, without a fencing
	// command, past its lease and the fence time (with one, only its
	// exit 0 frees a group: a whole machine frozen, then resumed, would
	// run its processes until its keeper woke). Otherwise it returns when
	// time alone will free it (zero: never, as for a node that renews).
	gone := func(node string, v uint64) (bool, time.Time) {
		if in.state.FencedSince(store.Assignment{Node: node, Version: v}) {
			return true, time.Time{}
		}
		exp, ok := in.expiry(node)
		if !ok || in.cfg.stomith {
			return false, time.Time{}
		}
		at := exp.Add(in.cfg.fenceTime)
		return !in.now.Before(at), at
	}
	// fenced: node was fenced after version v (it is off: it starts
	// nothing again, whatever a grant says).
	fenced := func(node string, v uint64) bool {
		return in.state.FencedSince(store.Assignment{Node: node, Version: v})
	}
	// silent: the leader has not heard a renewal from node for d.
	silent := func(node string, d time.Duration) bool {
		exp, ok := in.expiry(node)
		if !ok {
			return false
		}
		heard := exp.Add(-time.Duration(float64(in.cfg.lease) * (1 + raftnode.Drift)))
		return in.now.Sub(heard) >= d
	}
	// lapsed: the node's lease has surely ended.
	lapsed := func(node string) bool {
		exp, ok := in.expiry(node)
		return ok && !in.now.Before(exp)
	}
	// renewing: the node's lease runs now, as far as the leader knows.
	renewing := func(node string) bool {
		exp, ok := in.expiry(node)
		return ok && in.now.Before(exp)
	}

	// The pool of candidates, ranked per group below: live, renewing
	// members with a status, not leaving. The leader counts as one load
	// level busier: where loads are alike, groups go to the others, and a
	// machine that dies then takes either the leader or an owner, not
	// both at once (an owner that leads is failed over only after an
	// election, seconds more).
	var pool []candidate
	for name, m := range in.members {
		if m.state == api.NodeAlive && m.hasStatus && !m.status.Leaving && renewing(name) && !in.cfg.witness[name] &&
			!in.state.Standby[name] && in.state.Forgotten[name] == 0 {
			level := loadLevel(m.status)
			if name == in.leader {
				level++
			}
			pool = append(pool, candidate{name, level, nil})
		}
	}
	sort.Slice(pool, func(i, j int) bool { return pool[i].node < pool[j].node })
	inPool := map[string]bool{}
	for _, c := range pool {
		inPool[c.node] = true
	}
	// eligible: node may take g now.
	eligible := func(g, node string) bool {
		return inPool[node] && !in.state.Banned(g, node) && !in.state.RuledOut(g, node, nowMs)
	}

	// leaveFor is why an operator's command takes g off x, where it
	// runs: "" when none does. A move waits for its node to be eligible.
	leaveFor := func(g, x string) string {
		switch t := in.state.Moves[g]; {
		case in.state.Standby[x]:
			return x + " is in standby"
		case in.state.Banned(g, x):
			return g + " is banned from " + x
		case t != "" && t != x && eligible(g, t):
			return "moved to " + t + " by an operator"
		}
		return ""
	}

	// Groups taken in this plan, so a mass placement spreads by hash
	// and load, not all onto the first-ranked node's view.
	listed := map[string]bool{}
	var cands []candidate
	for _, h := range in.hactl {
		g := h.Group
		listed[g] = true
		a := in.state.Assign[g]
		assign := func(node string, stop bool, why string) {
			out.cmds = append(out.cmds, store.Command{Op: store.OpAssign, Group: g, Node: node, Stop: stop, Epoch: a.Epoch, Why: why})
		}
		if a.Node != "" {
			x := a.Node
			isGone, at := gone(x, a.Version)
			m := in.members[x]
			// Suspect or dead to memberlist, and silent to the leader for
			// the fence silence: a false death under load, while the node
			// still renews, moves nothing and fences nobody.
			deadish := m.state != api.NodeAlive && silent(x, in.cfg.fenceSilence())
			switch {
			case h.Level == cltab.LevelStop && !a.Stop:
				assign(x, true, "hactl says stop")
				out.why[g] = whyStopped
				continue
			case !isGone && !a.Stop && !deadish && renewing(x) && leaveFor(g, x) != "":
				// An operator's: x is in standby, g is banned from x, or
				// g was moved elsewhere. x stops it and releases it, then
				// it is placed as if it ran nowhere.
				assign(x, true, leaveFor(g, x))
				out.why[g] = "waiting for " + x + " to stop it"
				continue
			case !isGone && !a.Stop && !deadish && renewing(x):
				out.why[g] = "" // runs there: stickiness
				// Look again when it would count as dead, or lapse. No
				// polling while it is silent but held alive: its pings
				// failing (probe.go) or memberlist's verdict plan again.
				exp, _ := in.expiry(x)
				if in.cfg.stomith && m.state != api.NodeAlive {
					wake(exp.Add(-time.Duration(float64(in.cfg.lease)*(1+raftnode.Drift)) + in.cfg.fenceSilence()))
				}
				wake(exp)
				continue
			case isGone && !a.Stop && !fenced(x, a.Version):
				// Gone by time alone: first commit a stop to x, and free the
				// group in a later plan if x is still gone then. A renewal of
				// x answered between this plan's reading of its expiry and
				// the commit of a new owner would grant x the group afresh
				// while it starts elsewhere (the HA simulation, 3 nodes, seed
				// 2: 38 ms on two nodes); once the stop is committed, every
				// grant to x carries a release instead, and a renewal answered
				// before it shows in x's expiry at the next plan.
				assign(x, true, x+"'s lease has ended")
				out.why[g] = "waiting for " + x + "'s lease to end"
				continue
			case isGone:
				// Its copy is gone: the group is free (below).
			case in.cfg.stomith && (deadish || lapsed(x)) && !in.fencing[x]:
				// Dead, or silent past its lease: fence it (once per plan
				// for all its groups; the caller runs one fencing per node
				// at a time).
				if !fenceAsked[x] {
					fenceAsked[x] = true
					out.fence = append(out.fence, x)
				}
				out.why[g] = "fencing " + x
				continue
			default:
				if a.Stop {
					out.why[g] = "waiting for " + x + " to stop it"
				} else {
					out.why[g] = "waiting for " + x + "'s lease to end"
				}
				if in.cfg.stomith && in.fencing[x] {
					out.why[g] = "fencing " + x
				}
				switch exp, ok := in.expiry(x); {
				case !at.IsZero():
					wake(at)
				case ok && in.cfg.stomith && !in.fencing[x]:
					// It is fenced once silent for the fence silence
					// (when memberlist no longer holds it alive) or past
					// its lease.
					heard := exp.Add(-time.Duration(float64(in.cfg.lease) * (1 + raftnode.Drift)))
					if t := heard.Add(in.cfg.fenceSilence()); t.After(in.now) && m.state != api.NodeAlive {
						wake(t)
					} else {
						wake(exp)
					}
				}
				continue
			}
			if h.Level == cltab.LevelStop {
				assign("", false, x+" is gone")
				out.why[g] = whyStopped
				continue
			}
		} else if h.Level == cltab.LevelStop {
			out.why[g] = whyStopped
			continue
		}

		cands = cands[:0]
		for _, c := range pool {
			if in.state.RuledOut(g, c.node, nowMs) {
				if r := in.state.RuleOuts[g][c.node]; r.Until > 0 {
					wake(time.UnixMilli(r.Until))
				}
				continue
			}
			if in.state.Banned(g, c.node) {
				continue
			}
			cands = append(cands, c)
		}
		if t := in.state.Moves[g]; t != "" {
			// Moved there by an operator: it ranks first, before the
			// preferred nodes.
			h = &cltab.HAGroup{Group: g, Level: h.Level, Prefer: append([]string{t}, h.Prefer...), Line: h.Line}
		}
		if len(cands) == 0 {
			out.why[g] = whyNoNode
			if a.Node != "" {
				assign("", false, a.Node+" is gone; no eligible node")
			}
			continue
		}
		_, first := placeAmong(h, cands, "")
		why := fmt.Sprintf("runs nowhere; %s ranks first of %d", first, len(cands))
		if a.Node != "" {
			why = fmt.Sprintf("%s is gone; %s ranks first of %d", a.Node, first, len(cands))
		}
		assign(first, false, why)
		out.why[g] = ""
	}
	// A group that left the hactl runs nowhere (SPEC 7).
	var unlisted []string
	for g, a := range in.state.Assign {
		if !listed[g] && a.Node != "" {
			unlisted = append(unlisted, g)
		}
	}
	sort.Strings(unlisted)
	for _, g := range unlisted {
		a := in.state.Assign[g]
		out.why[g] = whyUnlisted
		if isGone, at := gone(a.Node, a.Version); isGone {
			out.cmds = append(out.cmds, store.Command{Op: store.OpAssign, Group: g, Epoch: a.Epoch, Why: a.Node + " is gone; " + whyUnlisted})
		} else if !a.Stop {
			out.cmds = append(out.cmds, store.Command{Op: store.OpAssign, Group: g, Node: a.Node, Stop: true, Epoch: a.Epoch, Why: whyUnlisted})
		} else if !at.IsZero() {
			wake(at)
		}
	}
	return out
}
