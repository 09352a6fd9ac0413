package raftnode

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clinit/clinit/cluster/store"
)

func newKey(t *testing.T) []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type testCluster struct {
	t     *testing.T
	key   []byte
	dirs  []string
	addrs []string
	nodes []*Node
	// silent receives "node@leader" of every OnSilent call.
	silent chan string
	// logs has every node's log entries too.
	logs *observer.ObservedLogs
	core zapcore.Core
}

// startCluster starts n voters on loopback and bootstraps them.
func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, key: newKey(t), silent: make(chan string, 1000)}
	tc.core, tc.logs = observer.New(zapcore.DebugLevel)
	var servers []Server
	for i := 0; i < n; i++ {
		tc.dirs = append(tc.dirs, t.TempDir())
		tc.addrs = append(tc.addrs, freeAddr(t))
		servers = append(servers, Server{ID: fmt.Sprintf("n%d", i), Addr: tc.addrs[i]})
	}
	for i := 0; i < n; i++ {
		tc.nodes = append(tc.nodes, tc.open(i))
	}
	for _, nd := range tc.nodes {
		if err := nd.Bootstrap(servers); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range tc.nodes {
			if nd != nil {
				nd.Close()
			}
		}
	})
	return tc
}

func (tc *testCluster) open(i int) *Node {
	tc.t.Helper()
	name := fmt.Sprintf("n%d", i)
	nd, err := Open(Config{Node: name, Dir: tc.dirs[i], Bind: tc.addrs[i], Key: tc.key, Log: zap.New(zapcore.NewTee(zaptest.NewLogger(tc.t).Core(), tc.core)).Named(name),
		OnSilent: func(node string) {
			select {
			case tc.silent <- node + "@" + name:
			default:
			}
		}})
	if err != nil {
		tc.t.Fatal(err)
	}
	return nd
}

// stop closes node i for good: leader and the cleanup pass it over.
func (tc *testCluster) stop(i int) {
	tc.nodes[i].Close()
	tc.nodes[i] = nil
}

// leader waits for one of the live nodes to lead, and returns its index.
func (tc *testCluster) leader() int {
	tc.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, nd := range tc.nodes {
			if nd != nil && nd.IsLeader() {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatal("no leader elected in 20 s")
	return -1
}

func (tc *testCluster) client() *Client {
	d, err := NewDialer(tc.key)
	if err != nil {
		tc.t.Fatal(err)
	}
	c := NewClient(d, func() []string { return tc.addrs })
	tc.t.Cleanup(c.Close)
	return c
}

// waitState waits until node i's state satisfies ok.
func waitState(t *testing.T, nd *Node, ok func(*store.State) bool) *store.State {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s, ch := nd.State()
		if ok(s) {
			return s
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("state never reached the condition; last %+v", s)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestEditsThroughAnyNode(t *testing.T) {
	tc := startCluster(t, 3)
	l := tc.leader()
	follower := tc.nodes[(l+1)%3]
	// Proposed on a follower: forwarded to the leader.
	r, err := follower.Propose(ctx(t), store.Command{Op: store.OpSetFile, Kind: store.KindHactl, Text: "web start\n"})
	if err != nil || r.Err != nil || r.Version == 0 {
		t.Fatalf("edit through a follower: %+v, %v", r, err)
	}
	for _, nd := range tc.nodes {
		s := waitState(t, nd, func(s *store.State) bool { return s.Files[store.KindHactl].Version == r.Version })
		if s.Files[store.KindHactl].Text != "web start\n" {
			t.Errorf("%s has %q", nd.cfg.Node, s.Files[store.KindHactl].Text)
		}
	}
	// An edit based on the version before it is refused, naming both.
	r2, err := tc.client().Propose(ctx(t), store.Command{Op: store.OpSetFile, Kind: store.KindHactl, Text: "web stop\n", Base: 0})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("based on version 0, but version %d is committed", r.Version)
	if r2.Err == nil || !strings.Contains(r2.Err.Error(), want) {
		t.Errorf("stale edit: %v, want %q", r2.Err, want)
	}
}

// Edits raced from two nodes on the same base: exactly one commits, the
// other is refused; neither is lost silently.
func TestSimultaneousEdits(t *testing.T) {
	tc := startCluster(t, 3)
	l := tc.leader()
	for round := 0; round < 20; round++ {
		// The leader has applied every commit it answered for.
		s, _ := tc.nodes[l].State()
		base := s.Files[store.KindCltab].Version
		var wg sync.WaitGroup
		res := make([]store.Result, 2)
		errs := make([]error, 2)
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res[i], errs[i] = tc.nodes[i].Propose(ctx(t), store.Command{Op: store.OpSetFile, Kind: store.KindCltab, Text: fmt.Sprintf("round %d from n%d\n", round, i), Base: base})
			}(i)
		}
		wg.Wait()
		ok := 0
		for i := 0; i < 2; i++ {
			if errs[i] != nil {
				t.Fatalf("round %d: n%d: %v", round, i, errs[i])
			}
			if res[i].Err == nil {
				ok++
			} else if !strings.Contains(res[i].Err.Error(), "refused") {
				t.Errorf("round %d: n%d refused without saying so: %v", round, i, res[i].Err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d edits committed, want exactly 1: %+v", round, ok, res)
		}
	}
}

func TestSnapshotAndRestart(t *testing.T) {
	tc := startCluster(t, 3)
	l := tc.leader()
	c := tc.client()
	var last uint64
	for i := 0; i < 5; i++ {
		s, _ := tc.nodes[l].State()
		r, err := c.Propose(ctx(t), store.Command{Op: store.OpAssign, Group: "web", Node: fmt.Sprintf("n%d", i%3), Epoch: s.Assign["web"].Epoch})
		if err != nil || r.Err != nil {
			t.Fatalf("assign %d: %+v %v", i, r, err)
		}
		last = r.Version
	}
	victim := (l + 1) % 3
	waitState(t, tc.nodes[victim], func(s *store.State) bool { return s.Index >= last })
	if err := tc.nodes[victim].raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	want, _ := tc.nodes[victim].State()
	tc.nodes[victim].Close()
	tc.nodes[victim] = tc.open(victim) // same directory: log and snapshot
	got := waitState(t, tc.nodes[victim], func(s *store.State) bool { return s.Index >= last })
	if got.Assign["web"] != want.Assign["web"] {
		t.Errorf("after restart: %+v, want %+v", got.Assign["web"], want.Assign["web"])
	}
	if !tc.nodes[victim].Bootstrapped() {
		t.Error("a restarted voter does not know it has state")
	}
	// Still a member: a later edit reaches it.
	r, err := c.Propose(ctx(t), store.Command{Op: store.OpFenced, Node: "n9", At: 1})
	if err != nil || r.Err != nil {
		t.Fatal(r, err)
	}
	waitState(t, tc.nodes[victim], func(s *store.State) bool { return s.Fences["n9"].Version == r.Version })
}

func TestStrangersAreRefused(t *testing.T) {
	tc := startCluster(t, 3)
	tc.leader()
	// Another key: the handshake fails, nothing is read or written.
	d, _ := NewDialer(newKey(t))
	bad := NewClient(d, func() []string { return tc.addrs })
	defer bad.Close()
	c2, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := bad.Propose(c2, store.Command{Op: store.OpSetFile, Kind: store.KindHactl, Text: "evil\n"}); err == nil {
		t.Fatal("a client with another key proposed an edit")
	}
	// No key at all: plain bytes on the port.
	for _, payload := range []string{"c{\"op\":\"state\"}\n", "r\x00\x01", strings.Repeat("x", 1000)} {
		conn, err := net.Dial("tcp", tc.addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(payload))
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 512)
		n, _ := conn.Read(buf)
		conn.Close()
		if strings.Contains(string(buf[:n]), "files") {
			t.Errorf("plain connection read the state: %q", buf[:n])
		}
	}
	s, _ := tc.nodes[0].State()
	if s.Files[store.KindHactl].Text != "" {
		t.Errorf("a stranger's edit landed: %q", s.Files[store.KindHactl].Text)
	}
	// The cluster still works.
	if r, err := tc.client().Propose(ctx(t), store.Command{Op: store.OpFenced, Node: "x", At: 1}); err != nil || r.Err != nil {
		t.Errorf("after strangers: %+v %v", r, err)
	}
}

// A state larger than the client's 64 KiB read buffer (a cltab of
// thousands of entries) arrives whole, as many times as it is asked.
func TestLargeStateOverRPC(t *testing.T) {
	tc := startCluster(t, 3)
	tc.leader()
	var big strings.Builder
	for i := 0; big.Len() < 300<<10; i++ {
		fmt.Fprintf(&big, "g%05d:s%05d:start:respawn:exec sleep 100000 # a line of some length\n", i, i)
	}
	c := tc.client()
	if _, err := c.Propose(ctx(t), store.Command{Op: store.OpSetFile, Kind: store.KindCltab, Text: big.String()}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		st, err := c.State(ctx(t))
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if got := st.Files[store.KindCltab].Text; got != big.String() {
			t.Fatalf("read %d: a cltab of %d bytes, want the %d committed", i, len(got), big.Len())
		}
	}
	// The leader encodes the state once per index: a read after the next
	// commit has it.
	r, err := c.Propose(ctx(t), store.Command{Op: store.OpSetFile, Kind: store.KindHactl, Text: "web start\n"})
	if err != nil || r.Err != nil {
		t.Fatalf("hactl: %+v %v", r, err)
	}
	st, err := c.State(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Index < r.Version || st.Files[store.KindHactl].Text != "web start\n" || st.Files[store.KindCltab].Text != big.String() {
		t.Errorf("after the hactl's commit at %d: index %d, hactl %q, cltab of %d bytes", r.Version, st.Index, st.Files[store.KindHactl].Text, len(st.Files[store.KindCltab].Text))
	}
}

// Commands proposed together from a node that does not lead (and from a
// client) commit in one round trip, each with its own result: a refused
// one (a stale base) does not sink the others.
func TestProposeFromFollower(t *testing.T) {
	tc := startCluster(t, 3)
	l := tc.leader()
	follower := tc.nodes[(l+1)%3]
	cmds := []store.Command{
		{Op: store.OpSetFile, Kind: store.KindHactl, Text: "web start\n"},
		{Op: store.OpSetFile, Kind: store.KindHactl, Text: "web stop\n", Base: 0}, // the first is committed: stale
		{Op: store.OpAssign, Group: "db", Node: "n1"},
	}
	var last uint64 // the hactl's version
	for _, from := range []string{"follower", "client"} {
		var res []store.Result
		var err error
		if from == "follower" {
			res, err = follower.ProposeFrom(ctx(t), cmds)
		} else {
			cmds[0].Text, cmds[0].Base, cmds[1].Base, cmds[2].Epoch = "web big\n", last, last, 1
			res, err = tc.client().ProposeAll(ctx(t), cmds)
		}
		if err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		if len(res) != 3 || res[0].Err != nil || res[2].Err != nil || res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "version") {
			t.Fatalf("%s: results %+v: want the first and last committed, the second refused as stale", from, res)
		}
		if res[0].Version <= last || res[2].Version == 0 {
			t.Errorf("%s: versions %d, %d after %d", from, res[0].Version, res[2].Version, last)
		}
		last = res[0].Version
	}
}

// Assignments proposed together are one log entry, applied in order on
// every voter, each command with its own result.
func TestProposeAllIsOneEntry(t *testing.T) {
	tc := startCluster(t, 3)
	l := tc.nodes[tc.leader()]
	var cmds []store.Command
	for i := 0; i < 500; i++ {
		cmds = append(cmds, store.Command{Op: store.OpAssign, Group: fmt.Sprintf("g%d", i), Node: "n1", Why: "placed"})
	}
	cmds = append(cmds,
		store.Command{Op: store.OpAssign, Group: "g0", Node: "n2", Epoch: 1},  // after the first: its epoch
		store.Command{Op: store.OpAssign, Group: "g1", Node: "n2", Epoch: 0},  // stale
		store.Command{Op: store.OpFail, Group: "g2", Node: "n1", Until: 1e15}) // counted
	before := l.raft.LastIndex()
	res, err := l.ProposeAll(cmds)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.raft.LastIndex() - before; got != 1 {
		t.Errorf("%d commands took %d log entries, want 1", len(cmds), got)
	}
	for i, r := range res[:501] {
		if r.Err != nil || r.Version != before+1 {
			t.Fatalf("command %d: %+v, want committed at %d", i, r, before+1)
		}
	}
	if res[501].Err == nil {
		t.Errorf("a stale assignment in the batch committed: %+v", res[501])
	}
	for _, nd := range tc.nodes {
		s := waitState(t, nd, func(s *store.State) bool { return s.Index >= before+1 })
		if a := s.Assign["g0"]; a.Node != "n2" || a.Epoch != 2 || s.Assign["g1"].Node != "n1" || s.Assign["g499"].Node != "n1" || s.Fails["g2"]["n1"] != 1 {
			t.Errorf("%s: g0 %+v, g1 %+v, g499 %+v, fails %v", nd.cfg.Node, a, s.Assign["g1"], s.Assign["g499"], s.Fails)
		}
	}
}
