package cluster

import (
	"fmt"
	"sort"
	"strings"
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

	// settle is how long a forming cluster waits for its expected
	// members (:::settle:; 0: it does not wait). Expected are the
	// :::servers: by name and :::nodes: by count: the shape the cltab
	// gives the cluster. Preferred nodes are not: an hactl may prefer a
	// node that is not (yet) a member, and --ha says so.
	settle      time.Duration
	expectNames []string
	expectCount int
	// failback: whether a group goes back to a more preferred node that
	// returns (:::failback:, each hactl line's failback= wins); that node
	// must have been up (alive and renewing) for failbackHold first.
	failback     bool
	failbackHold time.Duration
}

// FailbackHold is how long a node must have been up, alive to
// memberlist and renewing its lease without a break, before a group
// goes back to it: two leases, eight renewals at least. A node that
// crashes in a loop, or whose link flaps, is never up that long, so its
// groups do not follow it back and forth; and the lease is already the
// time the cluster trusts a node's liveness for.
func FailbackHold(lease time.Duration) time.Duration { return 2 * lease }

// fenceSilence is raftnode.FenceSilence of the lease.
func (c planConfig) fenceSilence() time.Duration { return raftnode.FenceSilence(c.lease) }

// planMember is one member as the planner sees it.
type planMember struct {
	state     string // api.NodeAlive, ...
	status    nodeStatus
	hasStatus bool
	// up is since when the leader has seen it alive and renewing without
	// a break (the later of memberlist's verdict and the leader's first
	// renewal from it in this term); zero: unknown, never long enough.
	up time.Time
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
	whySettling    = "cluster settling: "
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

	// A forming cluster (it has never assigned a group) waits for every
	// expected member before it places anything, up to the settle time:
	// a quorum of the first nodes up would otherwise place every group
	// among them, and stickiness keep it there when the preferred node
	// joins a second later. The wait runs from a start committed in the
	// store by the first leader that waited, not from this leader's
	// election: a leader change during the settle goes on from the same
	// start, so the wait stays bounded by the settle time (and the
	// skew of the two leaders' clocks). Waiting only delays placement:
	// nothing runs yet that it could leave running twice.
	//
	// The settle begins with the first plan that has a group to place
	// (listed at a level other than stop): a cluster bootstrapped with an
	// empty hactl has placed nothing, and waits when its first group
	// comes, not from a start long past.
	settling := ""
	if in.cfg.settle > 0 && len(in.state.Assign) == 0 && hasWork(in.hactl) {
		from := in.now
		if in.state.SettleFrom > 0 {
			from = time.UnixMilli(in.state.SettleFrom)
		}
		if until := from.Add(in.cfg.settle); in.now.Before(until) {
			if wait := settleMissing(in, renewing); wait != "" {
				settling = whySettling + wait + " up to " + in.cfg.settle.String()
				wake(until)
				if in.state.SettleFrom == 0 {
					out.cmds = append(out.cmds, store.Command{Op: store.OpSettle, At: nowMs})
				}
			}
		}
	}

	// failbackTo is the more preferred node than x that g goes back to,
	// if g fails back: one that may take g and has been up for the hold.
	// Otherwise it returns when the first such node will have been.
	failbackTo := func(h *cltab.HAGroup, x string) (string, time.Time) {
		var soonest time.Time
		if !h.FailsBack(in.cfg.failback) || in.state.Moves[h.Group] != "" {
			return "", soonest // no failback, or an operator's move rules
		}
		for _, p := range h.Prefer[:min(preferIndex(h, x), len(h.Prefer))] {
			up := in.members[p].up
			if !eligible(h.Group, p) || up.IsZero() {
				continue
			}
			at := up.Add(in.cfg.failbackHold)
			if !in.now.Before(at) {
				return p, time.Time{}
			}
			if soonest.IsZero() || at.Before(soonest) {
				soonest = at
			}
		}
		return "", soonest
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
			back, backAt := "", time.Time{}
			if len(h.Prefer) > 0 {
				back, backAt = failbackTo(h, x)
			}
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
			case !isGone && !a.Stop && !deadish && renewing(x) && back != "":
				// Failback: a more preferred node is back and has been up
				// for the hold. A graceful move, as an operator's: x stops
				// g and releases it, then it is placed, and the preferred
				// node ranks first.
				assign(x, true, "failback to "+back+", preferred before "+x)
				out.why[g] = "waiting for " + x + " to stop it (failback to " + back + ")"
				continue
			case !isGone && !a.Stop && !deadish && renewing(x):
				out.why[g] = "" // runs there: stickiness
				if !backAt.IsZero() {
					wake(backAt) // a preferred node's hold ends then
				}
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

		if settling != "" {
			out.why[g] = settling
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

// hasWork reports whether an hactl lists a group to run somewhere.
func hasWork(hactl []*cltab.HAGroup) bool {
	for _, h := range hactl {
		if h.Level != cltab.LevelStop {
			return true
		}
	}
	return false
}

// settleMissing says which expected members a forming cluster still
// waits for ("" when none): a member counts once it is alive, has a
// status and renews its lease, as a candidate must; a forgotten one is
// not waited for.
func settleMissing(in planInput, renewing func(string) bool) string {
	up := func(n string) bool {
		m, ok := in.members[n]
		return ok && m.state == api.NodeAlive && m.hasStatus && renewing(n)
	}
	var missing []string
	for _, n := range in.cfg.expectNames {
		if !up(n) && in.state.Forgotten[n] == 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return "waiting for " + strings.Join(missing, ", ")
	}
	n := 0
	for name := range in.members {
		if up(name) {
			n++
		}
	}
	if want := in.cfg.expectCount - len(in.state.Forgotten); n < want {
		return fmt.Sprintf("%d of %d nodes up, waiting for the others", n, want)
	}
	return ""
}
