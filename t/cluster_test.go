package t

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
)

// freePort finds a port free for both TCP and UDP on loopback, as
// memberlist needs both.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// node is one daemon of a loopback cluster.
type node struct {
	*daemon
	name  string
	flags []string
}

// startCluster starts n daemons on loopback, each in its own directory
// with its own copy of cltabText, all holding one key and each given
// every other as a seed (so they can start in any order). {dir} in the
// cltab is one directory shared by all nodes (the cltab is replicated,
// so it must be the same everywhere): the key lives there too.
func startCluster(t *testing.T, n int, cltabText string) []*node {
	t.Helper()
	return startClusterWith(t, n, cltabText, nil)
}

// startClusterWith is startCluster with more flags for node i (from 0)
// when extra is not nil.
func startClusterWith(t *testing.T, n int, cltabText string, extra func(i int) []string) []*node {
	t.Helper()
	start := prepareCluster(t, n, cltabText, extra)
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = start(i)
	}
	for _, nd := range nodes {
		nd.waitReady()
	}
	return nodes
}

// prepareCluster makes the key, ports, directories and cltabs of a
// startClusterWith cluster and returns what starts node i (without
// waiting for it), for cases that start nodes at different times or put
// more files in a node's directory first (before gives node i's
// directory, when not nil).
func prepareCluster(t *testing.T, n int, cltabText string, extra func(i int) []string, before ...func(i int, dir string)) (start func(i int) *node) {
	t.Helper()
	keyDir := newCaseDir(t)
	key := filepath.Join(keyDir, "key")
	if _, errOut, code, err := runClinit("--keygen", key); err != nil || code != 0 {
		t.Fatalf("clinit --keygen %s: %d %v %s", key, code, err, errOut)
	}
	ports := make([]int, n)
	var seeds []string
	for i := range ports {
		ports[i] = freePort(t)
		seeds = append(seeds, "127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	names, dirs, flagsOf := make([]string, n), make([]string, n), make([][]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("n%d", i+1)
		// The raft port is chosen too: memberlist's port + 1 may be
		// another test's.
		flags := []string{"--node", names[i], "--bind", seeds[i], "--raft-bind", "127.0.0.1:" + strconv.Itoa(freePort(t)),
			"--join", strings.Join(seeds, ","), "--keyfile", key}
		if extra != nil {
			flags = append(extra(i), flags...)
		}
		flagsOf[i] = flags
		dirs[i] = newCaseDir(t)
		writeFile(t, filepath.Join(dirs[i], "cltab"), expand(keyDir, cltabText))
		for _, b := range before {
			b(i, dirs[i])
		}
	}
	return func(i int) *node {
		t.Helper()
		return &node{daemon: launch(t, dirs[i], flagsOf[i]...), name: names[i], flags: flagsOf[i]}
	}
}

// hastat is the node's cluster view, as `clinit --hastat --json` prints it.
func (nd *node) hastat() api.Hastat {
	nd.t.Helper()
	out, errOut, code := nd.clinit("--hastat", "--json")
	if code != 0 {
		nd.t.Fatalf("%s: clinit --hastat --json: %d %s", nd.name, code, errOut)
	}
	var h api.Hastat
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		nd.t.Fatalf("%s: hastat JSON: %v\n%s", nd.name, err, out)
	}
	return h
}

// hastatFile is the hastat file the node writes.
func (nd *node) hastatFile() string {
	data, _ := os.ReadFile(nd.path("hastat"))
	return string(data)
}

func everyNode(nodes []*node, cond func(*node) bool) func() bool {
	return func() bool {
		for _, nd := range nodes {
			if !cond(nd) {
				return false
			}
		}
		return true
	}
}

// waitAlive waits until every one of nodes counts n members alive.
func waitAlive(t *testing.T, nodes []*node, n int, what string) {
	t.Helper()
	eventually(t, hang, everyNode(nodes, func(nd *node) bool { return nd.hastat().Alive() == n }), what)
}

const webCltab = `
web:ip:start:once:echo up > {dir}/web.up; exec sleep 1000
web:ipdown:stop:wait:rm -f {dir}/web.up
db:pg:run:respawn:exec sleep 1000
`

func TestClusterMembershipAndStatus(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, webCltab)
	waitAlive(t, nodes, 3, "3 alive members on every node")

	// Without voters (:::nodes: or :::servers:) nothing is replicated,
	// and --ha says so rather than edit one node's copy.
	_, errOut, code := nodes[0].clinit("--ha", "web", "start", "--prefer", "n2,n3")
	if code != 1 || !strings.Contains(errOut, "names no voters (:::nodes: or :::servers:)") {
		t.Fatalf("clinit --ha without voters: %d %q", code, errOut)
	}
	// Each node's own hactl lists web; HA is off: web runs nowhere, and
	// hastat says why.
	for _, nd := range nodes {
		writeFile(t, nd.path("hactl"), "web start n2,n3\n")
	}
	eventually(t, hang, everyNode(nodes, func(nd *node) bool {
		return strings.HasPrefix(nd.hastatFile(), "web start - -\n")
	}), "web listed, running nowhere, in every hastat")
	if out, _, _ := nodes[2].clinit("--hastat"); !strings.HasPrefix(out, "web start - -  (HA is off: the cltab names no voters (:::nodes: or :::servers:))\n") {
		t.Fatalf("clinit --hastat:\n%s", out)
	}

	// A state change on n2 shows in every node's view.
	told := time.Now()
	nodes[1].tell("db", "run")
	eventually(t, hang, everyNode(nodes, func(nd *node) bool {
		for _, n := range nd.hastat().Nodes {
			for _, g := range n.Groups {
				if n.Node == "n2" && g.Group == "db" && g.Level == "run" && g.State == "DONE" {
					return true
				}
			}
		}
		return false
	}), "db on n2 in every node's view")
	t.Logf("tell on n2 to every node's view showing db DONE: %v", time.Since(told).Round(time.Millisecond))
	for _, nd := range nodes {
		if h := nd.hastatFile(); !strings.Contains(h, "node n1 alive ") || !strings.Contains(h, "node n3 alive ") {
			t.Fatalf("%s hastat:\n%s", nd.name, h)
		}
	}

	// --ha refuses a group the cltab does not have, and bad names.
	if _, errOut, code := nodes[0].clinit("--ha", "nosuch", "start"); code != 1 || !strings.Contains(errOut, "no such group: nosuch") {
		t.Fatalf("--ha on an unknown group: %d %q", code, errOut)
	}
	if _, _, code := nodes[0].clinit("--ha", "web"); code != 2 {
		t.Fatalf("--ha with one argument: status %d, want 2", code)
	}
}

func TestClusterReplicatesEdits(t *testing.T) {
	t.Parallel()
	// Replication goes through the consensus log: the cltab names voters.
	nodes := startCluster(t, 3, ":::nodes:3\n"+webCltab)
	waitAlive(t, nodes, 3, "3 alive")
	// An edit is based on the committed version the copy is: wait for
	// the first one (the cltab every node started with) everywhere. One
	// made before is refused, and kept aside (below).
	eventually(t, hang, everyNode(nodes, func(nd *node) bool { return nd.hastat().Versions["cltab"] > 0 }), "the first cltab committed on every node")

	// A cltab edit on n3 reaches every node, and every daemon uses it.
	tab := string(must(os.ReadFile(nodes[2].cltab))) + "cache:mc:run:respawn:exec sleep 1000\n"
	writeFile(t, nodes[2].cltab, tab)
	eventually(t, hang, everyNode(nodes, func(nd *node) bool {
		data, _ := os.ReadFile(nd.cltab)
		return string(data) == tab
	}), "the cltab on every node")
	for _, nd := range nodes {
		nd.tell("cache", "run")
	}
	// An hactl edit on n1, by hand this time.
	writeFile(t, nodes[0].path("hactl"), "cache run n1\n")
	eventually(t, hang, everyNode(nodes, func(nd *node) bool {
		data, _ := os.ReadFile(nd.path("hactl"))
		return string(data) == "cache run n1\n"
	}), "the hand-edited hactl on every node")

	// An invalid edit is refused where it is made and goes nowhere.
	writeFile(t, nodes[1].cltab, "cache:mc:run:sometimes:true\n")
	eventually(t, hang, func() bool { return nodes[1].logHas("cltab invalid", "sometimes") }, "n2 reports its invalid cltab")
	settle()
	for _, nd := range []*node{nodes[0], nodes[2]} {
		if data, _ := os.ReadFile(nd.cltab); string(data) != tab {
			t.Fatalf("%s took an invalid cltab:\n%s", nd.name, data)
		}
	}

	// Two edits at once, on two nodes: every node ends with one of them.
	a := tab + "x:a:1:once:true\n"
	b := tab + "x:b:1:once:true\n"
	done := make(chan error)
	go func() { done <- os.WriteFile(nodes[0].cltab, []byte(a), 0o644) }()
	writeFile(t, nodes[1].cltab, b)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	eventually(t, hang, func() bool {
		first, _ := os.ReadFile(nodes[0].cltab)
		if string(first) != a && string(first) != b {
			return false
		}
		for _, nd := range nodes[1:] {
			if data, _ := os.ReadFile(nd.cltab); string(data) != string(first) {
				return false
			}
		}
		return true
	}, "concurrent edits converge")
	// The edit that lost was refused, not lost: kept aside where it was
	// made.
	won := string(must(os.ReadFile(nodes[0].cltab)))
	loser := nodes[1]
	if won == b {
		loser = nodes[0]
	}
	if won == a && won == b {
		t.Fatal("both edits are the same")
	}
	if aside, err := os.ReadFile(loser.cltab + ".rejected"); err != nil || (string(aside) != a && string(aside) != b) {
		t.Errorf("%s: the refused edit is not kept in cltab.rejected: %v %q", loser.name, err, aside)
	}
}

func TestClusterStrangerAndRejoin(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, webCltab)
	waitAlive(t, nodes, 3, "3 alive")

	// A daemon with another key, pointed at n1, never gets in.
	dir := newCaseDir(t)
	writeFile(t, filepath.Join(dir, "cltab"), webCltab)
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	stranger := launch(t, dir, "--node", "stranger", "--bind", "127.0.0.1:"+strconv.Itoa(port),
		"--join", nodes[0].flags[3], "--keyfile", filepath.Join(dir, "key"))
	stranger.waitReady()
	sn := &node{daemon: stranger, name: "stranger"}
	eventually(t, hang, func() bool { return stranger.logHas("no seed answers yet") }, "the stranger fails to join")
	settle()
	for _, nd := range nodes {
		if s := nd.hastat().NodeState("stranger"); s != "" {
			t.Fatalf("%s lists the stranger as %s", nd.name, s)
		}
	}
	if h := sn.hastat(); h.Alive() != 1 {
		t.Fatalf("the stranger sees %d members", h.Alive())
	}

	// n3 killed with SIGKILL: the others mark it dead; started again on
	// the same directory and flags, it rejoins under its name.
	killed := time.Now()
	nodes[2].kill9()
	eventually(t, hang, everyNode(nodes[:2], func(nd *node) bool { return nd.hastat().NodeState("n3") == "dead" }), "n3 dead on n1 and n2")
	t.Logf("SIGKILL of n3 to n1 and n2 marking it dead: %v", time.Since(killed).Round(time.Millisecond))
	n3 := &node{daemon: launch(t, nodes[2].dir, nodes[2].flags...), name: "n3", flags: nodes[2].flags}
	n3.waitReady()
	nodes[2] = n3
	waitAlive(t, nodes, 3, "n3 alive again everywhere")

	// n1 shut down with -k: the others mark it left at once.
	if _, errOut, code := nodes[0].clinit("-k"); code != 0 {
		t.Fatalf("-k: %s", errOut)
	}
	eventually(t, hang, everyNode(nodes[1:], func(nd *node) bool { return nd.hastat().NodeState("n1") == "left" }), "n1 left")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestKeyFile: clinit --keygen PATH writes a key only its owner can
// read, and a daemon refuses a key file that others can read.
func TestKeyFile(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	key := filepath.Join(dir, "key")
	out, errOut, code, err := runClinit("--keygen", key)
	if err != nil || code != 0 || !strings.Contains(out, key) {
		t.Fatalf("clinit --keygen %s: %d %q %q %v", key, code, out, errOut, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if _, errOut, code, _ := runClinit("--keygen", key); code != 1 || !strings.Contains(errOut, "file exists") {
		t.Fatalf("clinit --keygen over an existing key: %d %q", code, errOut)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "cltab"), "g:a:1:once:true\n")
	d := launch(t, dir, "--bind", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--keyfile", key)
	if code := d.waitExit(); code != 1 || !strings.Contains(d.log.String(), "chmod 600 "+key) {
		t.Fatalf("a daemon with a key of mode 0644: exit %d, log:\n%s", code, d.log)
	}
}
