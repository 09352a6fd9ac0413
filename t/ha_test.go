package t

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/internal/testkit"
)

// haCltab: web claims at plan, tests a per-node file at test (present
// unless a case removes it), and runs a service at start that records
// each start and stop in a file all nodes share.
const haCltab = `
:::nodes:3
:::fencetime:2s
:::stoptimeout:2s
web:claim:plan:once:true
web:check:test:test:test ! -e {dir}/fail.$CLINIT_NODE
web:srv:start,big:respawn:echo "start $CLINIT_NODE $$" >> {dir}/events; trap 'echo "stop $CLINIT_NODE $$" >> {dir}/events; exit 0' TERM; sleep 1000 & wait
web:down:stop:wait:true
`

// owner is the node that hastat (the file, on every node) shows running
// web at level, and whether all nodes agree.
func owner(t *testing.T, nodes []*node, level string) (string, bool) {
	t.Helper()
	var seen string
	for _, nd := range nodes {
		h, err := testkit.ReadHastat(nd.path("hastat"))
		if err != nil {
			t.Fatalf("%s: %v", nd.name, err)
		}
		g, ok := h.Group("web")
		if !ok || g.Level != level || g.State != api.StateDone || seen != "" && g.Node != seen {
			return "", false
		}
		seen = g.Node
	}
	return seen, seen != ""
}

// waitOwner waits until every node's hastat shows web running at level
// on one of nodes, and returns it.
func waitOwner(t *testing.T, nodes []*node, level string) string {
	t.Helper()
	return waitOwnerWithin(t, hang, nodes, level)
}

func waitOwnerWithin(t *testing.T, within time.Duration, nodes []*node, level string) string {
	t.Helper()
	var o string
	eventually(t, within, func() bool {
		var ok bool
		o, ok = owner(t, nodes, level)
		return ok && byName(nodes, o) != nil
	}, "web running at %s on one of the nodes, seen by all", level)
	return o
}

// killOwner SIGKILLs the daemon and services of owner and waits (up to
// within) for web at level on another node; it returns that node, the
// nodes left, and how long the move took.
func killOwner(t *testing.T, nodes []*node, owner, level string, within time.Duration) (string, []*node, time.Duration) {
	t.Helper()
	killed := time.Now()
	byName(nodes, owner).kill9()
	rest := without(nodes, owner)
	next := waitOwnerWithin(t, within, rest, level)
	took := time.Since(killed)
	t.Logf("owner %s killed; web running on %s after %v", owner, next, took.Round(time.Millisecond))
	return next, rest, took
}

func byName(nodes []*node, name string) *node {
	for _, nd := range nodes {
		if nd.name == name {
			return nd
		}
	}
	return nil
}

func without(nodes []*node, name string) []*node {
	var out []*node
	for _, nd := range nodes {
		if nd.name != name {
			out = append(out, nd)
		}
	}
	return out
}

// running counts, from the shared events file, the services of web
// running now (started and not stopped), by node.
func running(t *testing.T, shared string) map[string]int {
	data, _ := os.ReadFile(filepath.Join(shared, "events"))
	live := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		if f[0] == "start" {
			live[f[2]] = f[1]
		} else {
			delete(live, f[2])
		}
	}
	out := map[string]int{}
	for pid, n := range live {
		if p, err := strconv.Atoi(pid); err == nil && alive(p) {
			out[n]++
		}
	}
	return out
}

// runsOnceOn fails the case unless web's service runs once, on node, and
// nowhere else; when says at which point of the case.
func runsOnceOn(t *testing.T, shared, node, when string) {
	t.Helper()
	if r := running(t, shared); len(r) != 1 || r[node] != 1 {
		t.Fatalf("%s: web services running: %v, want one on %s", when, r, node)
	}
}

func sharedDir(nodes []*node) string { return filepath.Dir(nodes[0].flags[len(nodes[0].flags)-1]) }

// startHA starts a cluster of 3 nodes with tab and waits until each sees
// the 3 alive; shared is the directory their services write to.
func startHA(t *testing.T, tab string) (nodes []*node, shared string) {
	t.Helper()
	nodes = startCluster(t, 3, tab)
	waitAlive(t, nodes, 3, "3 alive")
	return nodes, sharedDir(nodes)
}

func TestHAPlacementAndFailover(t *testing.T) {
	t.Parallel()
	nodes, shared := startHA(t, haCltab)
	if out, errOut, code := nodes[0].clinit("--ha", "web", "start"); code != 0 {
		t.Fatalf("--ha: %s %s", out, errOut)
	}
	first := waitOwner(t, nodes, "start")
	settle()
	runsOnceOn(t, shared, first, "placed")

	// An hactl level change follows on the owner, without a move.
	nodes[1].clinit("--ha", "web", "big")
	if o := waitOwner(t, nodes, "big"); o != first {
		t.Fatalf("web moved from %s to %s on a level change", first, o)
	}

	// The owner dies with its services: another node takes over.
	// Without stomith the others wait for its lease to end (3 s from its
	// last renewal) and the fencetime (2 s): by then its keeper has
	// stopped whatever of it survived.
	second, rest, _ := killOwner(t, nodes, first, "big", 40*time.Second)
	runsOnceOn(t, shared, second, "after failover")

	// A graceful -k of the new owner hands it over to the last node.
	stopped := time.Now()
	if _, errOut, code := byName(rest, second).clinit("-k"); code != 0 {
		t.Fatalf("-k: %s", errOut)
	}
	last := without(rest, second)
	// Only one node is left of three: no quorum, so web stops and does
	// not run anywhere.
	eventually(t, hang, func() bool {
		h := last[0].hastatFile()
		return strings.HasPrefix(h, "web big - -")
	}, "web runs nowhere without quorum")
	t.Logf("after -k of %s: %v", second, time.Since(stopped).Round(time.Millisecond))
	// The lease granted just before quorum was lost runs out first.
	eventually(t, hang, func() bool {
		out, _, _ := last[0].clinit("--hastat")
		return strings.HasPrefix(out, "web big - -  (no quorum: no leader answers this node's renewals)")
	}, "clinit --hastat to say why web runs nowhere")
	if r := running(t, shared); len(r) != 0 {
		t.Fatalf("services running without quorum: %v", r)
	}
}

func TestHAHandoffPreferAndTests(t *testing.T) {
	t.Parallel()
	nodes, shared := startHA(t, haCltab)

	// The test fails on n1 and n2: web runs on n3. Preferred n1 then n3,
	// so that n1 is tried first and ruled out, and n2, never tried, is
	// not ruled out for the preference below (a rule-out lasts a minute).
	writeFile(t, filepath.Join(shared, "fail.n1"), "")
	writeFile(t, filepath.Join(shared, "fail.n2"), "")
	nodes[0].clinit("--ha", "web", "start", "--prefer", "n1,n3")
	if o := waitOwner(t, nodes, "start"); o != "n3" {
		t.Fatalf("web on %s, want n3 (the only node whose test passes)", o)
	}
	os.Remove(filepath.Join(shared, "fail.n1"))
	os.Remove(filepath.Join(shared, "fail.n2"))

	// Stop it everywhere.
	nodes[1].clinit("--ha", "web", "stop")
	eventually(t, hang, everyNode(nodes, func(nd *node) bool { return strings.HasPrefix(nd.hastatFile(), "web stop - -") }), "web stopped everywhere")
	eventually(t, hang, func() bool { return len(running(t, shared)) == 0 }, "no web service left")

	// Preferred node honoured.
	nodes[2].clinit("--ha", "web", "start", "--prefer", "n2")
	if o := waitOwner(t, nodes, "start"); o != "n2" {
		t.Fatalf("web on %s, want the preferred n2", o)
	}

	// Graceful handoff: -k on n2, web moves at once to another node
	// (n2 left, so no fencing wait).
	handed := time.Now()
	if _, errOut, code := nodes[1].clinit("-k"); code != 0 {
		t.Fatalf("-k: %s", errOut)
	}
	next := waitOwner(t, without(nodes, "n2"), "start")
	t.Logf("handoff from n2 to %s: %v", next, time.Since(handed).Round(time.Millisecond))
	runsOnceOn(t, shared, next, "after handoff")
}

func TestHAFencing(t *testing.T) {
	t.Parallel()
	// A long fencetime: if web moves quickly, the stomith command did it.
	tab := strings.Replace(haCltab, ":::fencetime:2s", ":::fencetime:60s\n:::stomith:/bin/true & /bin/true & /bin/true & echo \"$1\" >> {dir}/fenced", 1)
	nodes, shared := startHA(t, tab)
	nodes[0].clinit("--ha", "web", "start")
	first := waitOwner(t, nodes, "start")
	if exists(filepath.Join(shared, "fenced")) {
		t.Fatal("a node was fenced with every node alive")
	}
	second, _, took := killOwner(t, nodes, first, "start", hang)
	// Once: a fence that succeeded is not run again. Counted once the
	// fence is committed (after which nothing may fence first again),
	// and again at the end, in two ways: the runs of the command (the
	// file), and the fencings every node started (its log, written
	// before the command runs: a second one still running counts). A
	// second fence at any time up to the end fails the case.
	eventually(t, hang, func() bool {
		for _, nd := range without(nodes, first) {
			if nd.logHas("\tfenced\t", `"node": "`+first+`"`) {
				return true
			}
		}
		return false
	}, "the fence of %s committed", first)
	survivors := without(nodes, first)
	fencedOnce := func(when string) {
		t.Helper()
		if fenced := lines(filepath.Join(shared, "fenced")); len(fenced) != 1 || fenced[0] != first {
			t.Fatalf("%s: fenced %q, want %s once", when, fenced, first)
		}
		started := 0
		for _, nd := range survivors {
			started += nd.logCount("fencing a node that holds HA groups", `"node": "`+first+`"`)
		}
		if started != 1 {
			t.Fatalf("%s: %d fencings of %s started, want 1", when, started, first)
		}
	}
	fencedOnce("after the failover")
	// The fencing command's exit status is the daemon's to read: its
	// reaper must not take it (it would seem failed, and run again).
	for _, nd := range without(nodes, first) {
		if nd.logHas("fencing failed") {
			t.Fatalf("%s: a fencing command that succeeded was taken for a failure", nd.name)
		}
	}
	if took > 30*time.Second {
		t.Fatalf("failover took %v: the fencetime wait, not the fence", took)
	}

	// The dead node comes back on its state: web is not started there
	// again (nothing of it survived), and stays where it moved.
	old := byName(nodes, first)
	back := &node{daemon: launch(t, old.dir, old.flags...), name: first, flags: old.flags}
	back.waitReady()
	nodes = append(without(nodes, first), back)
	waitAlive(t, nodes, 3, "3 alive again")
	settle()
	if o := waitOwner(t, nodes, "start"); o != second {
		t.Fatalf("web moved back to %s after %s came back", o, first)
	}
	runsOnceOn(t, shared, second, "after "+first+" came back")
	if !back.logHas("HA group not restored") {
		t.Fatalf("%s restored web from its state", first)
	}
	fencedOnce("after " + first + " came back")
}

// The owner's daemon is SIGKILLed (its services and its keeper left
// running) and started again at once, within its lease: it finds its
// keeper, adopts the services, renews, and web goes on running there,
// the same process, never started anywhere else.
func TestHADaemonRestartWithinLease(t *testing.T) {
	t.Parallel()
	nodes, shared := startHA(t, haCltab)
	nodes[0].clinit("--ha", "web", "start")
	first := waitOwner(t, nodes, "start")
	before := lines(filepath.Join(shared, "events"))
	old := byName(nodes, first)
	old.forced = true // its services are meant to outlive it
	old.cmd.Process.Kill()
	<-old.done
	back := &node{daemon: launch(t, old.dir, old.flags...), name: first, flags: old.flags}
	back.waitReady()
	nodes = append(without(nodes, first), back)
	// Past the lease the killed daemon held: had anything stopped web (or
	// started it again, or elsewhere), the events would show it.
	time.Sleep(2 * time.Duration(float64(raftnode.DefaultLease)*(1+raftnode.Drift)))
	if o := waitOwner(t, nodes, "start"); o != first {
		t.Fatalf("web moved from %s to %s over a daemon restart within the lease", first, o)
	}
	after := lines(filepath.Join(shared, "events"))
	if len(after) != len(before) {
		t.Fatalf("web was stopped or started over the restart:\nbefore %q\nafter %q", before, after)
	}
	runsOnceOn(t, shared, first, "after the restart")
}

// Two machines and a witness (:::witness:), as corosync-qnetd gives a
// pair: the witness votes and holds no HA group. web runs on n1 or n2,
// never on the witness n3, even when it prefers n3; when its owner dies
// the pair's survivor and the witness are a quorum, and web moves to
// the survivor. Without the witness, the survivor alone would run
// nothing (TestHAPlacementAndFailover's last step).
func TestHAWitness(t *testing.T) {
	t.Parallel()
	tab := strings.Replace(haCltab, ":::nodes:3", ":::servers:n1,n2,n3\n:::witness:n3", 1)
	nodes, shared := startHA(t, tab)
	if out, errOut, code := nodes[2].clinit("--ha", "web", "start", "--prefer", "n3"); code != 0 {
		t.Fatalf("--ha web start --prefer n3: %s %s", out, errOut)
	}
	first := waitOwner(t, nodes, "start")
	if first == "n3" {
		t.Fatal("web placed on the witness")
	}
	settle()
	runsOnceOn(t, shared, first, "placed")
	second, _, _ := killOwner(t, nodes, first, "start", 40*time.Second)
	if second == "n3" {
		t.Fatal("web moved to the witness")
	}
	runsOnceOn(t, shared, second, "after failover")
}
