package t

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// noDoubleRun samples, until check is called, how many of web's services
// run at once (from the shared events file); check fails the test if two
// or more ever ran together, and says for how long.
func noDoubleRun(t *testing.T, shared string) (check func()) {
	var mu sync.Mutex
	var longest, cur time.Duration
	var since time.Time
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			n := 0
			for _, k := range running(t, shared) {
				n += k
			}
			mu.Lock()
			switch {
			case n > 1 && since.IsZero():
				since = time.Now()
			case n > 1:
				cur = time.Since(since)
				longest = max(longest, cur)
			default:
				since = time.Time{}
			}
			mu.Unlock()
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if longest > 0 {
			t.Errorf("web ran on two nodes for %v", longest)
		} else {
			t.Logf("longest double run: 0 ms")
		}
	}
}

// clusterCmd runs a cluster command on nd and returns its output; it
// fails the test unless the exit status is want.
func clusterCmd(t *testing.T, nd *node, want int, args ...string) string {
	t.Helper()
	out, errOut, code := nd.clinit(args...)
	if code != want {
		t.Fatalf("clinit %s on %s: exit %d, want %d: %s %s", strings.Join(args, " "), nd.name, code, want, out, errOut)
	}
	t.Logf("$ clinit %s\n%s%s", strings.Join(args, " "), out, errOut)
	return out + errOut
}

func other(nodes []*node, not ...string) *node {
	for _, nd := range nodes {
		if !strings.Contains(" "+strings.Join(not, " ")+" ", " "+nd.name+" ") {
			return nd
		}
	}
	return nil
}

// The cluster commands on a 3-node cluster: each answers with what it
// did, exits 1 when it cannot be honoured and 2 on a usage error, and
// the HA layer does what it said, with web never on two nodes.
func TestClusterCommands(t *testing.T) {
	t.Parallel()
	nodes, shared := startHA(t, haCltab)
	clusterCmd(t, nodes[0], 0, "--ha", "web", "start")
	first := waitOwner(t, nodes, "start")
	defer noDoubleRun(t, shared)()

	// Usage errors.
	clusterCmd(t, nodes[0], 2, "--move", "web")
	clusterCmd(t, nodes[0], 2, "--maintenance", "maybe")
	clusterCmd(t, nodes[0], 2, "--move", "web", "n2", "--ban")
	// What cannot be honoured.
	if out := clusterCmd(t, nodes[0], 1, "--move", "nosuch", "n2"); !strings.Contains(out, "not an HA group") {
		t.Errorf("move of an unknown group: %q", out)
	}
	if out := clusterCmd(t, nodes[0], 1, "--ban", "web", "n9"); !strings.Contains(out, "not a member") {
		t.Errorf("ban from an unknown node: %q", out)
	}
	if out := clusterCmd(t, nodes[0], 1, "--forget", first); !strings.Contains(out, "only a dead node") {
		t.Errorf("forget of a live node: %q", out)
	}

	// move: to another node now, and it stays there.
	to := other(nodes, first).name
	if out := clusterCmd(t, nodes[1], 0, "--move", "web", to); !strings.Contains(out, "moved to "+to) {
		t.Errorf("move: %q", out)
	}
	eventually(t, hang, func() bool { o, ok := owner(t, nodes, "start"); return ok && o == to }, "web moved to %s", to)
	if out := clusterCmd(t, nodes[2], 0, "--hastat"); !strings.Contains(out, "[moved to "+to+"]") {
		t.Errorf("--hastat after a move:\n%s", out)
	}

	// ban: off the node it is on, and a move there is refused.
	if out := clusterCmd(t, nodes[0], 0, "--ban", "web", to); !strings.Contains(out, "banned from "+to) {
		t.Errorf("ban: %q", out)
	}
	banned := to
	eventually(t, hang, func() bool { o, ok := owner(t, nodes, "start"); return ok && o != banned }, "web off %s", banned)
	eventually(t, hang, func() bool {
		return strings.Contains(clusterCmd(t, nodes[0], 0, "--hastat"), "not on "+banned+": banned by an operator")
	}, "--hastat showing the ban")
	if out := clusterCmd(t, nodes[0], 1, "--move", "web", banned); !strings.Contains(out, "banned") {
		t.Errorf("move to a banned node: %q", out)
	}
	if out := clusterCmd(t, nodes[0], 0, "--clear", "web"); !strings.Contains(out, "cleared") {
		t.Errorf("clear: %q", out)
	}
	eventually(t, hang, func() bool {
		out := clusterCmd(t, nodes[0], 0, "--hastat")
		return !strings.Contains(out, "banned") && !strings.Contains(out, "moved to")
	}, "--hastat without the ban and the move")

	// standby: the node keeps running, its group moves off.
	on, _ := owner(t, nodes, "start")
	if out := clusterCmd(t, nodes[0], 0, "--standby", on); !strings.Contains(out, "standby") {
		t.Errorf("standby: %q", out)
	}
	eventually(t, hang, func() bool { o, ok := owner(t, nodes, "start"); return ok && o != on }, "web off %s in standby", on)
	if out := clusterCmd(t, nodes[0], 0, "--hastat"); !strings.Contains(out, "standby") || byName(nodes, on).exited() {
		t.Errorf("--hastat with %s in standby (its daemon exited: %v):\n%s", on, byName(nodes, on).exited(), out)
	}
	clusterCmd(t, nodes[0], 0, "--online", on)

	// Each node's line names its address and the clinit it runs, as its
	// clinit --version says.
	build := strings.TrimSpace(strings.TrimPrefix(clusterCmd(t, nodes[0], 0, "--version"), "clinit "))
	members := clusterCmd(t, nodes[1], 0, "--hastat")
	for _, nd := range nodes {
		if !regexp.MustCompile(`(?m)^node ` + nd.name + ` alive [0-9.]+  at \S+:[0-9]+  clinit ` + regexp.QuoteMeta(build) + `(  standby)?$`).MatchString(members) {
			t.Errorf("--hastat does not show %s's address and clinit %s:\n%s", nd.name, build, members)
		}
	}

	// maintenance: an hactl change does nothing until it is off.
	if out := clusterCmd(t, nodes[0], 0, "--maintenance", "on"); !strings.Contains(out, "maintenance mode on") {
		t.Errorf("maintenance on: %q", out)
	}
	eventually(t, hang, everyNode(nodes, func(nd *node) bool {
		return strings.Contains(clusterCmd(t, nd, 0, "--hastat"), "maintenance mode")
	}), "every node's --hastat saying maintenance mode")
	owner0, _ := owner(t, nodes, "start")
	out := clusterCmd(t, nodes[0], 0, "--ha", "web", "big")
	var v uint64
	if _, err := fmt.Sscanf(out[strings.LastIndex(out, "version ")+len("version "):], "%d", &v); err != nil {
		t.Fatalf("no version in %q", out)
	}
	eventually(t, hang, everyNode(nodes, func(nd *node) bool { return nd.hastat().Versions["hactl"] >= v }), "hactl version %d everywhere", v)
	// Each node decides within a flush of its copy's change: what must
	// not happen is given a second more.
	time.Sleep(time.Second)
	if o, ok := owner(t, nodes, "start"); !ok || o != owner0 {
		for _, nd := range nodes {
			t.Logf("%s's hastat:\n%s", nd.name, nd.hastatFile())
		}
		t.Fatalf("in maintenance, after --ha web big: web at start on %q (%v), want it left on %s", o, ok, owner0)
	}
	clusterCmd(t, nodes[0], 0, "--maintenance", "off")
	eventually(t, hang, func() bool { o, ok := owner(t, nodes, "big"); return ok && o == owner0 }, "web at big on %s, not moved", owner0)

	// cleanup: of a group, answered; of an unknown one, refused.
	if out := clusterCmd(t, nodes[0], 0, "--cleanup", "web"); !strings.Contains(out, "forgotten") {
		t.Errorf("cleanup: %q", out)
	}

	// forget: a dead node leaves the view, and may come back with
	// --online.
	gone := other(nodes, owner0)
	gone.kill9()
	rest := without(nodes, gone.name)
	eventually(t, 30*time.Second, everyNode(rest, func(nd *node) bool { return nd.hastat().NodeState(gone.name) == "dead" }), "%s dead", gone.name)
	if out := clusterCmd(t, rest[0], 0, "--forget", gone.name); !strings.Contains(out, "forgotten") {
		t.Errorf("forget: %q", out)
	}
	eventually(t, hang, everyNode(rest, func(nd *node) bool {
		return !strings.Contains(nd.hastatFile(), "node "+gone.name+" ")
	}), "%s gone from every hastat", gone.name)
}
