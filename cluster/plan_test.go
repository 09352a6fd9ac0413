package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

var pt0 = time.Unix(1_800_000_000, 0)

const testLease = 3 * time.Second

// planWorld is a cluster as the leader sees it: members, the time each
// last renewed, and the committed state.
type planWorld struct {
	now     time.Time
	cfg     planConfig
	state   *store.State
	index   uint64
	hactl   []*cltab.HAGroup
	members map[string]planMember
	heard   map[string]time.Time
	fencing map[string]bool
	leader  string
}

func newWorld(t *testing.T, hactl string, nodes ...string) *planWorld {
	t.Helper()
	h, err := cltab.ParseHactl("hactl", []byte(hactl))
	if err != nil {
		t.Fatal(err)
	}
	w := &planWorld{now: pt0, cfg: planConfig{fenceTime: 10 * time.Second, lease: testLease}, state: store.New(), hactl: h.Groups,
		members: map[string]planMember{}, heard: map[string]time.Time{}, fencing: map[string]bool{}}
	for _, n := range nodes {
		w.members[n] = planMember{state: api.NodeAlive, status: nodeStatus{Node: n, CPUs: 2}, hasStatus: true}
		w.heard[n] = pt0
	}
	return w
}

func (w *planWorld) expiry(n string) (time.Time, bool) {
	h, ok := w.heard[n]
	if !ok {
		h = pt0.Add(-time.Hour) // the leader's election
	}
	return h.Add(time.Duration(float64(testLease) * (1 + raftnode.Drift))), true
}

func (w *planWorld) plan() planOut {
	return plan(planInput{now: w.now, cfg: w.cfg, state: w.state, hactl: w.hactl, members: w.members, expiry: w.expiry, fencing: w.fencing, leader: w.leader})
}

// commit applies a plan's commands as the log would.
func (w *planWorld) commit(t *testing.T, cmds []store.Command) {
	t.Helper()
	for _, c := range cmds {
		w.index++
		if r := w.state.Apply(w.index, c); r.Err != nil {
			t.Fatalf("planned command refused: %+v: %v", c, r.Err)
		}
	}
}

// step plans and commits, and returns the plan.
func (w *planWorld) step(t *testing.T) planOut {
	t.Helper()
	p := w.plan()
	w.commit(t, p.cmds)
	return p
}

func (w *planWorld) owner(g string) string {
	a := w.state.Assign[g]
	if a.Stop {
		return a.Node + "(stop)"
	}
	return a.Node
}

// renew: every live member renews now.
func (w *planWorld) renew(nodes ...string) {
	for _, n := range nodes {
		w.heard[n] = w.now
	}
}

func TestPlanPlacesOnPreferredAndSticks(t *testing.T) {
	w := newWorld(t, "web start n1,n2\n", "n0", "n1", "n2")
	w.step(t)
	if w.owner("web") != "n1" {
		t.Fatalf("web on %q, want n1", w.owner("web"))
	}
	// Stickiness: n1 renews, nothing moves, whatever the statuses say.
	w.now = w.now.Add(time.Second)
	w.renew("n0", "n1", "n2")
	w.members["n1"] = planMember{state: api.NodeAlive, status: nodeStatus{Node: "n1", CPUs: 1, Load: 1000}, hasStatus: true}
	if p := w.step(t); len(p.cmds) != 0 || p.why["web"] != "" {
		t.Errorf("a running group moved: %+v", p)
	}
}

// The leader ranks as one load level busier: groups go to the others
// where loads are alike, to the leader where the others are busier, and
// a preferred leader still comes first.
func TestPlanLeaderRanksBusier(t *testing.T) {
	w := newWorld(t, "a start\nb start\nc start\nd start\ne start\nf start\np start n0\n", "n0", "n1", "n2")
	w.leader = "n0"
	w.step(t)
	for _, g := range []string{"a", "b", "c", "d", "e", "f"} {
		if o := w.owner(g); o == "n0" || o == "" {
			t.Errorf("%s on %q: the leader (n0) took it, or nobody, while n1 and n2 are as loaded", g, o)
		}
	}
	if o := w.owner("p"); o != "n0" {
		t.Errorf("p on %q, want its preferred node n0, the leader", o)
	}
	w = newWorld(t, "a start\n", "n0", "n1", "n2")
	w.leader = "n0"
	for _, n := range []string{"n1", "n2"} {
		w.members[n] = planMember{state: api.NodeAlive, status: nodeStatus{Node: n, CPUs: 2, Load: 8}, hasStatus: true}
	}
	w.step(t)
	if o := w.owner("a"); o != "n0" {
		t.Errorf("a on %q, want n0: the others are two load levels busier than the leader", o)
	}
}

// A witness votes and holds nothing: not even a group that prefers it,
// nor one whose only other candidate is gone.
func TestPlanWitnessHoldsNothing(t *testing.T) {
	w := newWorld(t, "web start w,n1\ndb start\n", "n1", "n2", "w")
	w.cfg.witness = map[string]bool{"w": true}
	w.step(t)
	if o := w.owner("web"); o != "n1" {
		t.Errorf("web on %q, want n1: the witness w ranks first but holds nothing", o)
	}
	if o := w.owner("db"); o == "w" || o == "" {
		t.Errorf("db on %q", o)
	}
	for _, n := range []string{"n1", "n2"} {
		w.members[n] = planMember{state: api.NodeDead, hasStatus: true}
	}
	w.now = w.now.Add(time.Hour)
	w.renew("w")
	for i := 0; i < 3; i++ {
		w.step(t)
	}
	for _, g := range []string{"web", "db"} {
		if o := w.owner(g); o == "w" {
			t.Errorf("%s on the witness", g)
		}
	}
}

// A false memberlist death under load moves nothing while the node
// renews; and with stomith it fences nobody.
func TestPlanFalseDeathMovesNothing(t *testing.T) {
	for _, stomith := range []bool{false, true} {
		for _, state := range []string{api.NodeDead, api.NodeSuspect} {
			w := newWorld(t, "web start n1\n", "n0", "n1", "n2")
			w.cfg.stomith = stomith
			w.step(t)
			for i := 0; i < 20; i++ {
				w.now = w.now.Add(500 * time.Millisecond)
				w.renew("n0", "n1", "n2")
				w.members["n1"] = planMember{state: state, status: w.members["n1"].status, hasStatus: true}
				p := w.step(t)
				if len(p.cmds) != 0 || len(p.fence) != 0 {
					t.Fatalf("stomith %v: a renewing node held %s: %+v", stomith, state, p)
				}
			}
		}
	}
}

// Without stomith a silent owner's group moves at its lease end plus
// the fence time, not before.
func TestPlanMovesAfterLeaseAndFenceTime(t *testing.T) {
	w := newWorld(t, "web start n1\n", "n0", "n1", "n2")
	w.step(t)
	epoch := w.state.Assign["web"].Epoch
	last := w.now // n1's last renewal
	w.members["n1"] = planMember{state: api.NodeDead, hasStatus: true, status: w.members["n1"].status}
	free := last.Add(time.Duration(float64(testLease)*(1+raftnode.Drift)) + w.cfg.fenceTime)
	for w.now.Before(free) {
		w.renew("n0", "n2")
		p := w.step(t)
		if w.owner("web") != "n1" {
			t.Fatalf("web moved at %v, %v before its old owner's deadline", w.now.Sub(last), free.Sub(w.now))
		}
		if p.wake.IsZero() || p.wake.After(free) || !p.wake.After(w.now) {
			t.Fatalf("at %v: wakes at %v, want after now and by %v", w.now.Sub(last), p.wake.Sub(last), free.Sub(last))
		}
		if w.now.After(last.Add(testLease*2)) && !strings.Contains(p.why["web"], "lease") {
			t.Fatalf("at %v: why %q", w.now.Sub(last), p.why["web"])
		}
		w.now = w.now.Add(250 * time.Millisecond)
	}
	w.now = free
	w.renew("n0", "n2")
	// First a stop to n1, committed: a renewal of n1 answered from then
	// on releases web instead of granting it (plan.go, gone by time).
	w.step(t)
	if o := w.owner("web"); o != "n1(stop)" {
		t.Fatalf("web on %q at the deadline, want a stop to n1 first", o)
	}
	w.step(t)
	if o := w.owner("web"); o != "n0" && o != "n2" {
		t.Fatalf("web on %q after the deadline", o)
	}
	if w.state.Assign["web"].Epoch != epoch+2 {
		t.Errorf("epoch %d, want %d", w.state.Assign["web"].Epoch, epoch+2)
	}
}

func TestPlanFencesOnceThenMoves(t *testing.T) {
	w := newWorld(t, "web start n1\ndb start n1\n", "n0", "n1", "n2")
	w.cfg.stomith = true
	w.step(t)
	// Suspect (its pings unanswered, probe.go), but heard 1 s ago: wait
	// for the fence silence.
	w.members["n1"] = planMember{state: api.NodeSuspect, hasStatus: true}
	w.now = w.now.Add(time.Second)
	w.renew("n0", "n2")
	p := w.step(t)
	if len(p.fence) != 0 || !p.wake.Equal(pt0.Add(w.cfg.fenceSilence())) {
		t.Fatalf("fenced a node heard 1 s ago, or wakes at %v: %+v", p.wake.Sub(pt0), p)
	}
	w.now = pt0.Add(w.cfg.fenceSilence())
	p = w.step(t)
	if len(p.fence) != 1 || p.fence[0] != "n1" || len(p.cmds) != 0 {
		t.Fatalf("want one fencing of n1 for its two groups, no move: %+v", p)
	}
	w.fencing["n1"] = true
	if p := w.step(t); len(p.fence) != 0 || p.why["web"] != "fencing n1" {
		t.Fatalf("while fencing: %+v", p)
	}
	// Without fencing's success, no amount of time moves it.
	w.now = w.now.Add(time.Hour)
	w.renew("n0", "n2")
	if p := w.step(t); len(p.cmds) != 0 {
		t.Fatalf("moved without a successful fencing: %+v", p.cmds)
	}
	delete(w.fencing, "n1")
	w.commit(t, []store.Command{{Op: store.OpFenced, Node: "n1", At: w.now.UnixMilli()}})
	w.step(t)
	for _, g := range []string{"web", "db"} {
		if o := w.owner(g); o == "n1" || o == "" {
			t.Errorf("%s on %q after n1 was fenced", g, o)
		}
	}
}

func TestPlanStopWaitsForRelease(t *testing.T) {
	w := newWorld(t, "web start n1\n", "n0", "n1")
	w.step(t)
	w.hactl[0].Level = cltab.LevelStop
	w.step(t)
	if w.owner("web") != "n1(stop)" {
		t.Fatalf("web %q, want n1 asked to stop", w.owner("web"))
	}
	// Back to start before n1 released it: it stays n1's.
	w.hactl[0].Level = "start"
	if p := w.step(t); len(p.cmds) != 0 || !strings.Contains(p.why["web"], "waiting for n1") {
		t.Fatalf("reassigned a group its owner has not released: %+v", p)
	}
	// n1 released it: placed again.
	a := w.state.Assign["web"]
	w.commit(t, []store.Command{{Op: store.OpAssign, Group: "web", Epoch: a.Epoch}})
	w.step(t)
	if w.owner("web") != "n1" {
		t.Errorf("after release: %q", w.owner("web"))
	}
}

func TestPlanRemovedFromHactl(t *testing.T) {
	w := newWorld(t, "web start\n", "n0")
	w.step(t)
	w.hactl = nil
	p := w.step(t)
	if w.owner("web") != "n0(stop)" || p.why["web"] != whyUnlisted {
		t.Errorf("unlisted group: %q, %+v", w.owner("web"), p)
	}
}

func TestPlanRuleOutsAndCandidates(t *testing.T) {
	w := newWorld(t, "web start n1,n2\n", "n0", "n1", "n2", "n3")
	w.commit(t, []store.Command{{Op: store.OpFail, Group: "web", Node: "n1", Until: pt0.Add(time.Minute).UnixMilli()}})
	w.members["n2"] = planMember{state: api.NodeAlive, hasStatus: true, status: nodeStatus{Node: "n2", Leaving: true}}
	delete(w.heard, "n0") // n0 never renewed with this leader: not a candidate
	p := w.step(t)
	if w.owner("web") != "n3" {
		t.Errorf("web on %q; n1 is ruled out, n2 leaving, n0 not renewing: want n3", w.owner("web"))
	}
	if !p.wake.Equal(pt0.Add(time.Minute)) {
		t.Errorf("wake %v, want the rule-out's end", p.wake)
	}
	// Nobody: no eligible node, and it says so.
	w2 := newWorld(t, "web start\n")
	if p := w2.step(t); p.why["web"] != whyNoNode || len(p.cmds) != 0 {
		t.Errorf("no members: %+v", p)
	}
}

func TestPlanMassPlacementSpreads(t *testing.T) {
	var hb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&hb, "g%d start\n", i)
	}
	w := newWorld(t, hb.String(), "n0", "n1", "n2")
	p := w.step(t)
	if len(p.cmds) != 1000 {
		t.Fatalf("%d assignments for 1,000 groups", len(p.cmds))
	}
	count := map[string]int{}
	for g := range w.state.Assign {
		count[w.owner(g)]++
	}
	for _, n := range []string{"n0", "n1", "n2"} {
		if count[n] < 300 {
			t.Errorf("%s got %d of 1,000 groups: %v", n, count[n], count)
		}
	}
	if p := w.step(t); len(p.cmds) != 0 {
		t.Errorf("a second plan changed %d assignments", len(p.cmds))
	}
}

// The stable hash spreads groups named alike over nodes named alike: of
// 1,000 groups g0001..g1000 ranked among n1..nN with equal loads, no
// node is first for more than three times its share, and every node is
// first for some (FNV-1a alone gave one node of 100 349 groups).
func TestStableHashSpreads(t *testing.T) {
	for _, n := range []int{3, 30, 100} {
		var cands []candidate
		for i := 1; i <= n; i++ {
			cands = append(cands, candidate{node: fmt.Sprintf("n%d", i)})
		}
		count := map[string]int{}
		for g := 1; g <= 1000; g++ {
			_, first := placeAmong(&cltab.HAGroup{Group: fmt.Sprintf("g%04d", g)}, cands, "n1")
			count[first]++
		}
		share := 1000 / n
		for _, c := range cands {
			if k := count[c.node]; k == 0 || k > 3*share {
				t.Errorf("%d nodes: %s is first for %d of 1,000 groups (share %d): %v", n, c.node, k, share, count)
				break
			}
		}
	}
}

// release: the node asked to stop g stops it and releases it (its
// report, through the log).
func (w *planWorld) release(t *testing.T, g string) {
	t.Helper()
	a := w.state.Assign[g]
	if !a.Stop {
		t.Fatalf("%s is not asked to stop: %+v", g, a)
	}
	w.commit(t, []store.Command{{Op: store.OpAssign, Group: g, Epoch: a.Epoch, Why: "released by " + a.Node}})
}

// An operator's commands: a move takes the group to its node gracefully
// (stop, release, start there) and keeps it there; a ban keeps it off; a
// node in standby gives its groups up and takes none; in maintenance the
// planner proposes nothing at all; a forgotten node's groups are free at
// once.
func TestPlanOperatorCommands(t *testing.T) {
	w := newWorld(t, "web start n1\n", "n0", "n1", "n2")
	w.step(t)
	if w.owner("web") != "n1" {
		t.Fatalf("web on %q, want n1", w.owner("web"))
	}
	op := func(c store.Command) {
		t.Helper()
		w.commit(t, []store.Command{c})
	}
	// handOver: c asks n1 to stop web, for why; once n1 has released it,
	// web starts on to (after says why there).
	handOver := func(c store.Command, why, to, after string) {
		t.Helper()
		op(c)
		if p := w.step(t); w.owner("web") != "n1(stop)" || !strings.Contains(p.cmds[0].Why, why) {
			t.Fatalf("%s: web %q, plan %+v", c.Op, w.owner("web"), p)
		}
		w.release(t, "web")
		w.step(t)
		if w.owner("web") != to {
			t.Fatalf("%s: web on %q, want %s", after, w.owner("web"), to)
		}
	}
	handOver(store.Command{Op: store.OpMove, Group: "web", Node: "n2"}, "moved to n2", "n2", "moved (before its preferred n1)")
	op(store.Command{Op: store.OpClearMoves, Group: "web"})
	if p := w.step(t); len(p.cmds) != 0 {
		t.Errorf("a clear moved web back at once: %+v", p.cmds)
	}

	op(store.Command{Op: store.OpBan, Group: "web", Node: "n2"})
	w.step(t)
	w.release(t, "web")
	w.step(t)
	if w.owner("web") != "n1" {
		t.Fatalf("banned from n2: web on %q, want n1", w.owner("web"))
	}

	handOver(store.Command{Op: store.OpStandby, Node: "n1", On: true}, "standby", "n0", "n1 in standby, n2 banned")

	op(store.Command{Op: store.OpMaintenance, On: true})
	delete(w.members, "n0") // dead, and past its lease
	delete(w.heard, "n0")
	w.now = w.now.Add(time.Hour)
	if p := w.step(t); len(p.cmds) != 0 || len(p.fence) != 0 || p.why["web"] != whyMaintenance {
		t.Fatalf("maintenance: %+v", p)
	}
	op(store.Command{Op: store.OpMaintenance})
	op(store.Command{Op: store.OpStandby, Node: "n1"})
	w.cfg.stomith = true // n0's groups would wait for its fencing
	w.renew("n1", "n2")
	if p := w.step(t); w.owner("web") != "n0" || len(p.fence) != 1 {
		t.Fatalf("with stomith, n0 dead: web %q, plan %+v", w.owner("web"), p)
	}
	op(store.Command{Op: store.OpForget, Node: "n0", At: w.now.UnixMilli()})
	w.step(t)
	if w.owner("web") != "n1" {
		t.Errorf("n0 forgotten: web on %q, want n1", w.owner("web"))
	}
}

// hasOp reports whether cmds holds a command of op.
func hasOp(cmds []store.Command, op string) bool {
	for _, c := range cmds {
		if c.Op == op {
			return true
		}
	}
	return false
}

// A forming cluster (no group ever assigned) waits for its expected
// members up to the settle time, from a start it commits once; a leader
// elected meanwhile goes on from that start.
func TestPlanSettle(t *testing.T) {
	const settle = 20 * time.Second
	cases := []struct {
		name     string
		names    []string // :::servers:
		count    int      // :::nodes:
		settle   time.Duration
		assigned bool // a group was assigned before: not forming
		joinAt   time.Duration
		why      string // while it waits
		want     string // where web runs in the end
		placedAt time.Duration
	}{
		{name: "count: waits for n1, places on it once it is in", count: 3, settle: settle, joinAt: 5 * time.Second,
			why: "cluster settling: 2 of 3 nodes up, waiting for the others up to 20s", want: "n1", placedAt: 5 * time.Second},
		{name: "servers: names the missing one", names: []string{"n0", "n1", "n2"}, settle: settle, joinAt: 19 * time.Second,
			why: "cluster settling: waiting for n1 up to 20s", want: "n1", placedAt: 19 * time.Second},
		{name: "n1 never joins: placed anyway after the settle time", count: 3, settle: settle, joinAt: time.Hour,
			why: "cluster settling: 2 of 3 nodes up, waiting for the others up to 20s", want: "n0|n2", placedAt: settle},
		{name: "no settle: placed at once among those up", count: 3, joinAt: 5 * time.Second, want: "n0|n2"},
		{name: "formed before: no wait", count: 3, settle: settle, assigned: true, joinAt: 5 * time.Second, want: "n0|n2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, "web start n1\nother stop\n", "n0", "n2")
			w.cfg.settle, w.cfg.expectNames, w.cfg.expectCount = c.settle, c.names, c.count
			if c.assigned {
				w.commit(t, []store.Command{{Op: store.OpAssign, Group: "old", Node: "n0"}, {Op: store.OpAssign, Group: "old", Epoch: 1}})
			}
			placed := time.Duration(-1)
			for d := time.Duration(0); d <= settle+2*time.Second; d += time.Second {
				w.now = pt0.Add(d)
				if d == c.joinAt {
					w.members["n1"] = planMember{state: api.NodeAlive, status: nodeStatus{Node: "n1", CPUs: 2}, hasStatus: true}
				}
				w.renew(append([]string{"n0", "n2"}, map[bool][]string{true: {"n1"}}[d >= c.joinAt]...)...)
				p := w.step(t)
				if w.owner("web") != "" {
					placed = d
					break
				}
				if p.why["web"] != c.why {
					t.Fatalf("at %v: why %q, want %q", d, p.why["web"], c.why)
				}
				if p.why["other"] != whyStopped {
					t.Fatalf("at %v: a stopped group's why %q", d, p.why["other"])
				}
				if want := pt0.Add(settle); !p.wake.Equal(want) {
					t.Fatalf("at %v: wake %v, want the settle's end %v", d, p.wake, want)
				}
				if hasOp(p.cmds, store.OpSettle) != (d == 0) {
					t.Fatalf("at %v: settle start proposed: %v (only the first plan proposes it)", d, hasOp(p.cmds, store.OpSettle))
				}
				if w.state.SettleFrom != pt0.UnixMilli() {
					t.Fatalf("at %v: committed settle start %d, want %d", d, w.state.SettleFrom, pt0.UnixMilli())
				}
			}
			if placed != c.placedAt || !strings.Contains("|"+c.want+"|", "|"+w.owner("web")+"|") {
				t.Fatalf("web placed on %q at %v, want %s at %v", w.owner("web"), placed, c.want, c.placedAt)
			}
		})
	}
}

// A cluster with nothing to place does not begin its settle: it begins
// with the first group to place, however late that comes.
func TestPlanSettleBeginsWithWork(t *testing.T) {
	w := newWorld(t, "other stop\n", "n0", "n2")
	w.cfg.settle, w.cfg.expectCount = 20*time.Second, 3
	if p := w.step(t); len(p.cmds) != 0 || w.state.SettleFrom != 0 {
		t.Fatalf("nothing to place: cmds %+v, settle start %d", p.cmds, w.state.SettleFrom)
	}
	h, err := cltab.ParseHactl("hactl", []byte("other stop\nweb start n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	w.hactl = h.Groups
	w.now = pt0.Add(time.Hour)
	w.renew("n0", "n2")
	if p := w.step(t); w.owner("web") != "" || w.state.SettleFrom != w.now.UnixMilli() || !p.wake.Equal(w.now.Add(20*time.Second)) {
		t.Fatalf("first group to place: web on %q, settle start %d, wake %v", w.owner("web"), w.state.SettleFrom, p.wake)
	}
}

// A leader elected during the settle, whose clock reads later, goes on
// from the committed start: it does not wait a whole settle again.
func TestPlanSettleSurvivesLeaderChange(t *testing.T) {
	w := newWorld(t, "web start n1\n", "n0", "n2")
	w.cfg.settle, w.cfg.expectCount = 20*time.Second, 3
	w.step(t)
	if w.state.SettleFrom != pt0.UnixMilli() {
		t.Fatalf("settle start %d not committed", w.state.SettleFrom)
	}
	// A new leader plans on the same committed state, 15 s later: it
	// waits the 5 s left, not 20 s from its election.
	w.now = pt0.Add(15 * time.Second)
	w.renew("n0", "n2")
	if p := w.step(t); w.owner("web") != "" || !p.wake.Equal(pt0.Add(20*time.Second)) || hasOp(p.cmds, store.OpSettle) {
		t.Fatalf("new leader: web on %q, wake %v, cmds %+v", w.owner("web"), p.wake, p.cmds)
	}
	w.now = pt0.Add(20 * time.Second)
	w.renew("n0", "n2")
	if w.step(t); w.owner("web") == "" {
		t.Fatal("web not placed once the settle time since the committed start passed")
	}
}

// Failback: a group on a less preferred node goes back, gracefully, to
// a more preferred one that has been up for the hold; never with
// failback off (cluster-wide or on its line), never to a node that is
// not up long enough, never against an operator's move.
func TestPlanFailback(t *testing.T) {
	const hold = 2 * testLease
	cases := []struct {
		name    string
		line    string
		cluster bool
		moved   string // an operator's move
		back    bool   // web goes back to n1
	}{
		{"on cluster-wide", "web start n1,n2\n", true, "", true},
		{"off cluster-wide", "web start n1,n2\n", false, "", false},
		{"off on its line", "web start n1,n2 failback=off\n", true, "", false},
		{"on on its line, off cluster-wide", "web start n1,n2 failback=on\n", false, "", true},
		{"an operator's move rules", "web start n1,n2\n", true, "n2", false},
		{"not preferred: nowhere to go back to", "web start\n", true, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, c.line, "n1", "n2", "n3")
			w.cfg.failback, w.cfg.failbackHold = c.cluster, hold
			// web runs on n2 (it moved there while n1 was away); n1 is
			// back since now.
			w.commit(t, []store.Command{{Op: store.OpAssign, Group: "web", Node: "n2"}})
			if c.moved != "" {
				w.commit(t, []store.Command{{Op: store.OpMove, Group: "web", Node: c.moved}})
			}
			back := w.now
			w.members["n1"] = planMember{state: api.NodeAlive, status: nodeStatus{Node: "n1", CPUs: 2}, hasStatus: true, up: back}
			// Within the hold nothing moves; the planner wakes at its end.
			for d := time.Duration(0); d < hold; d += time.Second {
				w.now = back.Add(d)
				w.renew("n1", "n2", "n3")
				p := w.step(t)
				if w.owner("web") != "n2" || p.why["web"] != "" {
					t.Fatalf("at %v into the hold: web %q, why %q", d, w.owner("web"), p.why["web"])
				}
				if c.back && (p.wake.IsZero() || p.wake.After(back.Add(hold))) {
					t.Fatalf("at %v: wake %v, want by the hold's end %v", d, p.wake, back.Add(hold))
				}
			}
			w.now = back.Add(hold)
			w.renew("n1", "n2", "n3")
			p := w.step(t)
			if !c.back {
				if w.owner("web") != "n2" || len(p.cmds) != 0 {
					t.Fatalf("web moved with failback off: %q, %+v", w.owner("web"), p.cmds)
				}
				return
			}
			// Graceful: n2 is asked to stop first; only its release frees
			// web, and then it is placed on n1.
			if w.owner("web") != "n2(stop)" || w.state.Assign["web"].Why != "failback to n1, preferred before n2" ||
				p.why["web"] != "waiting for n2 to stop it (failback to n1)" {
				t.Fatalf("failback: web %q (%q), why %q", w.owner("web"), w.state.Assign["web"].Why, p.why["web"])
			}
			if w.step(t); w.owner("web") != "n2(stop)" {
				t.Fatalf("web left n2 before n2 released it: %q", w.owner("web"))
			}
			w.release(t, "web")
			if w.step(t); w.owner("web") != "n1" {
				t.Fatalf("after n2 released it, web on %q, want n1", w.owner("web"))
			}
		})
	}
}

// A node whose up time the leader does not know (just elected, or the
// node not renewing) takes nothing back; nor does a node that ranks
// after the owner.
func TestPlanFailbackNeedsUp(t *testing.T) {
	w := newWorld(t, "web start n1,n2\n", "n1", "n2", "n3")
	w.cfg.failback, w.cfg.failbackHold = true, 2*testLease
	w.commit(t, []store.Command{{Op: store.OpAssign, Group: "web", Node: "n2"}})
	w.now = w.now.Add(time.Hour)
	w.renew("n1", "n2", "n3")
	if p := w.step(t); w.owner("web") != "n2" || len(p.cmds) != 0 {
		t.Fatalf("web moved to a node with no up time: %q %+v", w.owner("web"), p.cmds)
	}
	// n1 runs it; n2, less preferred, up for long: nothing moves.
	w = newWorld(t, "web start n1,n2\n", "n1", "n2", "n3")
	w.cfg.failback, w.cfg.failbackHold = true, 2*testLease
	w.step(t)
	w.members["n2"] = planMember{state: api.NodeAlive, status: nodeStatus{Node: "n2", CPUs: 2}, hasStatus: true, up: pt0.Add(-time.Hour)}
	w.now = w.now.Add(time.Second)
	w.renew("n1", "n2", "n3")
	if p := w.step(t); w.owner("web") != "n1" || len(p.cmds) != 0 {
		t.Fatalf("web left its most preferred node: %q %+v", w.owner("web"), p.cmds)
	}
}
