package cluster

import (
	"context"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// t0 is the fake "now" of the HA rule tests.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testHAConfig is a 3-node cluster with a majority quorum and the
// default rules: plan hold planHold, claim delay 1s, test back-off 1m,
// level back-off 5m, fence time 10s; a cut-off node sees the others dead
// within 2s.
func testHAConfig() haConfig {
	return haConfig{quorum: 2, fenceTime: 10 * time.Second, planHold: planHold, claimDelay: claimDelay,
		testBackoff: testBackoff, failBackoff: failBackoff, detectMax: 2 * time.Second}
}

// settledMemory is the memory of a node that has been quorate for long.
func settledMemory(now time.Time) *haMemory {
	m := newHAMemory()
	m.quorateSince, m.wasQuorate = now.Add(-time.Hour), true
	return m
}

// st is a node's status: one CPU, no load, the given groups.
func st(node string, groups ...groupState) nodeStatus {
	return nodeStatus{Node: node, Version: 1, CPUs: 1, Groups: groups}
}

// loaded sets a status's CPUs and load.
func loaded(s nodeStatus, cpus int, load float64) nodeStatus {
	s.CPUs, s.Load = cpus, load
	return s
}

// badUntil marks a status as ruled out for g until a time.
func badUntil(s nodeStatus, g string, until time.Time) nodeStatus {
	s.Bad = map[string]int64{g: until.UnixMilli()}
	return s
}

// gs is one group's state, entered at since.
func gs(group, level, state string, since time.Time) groupState {
	return groupState{Group: group, Level: level, State: state, Since: since.UnixMilli()}
}

func alive(s nodeStatus) haMember {
	return haMember{state: api.NodeAlive, since: t0.Add(-time.Hour), status: s, hasStatus: true}
}

func inState(state string, since time.Time, s nodeStatus) haMember {
	return haMember{state: state, since: since, status: s, hasStatus: true}
}

func hactl(lines ...string) []*cltab.HAGroup {
	var out []*cltab.HAGroup
	for _, l := range lines {
		f := strings.Fields(l)
		h := &cltab.HAGroup{Group: f[0], Level: f[1]}
		if len(f) > 2 {
			h.Prefer = strings.Split(f[2], ",")
		}
		out = append(out, h)
	}
	return out
}

// members builds a view from statuses, every node alive.
func members(ss ...nodeStatus) map[string]haMember {
	m := map[string]haMember{}
	for _, s := range ss {
		m[s.Node] = alive(s)
	}
	return m
}

// with replaces some members of a view.
func with(m map[string]haMember, name string, x haMember) map[string]haMember {
	out := map[string]haMember{}
	for k, v := range m {
		out[k] = v
	}
	out[name] = x
	return out
}

// actionsOf renders a decision's actions without their reasons.
func actionsOf(d haDecision) []string {
	var out []string
	for _, a := range d.actions {
		switch {
		case a.Fence != "":
			out = append(out, "fence "+a.Fence)
		case a.Probe != "":
			out = append(out, "probe "+a.Probe)
		default:
			out = append(out, a.Group+" -> "+a.Level)
		}
	}
	return out
}

// byHash orders nodes for a group by the stable hash alone.
func byHash(group string, nodes ...string) []string {
	out := slices.Clone(nodes)
	sort.Slice(out, func(i, j int) bool { return stableHash(group, out[i]) < stableHash(group, out[j]) })
	return out
}

type haCase struct {
	name    string
	self    string
	now     time.Time // t0 if zero
	cfg     func(*haConfig)
	hactl   []*cltab.HAGroup
	members map[string]haMember
	mem     func(*haMemory)
	want    []string  // actions, as actionsOf renders them
	wake    time.Time // zero: no wake
	why     string    // a substring of why["web"], if set
	check   func(t *testing.T, mem *haMemory)
}

func (c haCase) run(t *testing.T) {
	t.Helper()
	cfg := testHAConfig()
	if c.cfg != nil {
		c.cfg(&cfg)
	}
	now := c.now
	if now.IsZero() {
		now = t0
	}
	mem := settledMemory(now)
	if c.mem != nil {
		c.mem(mem)
	}
	d := decide(haInput{self: c.self, now: now, cfg: cfg, hactl: c.hactl, members: c.members}, mem)
	if got := actionsOf(d); !slices.Equal(got, c.want) {
		t.Errorf("actions %q, want %q (why %q)", got, c.want, d.why)
	}
	if !d.wake.Equal(c.wake) {
		t.Errorf("wake %v, want %v", d.wake, c.wake)
	}
	if !d.wake.IsZero() && !d.wake.After(now) {
		t.Errorf("wake %v is not after now %v: the loop would spin", d.wake, now)
	}
	if c.why != "" && !strings.Contains(d.why["web"], c.why) {
		t.Errorf("why %q, want it to contain %q", d.why["web"], c.why)
	}
	if c.check != nil {
		c.check(t, mem)
	}
}

func TestDecide(t *testing.T) {
	web := hactl("web start")
	idle := members(st("a"), st("b"), st("c"))
	h := byHash("web", "a", "b", "c")
	first, second, third := h[0], h[1], h[2]
	running := func(node string) map[string]haMember {
		return with(idle, node, alive(st(node, gs("web", "start", api.StateDone, t0.Add(-time.Minute)))))
	}
	held := func(self, level, state string, since time.Time) map[string]haMember {
		return with(idle, self, alive(st(self, gs("web", level, state, since))))
	}
	died := t0.Add(-2 * time.Second) // when b was seen dead
	safe := testHAConfig().safeWait()
	regained := func(ago time.Duration) func(*haMemory) {
		return func(m *haMemory) {
			m.quorateSince, m.wasQuorate, m.lostQuorum = time.Time{}, true, true
			if ago > 0 {
				m.quorateSince = t0.Add(-ago)
			}
		}
	}
	noQuorumFor := func(d time.Duration) func(*haMemory) {
		return func(m *haMemory) { m.quorateSince, m.unquorateSince = time.Time{}, t0.Add(-d) }
	}
	deadHolder := with(idle, "b", inState(api.NodeDead, died, st("b", gs("web", "start", api.StateDone, t0.Add(-time.Minute)))))
	heardAt := died.Add(5 * time.Second)
	deadHeard := with(idle, "b", func() haMember {
		m := inState(api.NodeDead, died, st("b", gs("web", "start", api.StateDone, t0.Add(-time.Minute))))
		m.heard = heardAt
		return m
	}())
	stomith := func(c *haConfig) { c.stomith = true }
	bad := func(g string, until time.Time) func(*haMemory) { return func(m *haMemory) { m.bad[g] = until } }

	cases := []haCase{
		// Claims and ranking.
		{name: "the first preferred node claims at once", self: "b", hactl: hactl("web start b"), members: idle,
			want: []string{"web -> plan"}, why: "claimed by b"},
		{name: "the second preferred node waits one claim delay", self: "b", hactl: hactl("web start c,b"), members: idle,
			wake: t0.Add(claimDelay), why: "waiting for c"},
		{name: "the third candidate waits two claim delays", self: "a", hactl: hactl("web start c,b"), members: idle,
			wake: t0.Add(2 * claimDelay)},
		{name: "a preferred node ranks before a less loaded unlisted one", self: "a", hactl: hactl("web start c"),
			members: members(st("a"), loaded(st("b"), 1, 1), loaded(st("c"), 1, 8)), wake: t0.Add(claimDelay)},
		{name: "lowest load per CPU first", self: "a", hactl: web,
			members: members(loaded(st("a"), 4, 3.9), loaded(st("b"), 1, 1.6), loaded(st("c"), 2, 5)), want: []string{"web -> plan"}},
		{name: "lowest load per CPU: the second waits", self: "b", hactl: web,
			members: members(loaded(st("a"), 4, 3.9), loaded(st("b"), 1, 1.6), loaded(st("c"), 2, 5)), wake: t0.Add(claimDelay)},
		{name: "lowest load per CPU: the third waits twice", self: "c", hactl: web,
			members: members(loaded(st("a"), 4, 3.9), loaded(st("b"), 1, 1.6), loaded(st("c"), 2, 5)), wake: t0.Add(2 * claimDelay)},
		{name: "loads within one step: the stable hash decides", self: first, hactl: web,
			members: with(with(idle, second, alive(loaded(st(second), 1, 0))), first, alive(loaded(st(first), 2, 0.9))),
			want:    []string{"web -> plan"}},
		{name: "equal loads: the stable hash decides (first)", self: first, hactl: web, members: idle, want: []string{"web -> plan"}},
		{name: "equal loads: the stable hash decides (second)", self: second, hactl: web, members: idle, wake: t0.Add(claimDelay)},
		{name: "equal loads: the stable hash decides (third)", self: third, hactl: web, members: idle, wake: t0.Add(2 * claimDelay)},
		{name: "a dead node is no candidate", self: "b", hactl: hactl("web start a,b"),
			members: with(idle, "a", inState(api.NodeDead, died, st("a"))), want: []string{"web -> plan"}},
		{name: "a node that left is no candidate", self: "b", hactl: hactl("web start a,b"),
			members: with(idle, "a", inState(api.NodeLeft, died, st("a"))), want: []string{"web -> plan"}},
		{name: "a suspect node is no candidate", self: "b", hactl: hactl("web start a,b"),
			members: with(idle, "a", inState(api.NodeSuspect, died, st("a"))), want: []string{"web -> plan"}},
		{name: "a leaving node is no candidate", self: "b", hactl: hactl("web start a,b"),
			members: with(idle, "a", alive(nodeStatus{Node: "a", CPUs: 1, Leaving: true})), want: []string{"web -> plan"}},
		{name: "a node whose gossiped status rules it out is skipped", self: "b", hactl: hactl("web start a,b"),
			members: with(idle, "a", alive(badUntil(st("a"), "web", t0.Add(time.Minute)))), want: []string{"web -> plan"}},
		{name: "a gossiped ruling out for another group does not count", self: "b", hactl: hactl("web start a,b"),
			members: with(idle, "a", alive(badUntil(st("a"), "db", t0.Add(time.Minute)))), wake: t0.Add(claimDelay)},
		{name: "an expired gossiped ruling out counts no more", self: "b", hactl: hactl("web start a,b"),
			members: with(idle, "a", alive(badUntil(st("a"), "web", t0))), wake: t0.Add(claimDelay)},
		{name: "this node ruled out claims nothing, and wakes when that ends", self: "b", hactl: hactl("web start b"), members: idle,
			mem: bad("web", t0.Add(time.Minute)), wake: t0.Add(time.Minute), why: "waiting for"},
		{name: "a ruling out that ended is forgotten", self: "b", hactl: hactl("web start b"), members: idle,
			mem: bad("web", t0), want: []string{"web -> plan"},
			check: func(t *testing.T, m *haMemory) {
				if len(m.bad) != 0 {
					t.Errorf("bad %v, want it forgotten", m.bad)
				}
			}},
		{name: "no candidate at all", self: "a", hactl: web,
			members: members(st("a"), badUntil(st("b"), "web", t0.Add(time.Minute)), badUntil(st("c"), "web", t0.Add(time.Minute))),
			mem:     bad("web", t0.Add(time.Minute)), wake: t0.Add(time.Minute), why: "no eligible node"},
		{name: "a pending claim is not told again", self: "b", hactl: hactl("web start b"), members: idle,
			mem: func(m *haMemory) { m.pending["web"] = LevelPlan }},

		// Stickiness.
		{name: "a running group is not claimed by a less loaded node", self: "a", hactl: web,
			members: with(running("c"), "c", alive(loaded(st("c", gs("web", "start", api.StateDone, t0)), 1, 8)))},
		{name: "a running group does not move to a newly preferred node", self: "a", hactl: hactl("web start a"), members: running("c")},
		{name: "a running group stays, on its node too", self: "c", hactl: hactl("web start a"), members: running("c")},

		// The lifecycle on this node.
		{name: "plan is held planHold", self: "a", hactl: web, members: held("a", LevelPlan, api.StateDone, t0.Add(-100*time.Millisecond)),
			wake: t0.Add(planHold - 100*time.Millisecond)},
		{name: "plan held long enough: test", self: "a", hactl: web, members: held("a", LevelPlan, api.StateDone, t0.Add(-planHold)),
			want: []string{"web -> test"}},
		{name: "plan still running after planHold: wait for it, without spinning", self: "a", hactl: web,
			members: held("a", LevelPlan, api.StateStarting, t0.Add(-time.Second))},
		{name: "plan failed: ruled out, stop", self: "a", hactl: web, members: held("a", LevelPlan, api.StateFailed, t0),
			want: []string{"web -> stop"}, wake: t0.Add(testBackoff),
			check: func(t *testing.T, m *haMemory) {
				if !m.bad["web"].Equal(t0.Add(testBackoff)) {
					t.Errorf("bad %v", m.bad)
				}
			}},
		{name: "test running: wait", self: "a", hactl: web, members: held("a", LevelTest, api.StateChecking, t0)},
		{name: "test passed: the hactl level", self: "a", hactl: web, members: held("a", LevelTest, api.StatePassed, t0),
			want: []string{"web -> start"}},
		{name: "test level without tests (DONE): the hactl level", self: "a", hactl: web, members: held("a", LevelTest, api.StateDone, t0),
			want: []string{"web -> start"}},
		{name: "test failed: ruled out for testBackoff, stop", self: "a", hactl: web, members: held("a", LevelTest, api.StateFailed, t0),
			want: []string{"web -> stop"}, wake: t0.Add(testBackoff),
			check: func(t *testing.T, m *haMemory) {
				if !m.bad["web"].Equal(t0.Add(testBackoff)) {
					t.Errorf("bad %v, want web until %v", m.bad, t0.Add(testBackoff))
				}
			}},
		{name: "level failed: ruled out for failBackoff, stop", self: "a", hactl: web, members: held("a", "start", api.StateFailed, t0),
			want: []string{"web -> stop"}, wake: t0.Add(failBackoff),
			check: func(t *testing.T, m *haMemory) {
				if !m.bad["web"].Equal(t0.Add(failBackoff)) {
					t.Errorf("bad %v, want web until %v", m.bad, t0.Add(failBackoff))
				}
			}},
		{name: "level throttled: ruled out for failBackoff, stop", self: "a", hactl: web,
			members: with(idle, "a", alive(st("a", groupState{Group: "web", Level: "start", State: api.StateDone, Since: t0.UnixMilli(), Throttled: true}))),
			want:    []string{"web -> stop"}, wake: t0.Add(failBackoff)},
		{name: "running at the hactl level: nothing to do", self: "a", hactl: web, members: held("a", "start", api.StateDone, t0)},
		{name: "hactl level changed: follow on the owner", self: "a", hactl: hactl("web 3"), members: held("a", "start", api.StateDone, t0),
			want: []string{"web -> 3"}},
		{name: "hactl level changed: others do not claim", self: "b", hactl: hactl("web 3 b"), members: running("a")},
		{name: "a level told is waited for", self: "a", hactl: hactl("web 3"), members: held("a", "start", api.StateDone, t0),
			mem: func(m *haMemory) { m.pending["web"] = "3" }},
		{name: "a stop in progress is waited for", self: "a", hactl: web, members: held("a", LevelStop, api.StateStopping, t0)},
		{name: "the told level showing clears the pending tell", self: "a", hactl: web, members: held("a", "start", api.StateDone, t0),
			mem: func(m *haMemory) { m.pending["web"] = "start" },
			check: func(t *testing.T, m *haMemory) {
				if len(m.pending) != 0 {
					t.Errorf("pending %v", m.pending)
				}
			}},

		// Collisions.
		{name: "collision: a later phase wins, this node backs off", self: "a", hactl: web,
			members: with(held("a", LevelPlan, api.StateDone, t0), "b", alive(st("b", gs("web", LevelTest, api.StateChecking, t0)))),
			want:    []string{"web -> stop"}, why: ""},
		{name: "collision: a later phase wins, this node keeps it", self: "a", hactl: web,
			members: with(held("a", LevelTest, api.StateChecking, t0), "b", alive(st("b", gs("web", LevelPlan, api.StateDone, t0))))},
		{name: "collision: running beats testing", self: "a", hactl: web,
			members: with(held("a", LevelTest, api.StatePassed, t0), "b", alive(st("b", gs("web", "start", api.StateDone, t0)))),
			want:    []string{"web -> stop"}},
		// Two claimants may hold different hactl versions (an edit made
		// during a partition): the preferred list must not decide, or each
		// could win in its own eyes.
		{name: "collision: same phase, the preferred list does not count: the hash winner goes on", self: first, hactl: hactl("web start " + second),
			members: with(held(first, LevelPlan, api.StateDone, t0.Add(-time.Second)), second, alive(st(second, gs("web", LevelPlan, api.StateDone, t0)))),
			want:    []string{"web -> test"}},
		{name: "collision: same phase, the preferred list does not count: the preferred hash loser backs off", self: second, hactl: hactl("web start " + second),
			members: with(held(second, LevelPlan, api.StateDone, t0.Add(-time.Second)), first, alive(st(first, gs("web", LevelPlan, api.StateDone, t0)))),
			want:    []string{"web -> stop"}},
		{name: "collision: same phase, no preference: the hash loser backs off", self: second, hactl: web,
			members: with(held(second, LevelPlan, api.StateDone, t0.Add(-time.Second)), first, alive(st(first, gs("web", LevelPlan, api.StateDone, t0)))),
			want:    []string{"web -> stop"}},
		{name: "collision: same phase, no preference: the hash winner goes on", self: first, hactl: web,
			members: with(held(first, LevelPlan, api.StateDone, t0.Add(-time.Second)), second, alive(st(second, gs("web", LevelPlan, api.StateDone, t0)))),
			want:    []string{"web -> test"}},
		{name: "collision: load does not decide", self: first, hactl: web,
			members: with(with(idle, first, alive(loaded(st(first, gs("web", LevelPlan, api.StateDone, t0.Add(-time.Second))), 1, 9))),
				second, alive(st(second, gs("web", LevelPlan, api.StateDone, t0)))),
			want: []string{"web -> test"}},
		{name: "collision: a suspect holder counts", self: "a", hactl: web,
			members: with(held("a", LevelPlan, api.StateDone, t0), "b", inState(api.NodeSuspect, t0, st("b", gs("web", LevelTest, api.StateChecking, t0)))),
			want:    []string{"web -> stop"}},
		{name: "collision: a holder backing off does not make the winner back off too", self: "a", hactl: web,
			members: with(held("a", LevelTest, api.StatePassed, t0), "b", alive(st("b", gs("web", LevelStop, api.StateStopping, t0)))),
			why:     "b"},
		{name: "a group that runs elsewhere is not claimed", self: "a", hactl: hactl("web start a"),
			members: with(idle, "b", alive(st("b", gs("web", LevelPlan, api.StateDone, t0))))},
		{name: "a group stopping elsewhere is not claimed", self: "a", hactl: hactl("web start a"),
			members: with(idle, "b", alive(st("b", gs("web", LevelStop, api.StateStopping, t0))))},
		{name: "a group stopped elsewhere is claimed", self: "a", hactl: hactl("web start a"),
			members: with(idle, "b", alive(st("b", gs("web", LevelStop, api.StateDone, t0)))), want: []string{"web -> plan"}},

		// Quorum.
		{name: "quorum 0 (no :::nodes:/:::quorum:): HA is off, own groups stop", self: "a", hactl: web,
			cfg: func(c *haConfig) { c.quorum = 0 }, members: held("a", "start", api.StateDone, t0), mem: noQuorumFor(time.Hour),
			want: []string{"web -> stop"}, why: "no quorum: set :::nodes:"},
		{name: "quorum 0: nothing starts", self: "a", hactl: web, cfg: func(c *haConfig) { c.quorum = 0 },
			members: idle, mem: noQuorumFor(time.Hour), why: "no quorum"},
		{name: "not quorate for QuorumGrace: own groups stop", self: "a", hactl: web, mem: noQuorumFor(QuorumGrace),
			members: with(with(held("a", "start", api.StateDone, t0), "b", inState(api.NodeDead, died, st("b"))), "c", inState(api.NodeDead, died, st("c"))),
			want:    []string{"web -> stop"}, why: "no quorum: 1 of 2"},
		{name: "not quorate for less than QuorumGrace: own groups run on, until then", self: "a", hactl: web,
			mem:     noQuorumFor(QuorumGrace - time.Millisecond),
			members: with(with(held("a", "start", api.StateDone, t0), "b", inState(api.NodeDead, died, st("b"))), "c", inState(api.NodeDead, died, st("c"))),
			wake:    t0.Add(time.Millisecond), why: "no quorum"},
		{name: "quorum just lost: the grace counts from now", self: "a", hactl: web,
			members: with(with(held("a", "start", api.StateDone, t0), "b", inState(api.NodeDead, died, st("b"))), "c", inState(api.NodeDead, died, st("c"))),
			wake:    t0.Add(QuorumGrace)},
		{name: "not quorate: a claim in progress stops", self: "a", hactl: web, mem: noQuorumFor(QuorumGrace),
			members: with(with(held("a", LevelPlan, api.StateDone, t0), "b", inState(api.NodeDead, died, st("b"))), "c", inState(api.NodeLeft, died, st("c"))),
			want:    []string{"web -> stop"}},
		{name: "not quorate: nothing starts", self: "a", hactl: hactl("web start a"), mem: noQuorumFor(time.Hour),
			members: with(with(idle, "b", inState(api.NodeDead, died, st("b"))), "c", inState(api.NodeDead, died, st("c"))), why: "no quorum"},
		{name: "quorum regained: claims wait quorumStable", self: "a", hactl: hactl("web start a"), members: idle,
			mem: regained(0), wake: t0.Add(quorumStable), why: "settling"},
		{name: "quorum regained quorumStable ago: claims", self: "a", hactl: hactl("web start a"), members: idle,
			mem: regained(quorumStable), want: []string{"web -> plan"}},
		{name: "quorum regained: a running group stays", self: "a", hactl: web, members: held("a", "start", api.StateDone, t0),
			mem: regained(0), wake: t0.Add(quorumStable)},
		{name: "quorum reached by a node that just started: no settling", self: "a", hactl: hactl("web start a"), members: idle,
			mem: func(m *haMemory) { *m = *newHAMemory() }, want: []string{"web -> plan"}},
		{name: "suspect members count for the quorum", self: "a", hactl: hactl("web start a"),
			members: with(with(idle, "b", inState(api.NodeSuspect, died, st("b"))), "c", inState(api.NodeDead, died, st("c"))),
			want:    []string{"web -> plan"}},

		// A dead holder.
		{name: "dead holder, no stomith: wait its death plus the safe wait", self: "a", hactl: hactl("web start a"), members: deadHolder,
			wake: died.Add(safe), why: "fencing b pending"},
		{name: "dead holder, no stomith: after the safe wait the best candidate probes it", self: "a", hactl: hactl("web start a"),
			members: deadHolder, now: died.Add(safe), want: []string{"probe b"}, why: "fencing b pending",
			check: func(t *testing.T, m *haMemory) {
				if len(m.pending) != 0 {
					t.Errorf("pending %q after a probe: it is no tell", m.pending)
				}
			}},
		{name: "dead holder, no stomith: found unreachable after the safe wait, the best candidate claims", self: "a",
			hactl: hactl("web start a"), members: deadHolder, now: died.Add(safe), mem: func(m *haMemory) { m.probed["b"] = died },
			want: []string{"web -> plan"},
			check: func(t *testing.T, m *haMemory) {
				if !m.fenced["b"].Equal(died) {
					t.Errorf("fenced %v, want b's death %v", m.fenced, died)
				}
			}},
		{name: "dead holder, no stomith: a probe of an earlier death does not count", self: "a", hactl: hactl("web start a"),
			members: deadHolder, now: died.Add(safe), mem: func(m *haMemory) { m.probed["b"] = died.Add(-time.Hour) },
			want: []string{"probe b"}},
		{name: "dead holder heard from after its death: the safe wait counts from then", self: "a", hactl: hactl("web start a"),
			members: deadHeard, now: died.Add(safe), wake: heardAt.Add(safe), why: "fencing b pending"},
		{name: "dead holder heard from after its death: probed once silent a safe wait", self: "a", hactl: hactl("web start a"),
			members: deadHeard, now: heardAt.Add(safe), want: []string{"probe b"}},
		{name: "dead holder heard from after a probe: the probe no longer counts", self: "a", hactl: hactl("web start a"),
			members: deadHeard, now: heardAt.Add(safe), mem: func(m *haMemory) { m.probed["b"] = died },
			want: []string{"probe b"}},
		{name: "dead holder heard from, probed since: the best candidate claims", self: "a", hactl: hactl("web start a"),
			members: deadHeard, now: heardAt.Add(safe), mem: func(m *haMemory) { m.probed["b"] = heardAt },
			want: []string{"web -> plan"}},
		{name: "dead holder heard from before its death: the death counts", self: "a", hactl: hactl("web start a"),
			members: with(idle, "b", func() haMember {
				m := inState(api.NodeDead, died, st("b", gs("web", "start", api.StateDone, t0.Add(-time.Minute))))
				m.heard = died.Add(-time.Second)
				return m
			}()), now: died.Add(safe), want: []string{"probe b"}},
		{name: "dead holder, no stomith: the other candidates leave the probe to the best one", self: "c", hactl: hactl("web start a,c"),
			members: deadHolder, now: died.Add(safe), why: "fencing b pending"},
		{name: "dead holder with stomith: the best candidate fences, nothing starts", self: "a", hactl: hactl("web start a"),
			cfg: stomith, members: deadHolder, want: []string{"fence b"}, why: "fencing b pending"},
		{name: "dead holder with stomith: it fences even after fenceTime", self: "a", hactl: hactl("web start a"),
			cfg: stomith, members: deadHolder, now: died.Add(time.Hour), want: []string{"fence b"}},
		{name: "dead holder with stomith: the others wait", self: "c", hactl: hactl("web start a,c"),
			cfg: stomith, members: deadHolder, why: "fencing b pending"},
		{name: "dead holder with stomith: fenced, the best candidate claims", self: "a", hactl: hactl("web start a"),
			cfg: stomith, members: deadHolder, mem: func(m *haMemory) { m.fenced["b"] = died }, want: []string{"web -> plan"}},
		{name: "dead holder with stomith: a fence of an earlier death does not count", self: "a", hactl: hactl("web start a"),
			cfg: stomith, members: deadHolder, mem: func(m *haMemory) { m.fenced["b"] = died.Add(-time.Hour) }, want: []string{"fence b"}},
		{name: "dead holder with stomith: one fence for all its groups", self: "a", hactl: hactl("web start a", "db start a"), cfg: stomith,
			members: with(idle, "b", inState(api.NodeDead, died, st("b", gs("db", "start", api.StateDone, t0), gs("web", "start", api.StateDone, t0)))),
			want:    []string{"fence b"}},
		{name: "a node that left holding the group needs no fencing", self: "a", hactl: hactl("web start a"), cfg: stomith,
			members: with(idle, "b", inState(api.NodeLeft, died, st("b", gs("web", "start", api.StateDone, t0)))), want: []string{"web -> plan"}},
		{name: "a dead node that held nothing needs no fencing", self: "a", hactl: hactl("web start a"), cfg: stomith,
			members: with(idle, "b", inState(api.NodeDead, died, st("b", gs("web", LevelStop, api.StateDone, t0)))), want: []string{"web -> plan"}},

		// hactl stop.
		{name: "hactl stop: the owner stops", self: "a", hactl: hactl("web stop"), members: held("a", "start", api.StateDone, t0),
			want: []string{"web -> stop"}, why: "stopped in hactl"},
		{name: "hactl stop: a claim stops", self: "a", hactl: hactl("web stop"), members: held("a", LevelTest, api.StateChecking, t0),
			want: []string{"web -> stop"}},
		{name: "hactl stop: nobody claims", self: "a", hactl: hactl("web stop a"), members: idle, why: "stopped in hactl"},
		{name: "hactl stop: stopped already, nothing to tell", self: "a", hactl: hactl("web stop"), members: held("a", LevelStop, api.StateDone, t0)},

		// Members whose status is not known yet.
		{name: "an alive member without status: no claim (it may hold the group)", self: "a", hactl: hactl("web start a"),
			members: with(idle, "c", haMember{state: api.NodeAlive, since: t0}), why: "learning"},
		{name: "an alive member without status: no step forward", self: "a", hactl: web,
			members: with(held("a", LevelTest, api.StatePassed, t0), "c", haMember{state: api.NodeAlive, since: t0})},
		{name: "an alive member without status: stops still happen", self: "a", hactl: hactl("web stop"),
			members: with(held("a", "start", api.StateDone, t0), "c", haMember{state: api.NodeAlive, since: t0}),
			want:    []string{"web -> stop"}},
		{name: "a dead member without status is no obstacle", self: "a", hactl: hactl("web start a"),
			members: with(idle, "c", haMember{state: api.NodeDead, since: t0}), want: []string{"web -> plan"}},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

// haNode is one node deciding over time, with its own memory.
type haNode struct {
	self string
	mem  *haMemory
	cfg  haConfig
}

func (n *haNode) decide(t *testing.T, now time.Time, h []*cltab.HAGroup, m map[string]haMember) haDecision {
	t.Helper()
	d := decide(haInput{self: n.self, now: now, cfg: n.cfg, hactl: h, members: m}, n.mem)
	if !d.wake.IsZero() && !d.wake.After(now) {
		t.Errorf("%s at %v: wake %v is not after now", n.self, now, d.wake)
	}
	return d
}

func expect(t *testing.T, what string, d haDecision, want ...string) {
	t.Helper()
	if got := actionsOf(d); !slices.Equal(got, want) {
		t.Errorf("%s: actions %q, want %q (why %q)", what, got, want, d.why)
	}
}

func TestDecideClaimDelayCountsFromUnheld(t *testing.T) {
	web := hactl("web start d,c,b,a")
	m := members(st("a"), st("b"), st("c"), st("d"))
	n := &haNode{self: "b", mem: settledMemory(t0), cfg: testHAConfig()}
	n.cfg.quorum = 3
	d := n.decide(t, t0, web, m)
	expect(t, "third candidate at t0", d)
	if want := t0.Add(2 * claimDelay); !d.wake.Equal(want) {
		t.Errorf("wake %v, want %v", d.wake, want)
	}
	expect(t, "just before its turn", n.decide(t, t0.Add(2*claimDelay-time.Millisecond), web, m))
	expect(t, "its turn", n.decide(t, t0.Add(2*claimDelay), web, m), "web -> plan")
	expect(t, "told already", n.decide(t, t0.Add(2*claimDelay+time.Millisecond), web, m))
}

// While a member's status is unknown nothing is claimed, and the claim
// delays count from when it is known: had they run meanwhile, every
// candidate whose turn had come would claim at once when it is.
func TestDecideClaimDelayWaitsForLearning(t *testing.T) {
	web := hactl("web start d,c,b,a")
	known := members(st("a"), st("b"), st("c"), st("d"))
	unknown := with(known, "d", haMember{state: api.NodeAlive, since: t0})
	n := &haNode{self: "b", mem: settledMemory(t0), cfg: testHAConfig()}
	n.cfg.quorum = 3
	expect(t, "learning at t0", n.decide(t, t0, web, unknown))
	expect(t, "learning long after", n.decide(t, t0.Add(time.Minute), web, unknown))
	learnt := t0.Add(time.Minute + time.Second)
	expect(t, "learnt: its turn is two claim delays away", n.decide(t, learnt, web, known))
	expect(t, "just before its turn", n.decide(t, learnt.Add(2*claimDelay-time.Millisecond), web, known))
	expect(t, "its turn", n.decide(t, learnt.Add(2*claimDelay), web, known), "web -> plan")
}

// Load levels double: 0 under one runnable per CPU, then 1, 2, 3... at
// 1, 2, 4... per CPU.
func TestLoadLevel(t *testing.T) {
	for _, c := range []struct {
		cpus int
		load float64
		want int
	}{
		{1, 0, 0}, {1, 0.99, 0}, {1, 1, 1}, {1, 1.99, 1}, {1, 2, 2}, {1, 3.9, 2}, {1, 4, 3},
		{4, 3.9, 0}, {4, 4, 1}, {2, 5, 2}, {2, 160, 7}, {2, 255, 7}, {2, 256, 8},
		{0, 0.5, 0}, {0, 1.5, 1}, {1, math.NaN(), 0}, {1, math.Inf(1), 63}, {1, -3, 0},
	} {
		if got := loadLevel(nodeStatus{CPUs: c.cpus, Load: c.load}); got != c.want {
			t.Errorf("loadLevel(%d CPUs, load %v) = %d, want %d", c.cpus, c.load, got, c.want)
		}
	}
}

// stableHash is FNV-1a of group, a zero byte and node: every version
// must rank alike, or two nodes of a rolling upgrade could both win a
// collision.
func TestStableHashIsFNV1a(t *testing.T) {
	for _, c := range [][2]string{{"web", "a"}, {"", ""}, {"db", "node-17.example"}, {"g\x00", "x"}} {
		f := fnv.New64a()
		f.Write([]byte(c[0] + "\x00" + c[1]))
		if got, want := stableHash(c[0], c[1]), f.Sum64(); got != want {
			t.Errorf("stableHash(%q, %q) = %x, want %x", c[0], c[1], got, want)
		}
	}
}

// A pending tell is neither told again nor forgotten until the status
// shows it.
func TestDecidePendingTells(t *testing.T) {
	web := hactl("web start a")
	n := &haNode{self: "a", mem: settledMemory(t0), cfg: testHAConfig()}
	idle := members(st("a"), st("b"), st("c"))
	expect(t, "claim", n.decide(t, t0, web, idle), "web -> plan")
	expect(t, "not told again", n.decide(t, t0.Add(time.Second), web, idle))
	if n.mem.pending["web"] != LevelPlan {
		t.Fatalf("pending %v", n.mem.pending)
	}
	planned := with(idle, "a", alive(st("a", gs("web", LevelPlan, api.StateDone, t0.Add(time.Second)))))
	n.decide(t, t0.Add(time.Second), web, planned)
	if len(n.mem.pending) != 0 {
		t.Fatalf("pending %v after the status showed the level", n.mem.pending)
	}
	expect(t, "then test", n.decide(t, t0.Add(time.Second+planHold), web, planned), "web -> test")
}

// A failed test rules the node out; its gossiped status makes the next
// candidate claim at once, without waiting for its turn.
func TestDecideFailedTestMovesOn(t *testing.T) {
	web := hactl("web start a,b,c")
	a := &haNode{self: "a", mem: settledMemory(t0), cfg: testHAConfig()}
	b := &haNode{self: "b", mem: settledMemory(t0), cfg: testHAConfig()}
	failed := members(st("a", gs("web", LevelTest, api.StateFailed, t0)), st("b"), st("c"))
	expect(t, "a's test failed", a.decide(t, t0, web, failed), "web -> stop")
	expect(t, "b sees a testing", b.decide(t, t0, web, failed))
	// a's status now carries its ruling out, then its stop.
	until := a.mem.bad["web"]
	stopped := members(badUntil(st("a", gs("web", LevelStop, api.StateDone, t0)), "web", until), st("b"), st("c"))
	now := t0.Add(100 * time.Millisecond)
	expect(t, "a does not claim again", a.decide(t, now, web, stopped))
	expect(t, "b claims at once", b.decide(t, now, web, stopped), "web -> plan")
	// When a's ruling out ends, it is a candidate again, but the group
	// runs on b by then.
	onB := with(stopped, "b", alive(st("b", gs("web", "start", api.StateDone, now))))
	expect(t, "a after its back-off", a.decide(t, until, web, onB))
	if len(a.mem.bad) != 0 {
		t.Errorf("a still ruled out after the back-off: %v", a.mem.bad)
	}
}

// A group that became claimable again (quorum back, hactl start again,
// an eligible node again) is claimed in rank order again: the k-th
// candidate waits k claim delays from then, not from the first time the
// group ran nowhere, nor claims together with the first.
func TestDecideClaimDelayRestarts(t *testing.T) {
	for _, c := range []struct {
		name string
		gap  func(m map[string]haMember, h []*cltab.HAGroup) (map[string]haMember, []*cltab.HAGroup)
	}{
		{"quorum lost", func(m map[string]haMember, h []*cltab.HAGroup) (map[string]haMember, []*cltab.HAGroup) {
			return with(with(with(m, "a", inState(api.NodeDead, t0, st("a"))), "b", inState(api.NodeDead, t0, st("b"))), "c", inState(api.NodeDead, t0, st("c"))), h
		}},
		{"hactl stop", func(m map[string]haMember, h []*cltab.HAGroup) (map[string]haMember, []*cltab.HAGroup) {
			return m, hactl("web stop a,b")
		}},
		{"no eligible node", func(m map[string]haMember, h []*cltab.HAGroup) (map[string]haMember, []*cltab.HAGroup) {
			return with(with(m, "a", alive(badUntil(st("a"), "web", t0.Add(time.Hour)))), "c", alive(badUntil(st("c"), "web", t0.Add(time.Hour)))), h
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			web := hactl("web start a,b")
			idle := members(st("a"), st("b"), st("c"))
			a := &haNode{self: "a", mem: settledMemory(t0), cfg: testHAConfig()}
			b := &haNode{self: "b", mem: settledMemory(t0), cfg: testHAConfig()}
			// b saw the group run nowhere before the gap; a, the first
			// candidate, had not decided yet.
			expect(t, "second candidate waits", b.decide(t, t0, web, idle))
			m, h := c.gap(idle, web)
			for _, n := range []*haNode{a, b} {
				if c.name == "no eligible node" {
					n.mem.bad["web"] = t0.Add(time.Hour)
				}
				n.decide(t, t0.Add(100*time.Millisecond), h, m)
				delete(n.mem.bad, "web")
			}
			later := t0.Add(time.Minute)
			first := map[string]time.Time{}
			for dt := time.Duration(0); dt <= 10*time.Second; dt += 100 * time.Millisecond {
				for _, n := range []*haNode{a, b} {
					if d := n.decide(t, later.Add(dt), web, idle); len(d.actions) > 0 && first[n.self].IsZero() {
						first[n.self] = later.Add(dt)
					}
				}
			}
			if first["a"].IsZero() || first["b"].IsZero() {
				t.Fatalf("claims at %v: want both to claim, b after a", first)
			}
			if gap := first["b"].Sub(first["a"]); gap < claimDelay {
				t.Errorf("a claims %v after the gap, b %v: b claims %v after a, want at least the claim delay %v",
					first["a"].Sub(later), first["b"].Sub(later), gap, claimDelay)
			}
		})
	}
}

// After a dead holder's safe wait (or its fencing), only the best
// candidate acts and claims; the others do not all claim at once.
func TestDecideDeadHolderInRankOrder(t *testing.T) {
	for _, stomith := range []bool{false, true} {
		web := hactl("web start a,c")
		died := t0
		m := with(members(st("a"), st("c")), "b", inState(api.NodeDead, died, st("b", gs("web", "start", api.StateDone, t0.Add(-time.Minute)))))
		cfg := testHAConfig()
		cfg.stomith = stomith
		a := &haNode{self: "a", mem: settledMemory(t0), cfg: cfg}
		c := &haNode{self: "c", mem: settledMemory(t0), cfg: cfg}
		act := "probe b"
		if stomith {
			act = "fence b"
			expect(t, "a fences at once", a.decide(t, t0.Add(time.Second), web, m), act)
		} else {
			expect(t, "a waits for the safe wait", a.decide(t, t0.Add(time.Second), web, m))
		}
		expect(t, "c waits", c.decide(t, t0.Add(time.Second), web, m))
		safe := died.Add(cfg.safeWait())
		if !stomith {
			expect(t, "a probes b after the safe wait", a.decide(t, safe, web, m), act)
		}
		expect(t, "c leaves it to a", c.decide(t, safe, web, m))
		if stomith {
			a.mem.fenced["b"] = died
		} else {
			a.mem.probed["b"] = died
		}
		expect(t, "a claims", a.decide(t, safe, web, m), "web -> plan")
		expect(t, "c still waits", c.decide(t, safe.Add(time.Minute), web, m))
	}
}

// A node that rules itself out for a group gossips it in the same
// decision: the status it broadcasts carries the new Bad, so the next
// candidate need not wait for this node's turn to pass.
func TestHARuledOutIsPublishedAtOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hactl"), []byte("web start\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := cltab.Parse("cltab", []byte(":::nodes:1\nweb:w:start,test:once:true\n"))
	if err != nil {
		t.Fatal(err)
	}
	told := make(chan string, 16)
	c, err := Start(Config{Node: "a", StateDir: dir, Files: files(dir), Log: testLogger(t), Tab: tab,
		Tell: func(ctx context.Context, g, l string) error { told <- g + " " + l; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	next := func(want string) {
		t.Helper()
		select {
		case got := <-told:
			if got != want {
				t.Fatalf("told %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("not told %q", want)
		}
	}
	at := func(level, state string) api.Status {
		return api.Status{Node: "a", Groups: []api.GroupStatus{{Group: "web", Level: level, State: state, Since: time.Now()}}}
	}
	next("web plan")
	c.SetStatus(at(LevelPlan, api.StateDone))
	next("web test")
	c.SetStatus(at(LevelTest, api.StateFailed))
	// The first moment the loop shows the failed test, the decision
	// after it has run: its status must carry the ruling out already.
	var bad map[string]int64
	eventually(t, "the failed test in the status", func() bool {
		failed := false
		if err := c.call(context.Background(), func() {
			failed = len(c.self.Groups) == 1 && c.self.Groups[0].State == api.StateFailed
			bad = c.self.Bad
		}); err != nil {
			t.Fatal(err)
		}
		return failed
	})
	if _, ok := bad["web"]; !ok {
		t.Fatalf("status after a failed test has Bad %v, want web in it", bad)
	}
	next("web stop")
}

// A group removed from the hactl runs nowhere: its holder stops it, and
// then forgets it.
func TestDecideGroupRemovedFromHactl(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	mem := settledMemory(now)
	running := members(st("a", gs("web", "start", api.StateDone, now)), st("b"), st("c"))
	in := haInput{self: "a", now: now, cfg: testHAConfig(), hactl: hactl("web start"), members: running}
	if d := decide(in, mem); len(d.actions) != 0 {
		t.Fatalf("listed and running: %v", actionsOf(d))
	}
	in.hactl = nil
	d := decide(in, mem)
	if got := actionsOf(d); len(got) != 1 || got[0] != "web -> stop" {
		t.Fatalf("removed from the hactl: %v, want web -> stop", got)
	}
	in.members = members(st("a", gs("web", LevelStop, api.StateDone, now)), st("b"), st("c"))
	if d := decide(in, mem); len(d.actions) != 0 || mem.known["web"] {
		t.Fatalf("stopped: %v, still known %v", actionsOf(d), mem.known)
	}
}

// A claim is in the status the others get from the moment it is told,
// not once the engine reports the group: an engine that takes seconds to
// start a group (a loaded machine) must not leave the claim unseen until
// the next candidates claim too. Here the engines never report at all:
// the best-ranked node claims, the others see its claim (plan,
// STARTING), and none of them claims over the next claim delays.
func TestClaimGossipedBeforeTheEngineReports(t *testing.T) {
	tab, err := cltab.Parse("cltab", []byte(":::nodes:3\nweb:w:start,test,plan:once:true\n"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c"}
	tr := mockNet(names...)
	told := make(chan string, 64)
	var nodes []*testNode
	for i, name := range names {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := Config{Node: name, Key: testKey, Transport: tr[name], StateDir: dir, Files: files(dir),
			Hastat: filepath.Join(dir, "hastat"), Log: testLogger(t).Named(name), Tab: tab,
			Tell: func(ctx context.Context, g, l string) error { told <- name + " " + g + " " + l; return nil }}
		if i > 0 {
			cfg.Join = []string{nodes[0].Addr()}
		}
		c, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		nodes = append(nodes, &testNode{Cluster: c, name: name, dir: dir})
	}
	// The group comes once every node knows every other: claims made
	// while a node knows only part of the cluster collide by design.
	eventually(t, "3 members alive everywhere", allAlive(nodes))
	writeFile(t, nodes[0].path("hactl"), "web start\n")
	if err := nodes[0].FileChanged(context.Background(), KindHactl); err != nil {
		t.Fatal(err)
	}
	var claimant string
	select {
	case first := <-told:
		f := strings.Fields(first)
		if len(f) != 3 || f[1] != "web" || f[2] != LevelPlan {
			t.Fatalf("first tell %q, want NODE web plan", first)
		}
		claimant = f[0]
	case <-time.After(2*PushPullInterval + 5*time.Second):
		t.Fatal("nobody claimed web")
	}
	for _, n := range nodes {
		if n.name == claimant {
			continue
		}
		eventually(t, n.name+" sees "+claimant+"'s claim", func() bool {
			seen := false
			n.call(context.Background(), func() {
				gs, held := holds(n.view.statuses[claimant], "web")
				seen = held && gs.Level == LevelPlan && gs.State == api.StateStarting
			})
			return seen
		})
	}
	// The third candidate would claim two claim delays after the group
	// was seen running nowhere; wait twice that.
	select {
	case more := <-told:
		t.Fatalf("%s claimed web, then %q", claimant, more)
	case <-time.After(4 * claimDelay):
	}
}
