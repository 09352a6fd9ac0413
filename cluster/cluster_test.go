package cluster

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// testNode is one cluster member with its own files in its own directory.
type testNode struct {
	*Cluster
	name, dir string
}

func (n *testNode) path(name string) string { return filepath.Join(n.dir, name) }

func files(dir string) []File {
	return []File{
		{Kind: KindCltab, Path: filepath.Join(dir, "cltab"), Validate: func(p string, d []byte) error { _, err := cltab.Parse(p, d); return err }},
		{Kind: KindHactl, Path: filepath.Join(dir, "hactl"), Validate: func(p string, d []byte) error { _, err := cltab.ParseHactl(p, d); return err }},
	}
}

// start starts a member; cfg's Node, paths and Log are filled in (a Log
// given is logged to as well).
func start(t *testing.T, name string, cfg Config) *testNode {
	t.Helper()
	return startWith(t, name, cfg, nil)
}

// startWith starts a member whose directory holds files first.
func startWith(t *testing.T, name string, cfg Config, files map[string]string) *testNode {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	os.MkdirAll(dir, 0o755)
	for f, text := range files {
		writeFile(t, filepath.Join(dir, f), text)
	}
	return startIn(t, name, dir, cfg)
}

// startIn starts a member in an existing directory.
func startIn(t *testing.T, name, dir string, cfg Config) *testNode {
	t.Helper()
	if cfg.StateDir == "-" {
		cfg.StateDir = ""
	} else if cfg.StateDir == "" {
		cfg.StateDir = dir
	}
	cfg.Node = name
	cfg.Hastat = filepath.Join(dir, "hastat")
	cfg.Files = files(dir)
	log := testLogger(t).Named(name)
	if cfg.Log != nil { // also log there
		log = zap.New(zapcore.NewTee(log.Core(), cfg.Log.Core())).Named(name)
	}
	cfg.Log = log
	c, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(c.Close)
	return &testNode{Cluster: c, name: name, dir: dir}
}

// mockCluster starts n members on one MockNetwork, each joining the first.
func mockCluster(t *testing.T, n int, key []byte) []*testNode {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = nodeName(i)
	}
	tr := mockNet(names...)
	var nodes []*testNode
	for i := range n {
		cfg := Config{Key: key, Transport: tr[nodeName(i)]}
		if i > 0 {
			cfg.Join = []string{nodes[0].Addr()}
		}
		nodes = append(nodes, start(t, nodeName(i), cfg))
	}
	return nodes
}

// mockNet makes the transports of a MockNetwork. All of them are made
// before any node starts: MockNetwork's maps are not safe for concurrent
// use.
func mockNet(names ...string) map[string]*memberlist.MockTransport {
	var mn memberlist.MockNetwork
	tr := map[string]*memberlist.MockTransport{}
	for _, n := range names {
		tr[n] = mn.NewTransport(n)
	}
	return tr
}

func nodeName(i int) string { return "n" + string(rune('0'+i%10)) + strings.Repeat("x", i/10) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Under load a gossip can miss a member; the push/pull that repairs
	// it comes within PushPullInterval (15 s), which this bound covers
	// twice: it is a guard against hangs, not a timing.
	deadline := time.Now().Add(2*PushPullInterval + 5*time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hastat(t *testing.T, n *testNode) api.Hastat {
	t.Helper()
	h, err := n.Hastat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// nodeOf finds a node in a hastat.
func nodeOf(h api.Hastat, name string) (api.NodeStatus, bool) {
	for _, n := range h.Nodes {
		if n.Node == name {
			return n, true
		}
	}
	return api.NodeStatus{}, false
}

func runs(h api.Hastat, node, group, level string) bool {
	n, ok := nodeOf(h, node)
	if !ok {
		return false
	}
	for _, g := range n.Groups {
		if g.Group == group && g.Level == level {
			return true
		}
	}
	return false
}

func status(node string, groups ...string) api.Status {
	st := api.Status{Node: node}
	for i := 0; i+2 < len(groups)+1; i += 3 {
		st.Groups = append(st.Groups, api.GroupStatus{Group: groups[i], Level: groups[i+1], State: groups[i+2], Since: time.Now()})
	}
	return st
}

// everyNode is a condition that holds when cond holds on every node.
func everyNode(nodes []*testNode, cond func(*testNode) bool) func() bool {
	return func() bool {
		for _, n := range nodes {
			if !cond(n) {
				return false
			}
		}
		return true
	}
}

func allAlive(nodes []*testNode) func() bool {
	return func() bool {
		for _, n := range nodes {
			h, err := n.Hastat(context.Background())
			if err != nil {
				return false
			}
			alive := 0
			for _, m := range h.Nodes {
				if m.State == api.NodeAlive {
					alive++
				}
			}
			if alive != len(nodes) {
				return false
			}
		}
		return true
	}
}

func TestStatusGossipConverges(t *testing.T) {
	nodes := mockCluster(t, 8, testKey)
	eventually(t, "8 members alive everywhere", allAlive(nodes))
	// No voters: each node's hactl is its own copy.
	for _, n := range nodes {
		writeFile(t, n.path("hactl"), "web start\n")
		if err := n.FileChanged(context.Background(), KindHactl); err != nil {
			t.Fatal(err)
		}
	}
	nodes[3].SetStatus(status("n3", "web", "start", "DONE"))
	eventually(t, "every node sees web on n3", everyNode(nodes, func(n *testNode) bool { return runs(hastat(t, n), "n3", "web", "start") }))
	// hastat on disk, SPEC 6 format.
	eventually(t, "hastat file on n7", func() bool {
		data, _ := os.ReadFile(nodes[7].path("hastat"))
		return strings.HasPrefix(string(data), "web start DONE n3\n") && strings.Contains(string(data), "node n0 alive ")
	})
	// A change of state follows.
	nodes[3].SetStatus(status("n3", "web", "stop", "DONE"))
	eventually(t, "every node sees web stopped on n3", everyNode(nodes, func(n *testNode) bool { return runs(hastat(t, n), "n3", "web", "stop") }))
	// The file follows within a flush.
	eventually(t, "hastat file on n5 shows web running nowhere", func() bool {
		data, _ := os.ReadFile(nodes[5].path("hastat"))
		return strings.HasPrefix(string(data), "web start - -\n")
	})
}

func TestLateJoiner(t *testing.T) {
	tr := mockNet("a", "b", "c")
	a := start(t, "a", Config{Key: testKey, Transport: tr["a"]})
	b := start(t, "b", Config{Key: testKey, Transport: tr["b"], Join: []string{a.Addr()}})
	eventually(t, "a and b", allAlive([]*testNode{a, b}))
	a.SetStatus(status("a", "web", "start", "DONE"))
	b.SetStatus(status("b", "db", "run", "DONE"))
	eventually(t, "b sees a's group", func() bool { return runs(hastat(t, b), "a", "web", "start") })
	// c joins later and learns every status by the join's push/pull,
	// not by waiting for the next change.
	c := start(t, "c", Config{Key: testKey, Transport: tr["c"], Join: []string{b.Addr()}})
	eventually(t, "c learns both statuses", func() bool {
		h := hastat(t, c)
		return runs(h, "a", "web", "start") && runs(h, "b", "db", "run")
	})
}

// files equal on every node, with the same version.
func converged(t *testing.T, nodes []*testNode, kind, want string) func() bool {
	return func() bool {
		for _, n := range nodes {
			data, err := os.ReadFile(n.path(kind))
			if err != nil || (want != "" && string(data) != want) {
				return false
			}
			if string(data) != mustRead(t, nodes[0].path(kind)) {
				return false
			}
		}
		return true
	}
}

func mustRead(t *testing.T, path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStrangerCannotJoin(t *testing.T) {
	tr := mockNet("a", "b", "s", "p")
	core, aLog := observer.New(zapcore.DebugLevel)
	a := start(t, "a", Config{Key: testKey, Transport: tr["a"], Log: zap.New(core)})
	b := start(t, "b", Config{Key: testKey, Transport: tr["b"], Join: []string{a.Addr()}})
	eventually(t, "a and b", allAlive([]*testNode{a, b}))
	otherKey := bytes.Repeat([]byte{7}, 32)
	s := start(t, "s", Config{Key: otherKey, Transport: tr["s"]})
	if n, err := s.ml.Join([]string{a.Addr()}); n != 0 || err == nil {
		t.Fatalf("a stranger with another key joined: %d %v", n, err)
	}
	// Nor can one without a key get in by a direct message.
	plain := start(t, "p", Config{Transport: tr["p"]})
	plain.ml.SendReliable(a.ml.LocalNode(), encode(msgStatus, nodeStatus{Node: "p", Version: 1}))
	s.ml.SendReliable(a.ml.LocalNode(), encode(msgStatus, nodeStatus{Node: "s", Version: 1}))
	// Both refused as they arrive (the join's stream and s's message
	// with the wrong key, p's without one): listed nowhere after that.
	eventually(t, "a refusing both messages", func() bool {
		return aLog.FilterMessageSnippet("no installed keys could decrypt").Len() >= 2 &&
			aLog.FilterMessageSnippet("remote state is not encrypted").Len() >= 1
	})
	for _, n := range []*testNode{a, b} {
		for _, m := range hastat(t, n).Nodes {
			if m.Node == "s" || m.Node == "p" {
				t.Fatalf("%s lists the stranger %s", n.name, m.Node)
			}
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// testLogger logs to t until the test ends, and drops what memberlist's
// goroutines still say after that (its Shutdown does not wait for them).
func testLogger(t *testing.T) *zap.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.DebugLevel))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// A node's own status that comes back to it is not news: every receiver
// spreads a status it had not seen, so the sender hears its own again. It
// used to step over it as if it came from before a restart, and every
// node gossiped a new status of its own about ten times a second for
// ever. Only a later version (its status from before a restart) is
// stepped over.
func TestOwnStatusEchoIsNotNews(t *testing.T) {
	nodes := mockCluster(t, 3, testKey)
	eventually(t, "3 members alive everywhere", allAlive(nodes))
	c := nodes[0].Cluster
	var before, afterEcho, afterOld, afterRestart uint64
	err := c.call(context.Background(), func() {
		before = c.self.Version
		echo := c.self
		echo.Groups = append([]groupState(nil), c.self.Groups...)
		c.onStatus(echo)
		afterEcho = c.self.Version
		old := c.self
		old.Version--
		c.onStatus(old)
		afterOld = c.self.Version
		restart := c.self
		restart.Version += 1000
		c.onStatus(restart)
		afterRestart = c.self.Version
	})
	if err != nil {
		t.Fatal(err)
	}
	if afterEcho != before {
		t.Errorf("own status echoed at version %d: version now %d, want unchanged", before, afterEcho)
	}
	if afterOld != before {
		t.Errorf("own older status: version now %d, want %d", afterOld, before)
	}
	if afterRestart <= before+1000 {
		t.Errorf("own status from before a restart at version %d: version now %d, want later", before+1000, afterRestart)
	}
}
