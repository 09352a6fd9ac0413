package cluster

import (
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

// nodeWorld is one node with a fake engine that reaches each level it
// is told at once, in the state the test sets.
type nodeWorld struct {
	t     *testing.T
	in    nodeInput
	mem   *nodeMemory
	cmds  []store.Command
	holds []string
	// result: the state a level reaches, by level; default DONE.
	result map[string]string
}

func newNodeWorld(t *testing.T, hactl string) *nodeWorld {
	h, err := cltab.ParseHactl("hactl", []byte(hactl))
	if err != nil {
		t.Fatal(err)
	}
	return &nodeWorld{t: t, mem: newNodeMemory(), result: map[string]string{},
		in: nodeInput{self: "n1", now: pt0, cfg: nodeConfig{testBackoff: time.Minute, failBackoff: 5 * time.Minute}, hactl: h, local: map[string]groupState{}}}
}

func (w *nodeWorld) grant(groups map[string]uint64, release map[string]uint64) {
	w.in.lease = raftnode.Lease{Until: w.in.now.Add(testLease), Grant: raftnode.Grant{Groups: groups, Release: release}}
}

// step decides, and lets the engine carry out the tells.
func (w *nodeWorld) step() nodeOut {
	out := runNode(w.in, w.mem)
	for _, a := range out.tells {
		st := api.StateDone
		if r, ok := w.result[a.Level]; ok {
			st = r
		}
		w.in.local[a.Group] = groupState{Group: a.Group, Level: a.Level, State: st}
	}
	w.cmds = append(w.cmds, out.cmds...)
	w.holds = append(w.holds, out.hold...)
	return out
}

// steps takes n steps, for what they lead to (a granted group: plan,
// test and start in 3).
func (w *nodeWorld) steps(n int) {
	for range n {
		w.step()
	}
}

func (w *nodeWorld) level(g string) string { return w.in.local[g].Level }

// webRunning is a node granted web (epoch 1) that has walked it to its
// level, start.
func webRunning(t *testing.T, hactl string) *nodeWorld {
	t.Helper()
	w := newNodeWorld(t, hactl)
	w.grant(map[string]uint64{"web": 1}, nil)
	w.steps(3)
	if w.level("web") != "start" {
		t.Fatalf("web at %q once granted, want start", w.level("web"))
	}
	return w
}

func TestNodeWalksPlanTestLevel(t *testing.T) {
	w := newNodeWorld(t, "web start\n")
	w.step()
	if w.level("web") != "" {
		t.Fatal("started a group with no lease")
	}
	w.grant(map[string]uint64{"web": 1}, nil)
	w.result[LevelTest] = api.StatePassed
	for _, want := range []string{LevelPlan, LevelTest, "start", "start"} {
		w.step()
		if w.level("web") != want {
			t.Fatalf("web at %q, want %q", w.level("web"), want)
		}
	}
	if len(w.holds) != 1 || w.holds[0] != "web" {
		t.Errorf("keeper holds %v, want web once before its first start", w.holds)
	}
	if len(w.cmds) != 0 {
		t.Errorf("proposed %v", w.cmds)
	}
}

func TestNodeStopsWhenTheLeaseLapses(t *testing.T) {
	w := webRunning(t, "web start\n")
	out := w.step()
	if !out.wake.Equal(w.in.lease.Until) {
		t.Errorf("wakes at %v, want the lease's end", out.wake)
	}
	w.in.now = w.in.lease.Until
	w.step()
	if w.level("web") != cltab.LevelStop {
		t.Fatalf("web at %q when the lease lapsed", w.level("web"))
	}
	if len(w.cmds) != 0 {
		t.Errorf("a node without a lease proposed %v", w.cmds)
	}
}

func TestNodeReleasesOnceStopped(t *testing.T) {
	w := webRunning(t, "web start\n")
	// Asked to stop at epoch 2: stop, then release, once.
	w.grant(nil, map[string]uint64{"web": 2})
	w.result[cltab.LevelStop] = api.StateStopping
	w.step()
	if w.level("web") != cltab.LevelStop || len(w.cmds) != 0 {
		t.Fatalf("released before stopped: %q %v", w.level("web"), w.cmds)
	}
	w.step()
	if len(w.cmds) != 0 {
		t.Fatal("released while stopping")
	}
	w.in.local["web"] = groupState{Group: "web", Level: cltab.LevelStop, State: api.StateDone}
	w.step()
	w.step()
	if len(w.cmds) != 1 || w.cmds[0].Op != store.OpAssign || w.cmds[0].Node != "" || w.cmds[0].Epoch != 2 {
		t.Fatalf("want one release from epoch 2: %+v", w.cmds)
	}
}

func TestNodeFailedTestRulesOutAndReleases(t *testing.T) {
	w := newNodeWorld(t, "web start\n")
	w.grant(map[string]uint64{"web": 1}, nil)
	w.result[LevelTest] = api.StateFailed
	w.step() // plan
	w.step() // test, failed
	w.step() // give up
	if w.level("web") != cltab.LevelStop {
		t.Fatalf("web at %q after a failed test", w.level("web"))
	}
	w.step() // stopped: release
	if len(w.cmds) != 2 || w.cmds[0].Op != store.OpFail || w.cmds[0].Until != pt0.Add(time.Minute).UnixMilli() || w.cmds[1].Op != store.OpAssign || w.cmds[1].Epoch != 1 {
		t.Fatalf("want a failure then a release: %+v", w.cmds)
	}
	// Still granted until the release commits: nothing starts again.
	w.step()
	if w.level("web") != cltab.LevelStop || len(w.cmds) != 2 {
		t.Errorf("after giving up: %q, %v", w.level("web"), w.cmds)
	}
}

func TestNodeHandoff(t *testing.T) {
	w := newNodeWorld(t, "web start\ndb start\n")
	w.grant(map[string]uint64{"web": 1, "db": 3}, nil)
	w.steps(3)
	w.in.handoff = true
	w.step()
	w.step()
	for _, g := range []string{"web", "db"} {
		if w.level(g) != cltab.LevelStop {
			t.Errorf("%s at %q in a handoff", g, w.level(g))
		}
	}
	if len(w.cmds) != 2 {
		t.Errorf("want both released: %+v", w.cmds)
	}
}

func TestNodeStopsAGroupNotGranted(t *testing.T) {
	w := newNodeWorld(t, "web start\n")
	w.grant(map[string]uint64{}, nil)
	w.in.local["web"] = groupState{Group: "web", Level: "start", State: api.StateDone}
	w.step()
	if w.level("web") != cltab.LevelStop {
		t.Errorf("a group running without a grant: %q", w.level("web"))
	}
}

// The engine's gate: an HA group's processes start only within the
// lease, but its stop entries always run, and other groups never wait.
func TestGate(t *testing.T) {
	var c Cluster
	if !c.MayStart("web", "start") {
		t.Error("no gate yet (HA off) closed a group")
	}
	now := time.Now()
	h, err := cltab.ParseHactl("hactl", []byte("web start\ndb start\nmail start\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.gate.Store(&gate{hactl: h, until: map[string]time.Time{"web": now.Add(time.Hour), "db": now.Add(-time.Millisecond), "old": now.Add(time.Hour)}})
	for _, tc := range []struct {
		group, level string
		want         bool
	}{
		{"web", "start", true},        // within its lease
		{"db", "start", false},        // past it
		{"db", LevelPlan, false},      // every level but stop
		{"db", cltab.LevelStop, true}, // stop entries undo: always
		{"cache", "1", true},          // not an HA group
		{"mail", "start", false},      // listed, not granted
		{"old", "start", true},        // granted, no longer listed
	} {
		if got := c.MayStart(tc.group, tc.level); got != tc.want {
			t.Errorf("MayStart(%s, %s) = %v, want %v", tc.group, tc.level, got, tc.want)
		}
	}
}

// In maintenance mode a node starts, stops and reports nothing while its
// lease holds; when the lease lapses it stops what it runs, as always.
func TestNodeInMaintenance(t *testing.T) {
	w := webRunning(t, "web start\ndb start\n")
	w.grant(map[string]uint64{"db": 1}, map[string]uint64{"web": 1}) // web asked back, db given
	w.in.lease.Grant.Maintenance = true
	w.in.hactl.Group("web").Level = "other"
	for i := 0; i < 3; i++ {
		if out := w.step(); len(out.tells) != 0 || len(out.cmds) != 0 {
			t.Fatalf("in maintenance: tells %v, reports %v", out.tells, out.cmds)
		}
	}
	if w.level("web") != "start" || w.level("db") != "" {
		t.Errorf("in maintenance: web at %q, db at %q", w.level("web"), w.level("db"))
	}
	w.in.now = w.in.lease.Until
	w.step()
	if w.level("web") != cltab.LevelStop {
		t.Errorf("in maintenance, lease lapsed: web at %q, want stop", w.level("web"))
	}
}
