package cluster

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/store"
)

const voters3 = ":::nodes:3\n"

// raftCluster starts n members on loopback, memberlist and raft both
// real, each with its own copy of tab.
func raftCluster(t *testing.T, n int, tab string) []*testNode {
	t.Helper()
	parsed, err := cltab.Parse("cltab", []byte(tab))
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*testNode
	for i := range n {
		cfg := Config{Key: testKey, Bind: "127.0.0.1:0", Tab: parsed, RaftBind: "127.0.0.1:0"}
		if i > 0 {
			cfg.Join = []string{nodes[0].Addr()}
		}
		nodes = append(nodes, startWith(t, nodeName(i), cfg, map[string]string{"cltab": tab}))
	}
	return nodes
}

func committedVersion(n *testNode, kind string) uint64 {
	var v uint64
	n.call(context.Background(), func() {
		if r := n.fileCopy(kind); r != nil {
			v = r.version
		}
	})
	return v
}

func TestReplicationThroughRaft(t *testing.T) {
	nodes := raftCluster(t, 3, voters3)
	eventually(t, "3 alive", allAlive(nodes))
	eventually(t, "the first cltab committed everywhere", everyNode(nodes, func(n *testNode) bool { return committedVersion(n, KindCltab) != 0 }))
	ctx := context.Background()

	// --ha on one node: committed, with its version, on every node.
	v, err := nodes[1].EditHactl(ctx, "web", "start", []string{"n2", "n1"})
	if err != nil || v == 0 {
		t.Fatalf("EditHactl: %d %v", v, err)
	}
	eventually(t, "hactl everywhere", converged(t, nodes, "hactl", "web start n2,n1\n"))
	eventually(t, "its version everywhere", everyNode(nodes, func(n *testNode) bool { return committedVersion(n, KindHactl) == v }))

	// A cltab edit on disk on another node.
	tab := voters3 + "web:ip:start:once:true\n"
	writeFile(t, nodes[2].path("cltab"), tab)
	if err := nodes[2].FileChanged(ctx, KindCltab); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cltab everywhere", converged(t, nodes, "cltab", tab))

	// An invalid edit is refused where it is made and goes nowhere.
	writeFile(t, nodes[0].path("cltab"), "web:ip:start:sometimes:true\n")
	err = nodes[0].FileChanged(ctx, KindCltab)
	if !errors.Is(err, cltab.ErrInvalid) || !strings.Contains(err.Error(), `unknown mode "sometimes"`) {
		t.Fatalf("invalid edit: %v", err)
	}
	before := committedVersion(nodes[1], KindCltab)
	// The same content again is no new version.
	if err := nodes[2].FileChanged(ctx, KindCltab); err != nil {
		t.Fatal(err)
	}
	if after := committedVersion(nodes[2], KindCltab); after != before {
		t.Fatalf("unchanged content made version %d (was %d)", after, before)
	}
}

// Simultaneous --ha edits on two nodes: each is committed, or refused
// with the reason and kept aside; none is lost while its command says
// it succeeded.
func TestSimultaneousHAEdits(t *testing.T) {
	nodes := raftCluster(t, 3, voters3)
	eventually(t, "3 alive", allAlive(nodes))
	ctx := context.Background()
	eventually(t, "a first hactl edit commits", func() bool {
		_, err := nodes[0].EditHactl(ctx, "base", "start", nil)
		return err == nil
	})
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		groups := []string{"a" + strconv.Itoa(round), "b" + strconv.Itoa(round)}
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = nodes[i+1].EditHactl(ctx, groups[i], "start", nil)
			}()
		}
		wg.Wait()
		eventually(t, "one hactl everywhere", converged(t, nodes, "hactl", ""))
		final := mustRead(t, nodes[0].path("hactl"))
		for i, g := range groups {
			in := strings.Contains(final, g+" start")
			switch {
			case errs[i] == nil && !in:
				t.Fatalf("round %d: %s's edit succeeded but is not in the hactl:\n%s", round, g, final)
			case errs[i] != nil && in:
				t.Fatalf("round %d: %s's edit failed (%v) but is in the hactl", round, g, errs[i])
			case errs[i] != nil && !strings.Contains(errs[i].Error(), "refused"):
				t.Fatalf("round %d: %s's edit failed without a refusal: %v", round, g, errs[i])
			case errs[i] != nil && !exists(nodes[i+1].path("hactl")+".rejected"):
				t.Fatalf("round %d: refused edit not kept aside", round)
			}
		}
	}
}

// The state machine's snapshot is what a restarted voter restores.
func TestVoterRestartKeepsState(t *testing.T) {
	nodes := raftCluster(t, 3, voters3)
	eventually(t, "3 alive", allAlive(nodes))
	ctx := context.Background()
	var v uint64
	eventually(t, "an hactl edit commits", func() bool {
		var err error
		v, err = nodes[0].EditHactl(ctx, "web", "start", nil)
		return err == nil
	})
	if nodes[2].rn == nil {
		t.Fatal("n2 does not vote")
	}
	eventually(t, "n2 applies the edit", func() bool {
		st, _ := nodes[2].rn.State()
		return st.Files[store.KindHactl].Version == v
	})
	if err := nodes[2].rn.Snapshot(); err != nil {
		t.Fatal(err)
	}
	st, _ := nodes[2].rn.State()
	if st.Files[store.KindHactl].Version != v {
		t.Fatalf("n2 applied hactl %d, want %d", st.Files[store.KindHactl].Version, v)
	}
	dir := nodes[2].dir
	nodes[2].Close()
	os.Remove(nodes[2].path("hactl"))
	again := startIn(t, nodeName(2), dir, Config{Key: testKey, Bind: "127.0.0.1:0", Tab: nodes[0].cfg.Tab, RaftBind: "127.0.0.1:0", Join: []string{nodes[0].Addr()}})
	eventually(t, "the restarted voter has the hactl again", func() bool {
		data, _ := os.ReadFile(again.path("hactl"))
		return string(data) == "web start\n"
	})
}

// A committed assignment reaches every watcher (clinit --watch).
func TestWatchShowsAssignments(t *testing.T) {
	nodes := raftCluster(t, 3, voters3)
	eventually(t, "3 alive", allAlive(nodes))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := nodes[2].Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	// In maintenance the planner proposes nothing: it would undo at once
	// an assignment of a group the hactl does not list, and the watcher
	// might see only the state after both.
	eventually(t, "maintenance mode commits", func() bool {
		r, err := nodes[0].propose(ctx, store.Command{Op: store.OpMaintenance, On: true})
		return err == nil && r.Err == nil
	})
	eventually(t, "an assignment commits", func() bool {
		r, err := nodes[0].propose(ctx, store.Command{Op: store.OpAssign, Group: "web", Node: "n1", Why: "a test"})
		return err == nil && r.Err == nil
	})
	for {
		select {
		case ev := <-events:
			if ev.Group == "web" && ev.Assigned == "n1" && ev.Epoch == 1 && ev.Why == "a test" {
				return
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no assignment event in 20 s")
		}
	}
}

// freshFourth starts 3 voters on tab, waits for its commit (version v),
// then a node that does not vote, without state, with local as its
// cltab; logs has that node's log.
func freshFourth(t *testing.T, tab, local string) (nodes []*testNode, v uint64, fresh *testNode, logs *observer.ObservedLogs) {
	t.Helper()
	nodes = raftCluster(t, 3, tab)
	eventually(t, "3 alive", allAlive(nodes))
	eventually(t, "the cltab committed everywhere", everyNode(nodes, func(n *testNode) bool { return committedVersion(n, KindCltab) != 0 }))
	v = committedVersion(nodes[0], KindCltab)
	core, logs := observer.New(zapcore.InfoLevel)
	fresh = startWith(t, nodeName(3), Config{Key: testKey, Bind: "127.0.0.1:0", Tab: nodes[0].cfg.Tab, Join: []string{nodes[0].Addr()}, Log: zap.New(core)},
		map[string]string{"cltab": local})
	return nodes, v, fresh, logs
}

// A node started without its state directory finds its cltab "edited
// while the daemon was down". When that text is the committed one, it
// learns so from the cluster and proposes nothing: no log entry, on the
// leader, for each such node.
func TestFreshNodeWithCommittedTextProposesNothing(t *testing.T) {
	tab := ":::servers:n0,n1,n2\nweb:ip:start:once:true\n"
	_, v, fresh, logs := freshFourth(t, tab, tab)
	if fresh.rn != nil {
		t.Fatal("n3 votes; the test wants a node that reads the committed state from the leader")
	}
	eventually(t, "n3 is done with its copy", func() bool {
		return logs.FilterMessage("the copy on disk is the committed version").Len() > 0 ||
			logs.FilterMessage("edited while the daemon was down: committed").Len() > 0
	})
	if n := logs.FilterMessage("edit committed").Len(); n != 0 {
		t.Errorf("n3 proposed its cltab (%d edits committed)", n)
	}
	if got := committedVersion(fresh, KindCltab); got != v {
		t.Errorf("n3 has cltab version %d, want %d", got, v)
	}
	if data, _ := os.ReadFile(fresh.path("cltab")); string(data) != tab {
		t.Errorf("n3's cltab is now %q", data)
	}
}

// A cluster forming with the same cltab everywhere: its voters propose
// their copies, and the nodes that do not vote wait for the commit and
// propose nothing.
func TestFormingClusterNonVotersProposeNothing(t *testing.T) {
	tab := ":::servers:n0,n1,n2\nweb:ip:start:once:true\n"
	parsed, err := cltab.Parse("cltab", []byte(tab))
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*testNode
	var logs []*observer.ObservedLogs
	for i := range 5 {
		core, l := observer.New(zapcore.InfoLevel)
		cfg := Config{Key: testKey, Bind: "127.0.0.1:0", Tab: parsed, Log: zap.New(core)}
		if i < 3 {
			cfg.RaftBind = "127.0.0.1:0"
		}
		if i > 0 {
			cfg.Join = []string{nodes[0].Addr()}
		}
		nodes = append(nodes, startWith(t, nodeName(i), cfg, map[string]string{"cltab": tab}))
		logs = append(logs, l)
	}
	for i, n := range nodes {
		if votes := n.rn != nil; votes != (i < 3) {
			t.Fatalf("%s votes: %v", n.name, votes)
		}
	}
	eventually(t, "the cltab committed everywhere", everyNode(nodes, func(n *testNode) bool { return committedVersion(n, KindCltab) != 0 }))
	for i := 3; i < 5; i++ {
		eventually(t, nodes[i].name+" is done with its copy", func() bool {
			return logs[i].FilterMessage("the copy on disk is the committed version").Len() > 0 ||
				logs[i].FilterMessage("edited while the daemon was down: committed").Len() > 0
		})
		if n := logs[i].FilterMessage("edit committed").Len(); n != 0 {
			t.Errorf("%s, which does not vote, proposed its cltab (%d edits committed)", nodes[i].name, n)
		}
	}
	v := committedVersion(nodes[0], KindCltab)
	for _, n := range nodes {
		if got := committedVersion(n, KindCltab); got != v {
			t.Errorf("%s has cltab version %d, want %d", n.name, got, v)
		}
	}
}

// A node started without its state directory whose cltab differs from
// the committed one keeps its text aside and takes the committed one,
// as an edit on an older version would be: its copy is neither
// committed over the cluster's nor lost.
func TestFreshNodeWithOtherTextKeepsItAside(t *testing.T) {
	tab := ":::servers:n0,n1,n2\nweb:ip:start:once:true\n"
	other := tab + "db:d:start:once:true\n"
	nodes, v, fresh, logs := freshFourth(t, tab, other)
	eventually(t, "n3 has the committed cltab", func() bool {
		data, _ := os.ReadFile(fresh.path("cltab"))
		return string(data) == tab
	})
	if data, err := os.ReadFile(fresh.path("cltab") + ".rejected"); err != nil || string(data) != other {
		t.Errorf("n3's own text aside: %q, %v", data, err)
	}
	eventually(t, "n3 is done with its copy", func() bool {
		return logs.FilterMessage("the copy on disk is the committed version").Len() > 0 ||
			logs.FilterMessage("edited while the daemon was down: committed").Len() > 0
	})
	if n := logs.FilterMessage("edit committed").Len(); n != 0 {
		t.Errorf("n3 proposed its cltab (%d edits committed)", n)
	}
	for _, n := range nodes {
		if got := committedVersion(n, KindCltab); got != v {
			t.Errorf("%s has cltab version %d, want %d", n.name, got, v)
		}
	}
}
