package t

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/cluster"
)

// settleCltab is haCltab with a short lease (the failback hold is two
// of them) and settle as given.
func settleCltab(settle string) string {
	return strings.Replace(haCltab, ":::fencetime:2s", ":::fencetime:2s\n:::lease:2s\n:::settle:"+settle, 1)
}

// whyOf is the why hastat on nd shows for web.
func whyOf(nd *node) string {
	g, _ := nd.hastat().Group("web")
	return g.Why
}

// The first placement of a cluster, with the preferred node n1 down:
// the cluster (bootstrapped by all three, nothing placed yet) gets
// "web start n1" while only n2 and n3 are up. It settles, waiting for
// n1 (hastat says so, nothing runs), and places web on n1 once n1
// starts a few seconds later. With :::settle:0 web is placed on n2 or
// n3 at once, before n1 is back, as it was before the cluster settled.
// web never runs on two nodes.
func TestHASettleFirstPlacement(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, settle string
		wait         bool // the cluster waits for n1
	}{{"settle 20s", "20s", true}, {"settle off", "0", false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nodes, shared := startHA(t, settleCltab(c.settle))
			defer noDoubleRun(t, shared)()
			n1 := nodes[0]
			if _, errOut, code := n1.clinit("-k"); code != 0 {
				t.Fatalf("-k on n1: %s", errOut)
			}
			n1.waitExit()
			up := nodes[1:]
			waitAlive(t, up, 2, "n2 and n3 to see n1 gone")
			writeFile(t, up[0].path("hactl"), "web start n1\n")
			if c.wait {
				// The leader says whom it waits for; the other, that it
				// waits.
				want := "cluster settling: 2 of 3 nodes up, waiting for the others up to 20s"
				follower := "cluster settling: the leader waits for the expected members up to 20s"
				eventually(t, hang, func() bool {
					a, b := whyOf(up[0]), whyOf(up[1])
					return a == want && b == follower || a == follower && b == want
				}, "hastat to say %q on the leader, %q on the other", want, follower)
				if r := running(t, shared); len(r) != 0 {
					t.Fatalf("web runs while the cluster settles: %v", r)
				}
				out, _, _ := up[1].clinit("--hastat")
				t.Logf("while n1 is down:\n%s", out)
			} else {
				o := waitOwner(t, up, "start")
				t.Logf("without settle, web placed on %s while n1 is down", o)
			}
			restarted := time.Now()
			back := &node{daemon: launch(t, n1.dir, n1.flags...), name: "n1", flags: n1.flags}
			back.waitReady()
			nodes = append([]*node{back}, up...)
			o := waitOwner(t, nodes, "start")
			if c.wait {
				if o != "n1" {
					t.Fatalf("web on %s, want the preferred n1, back within the settle time", o)
				}
				t.Logf("web on n1 %v after n1 started", time.Since(restarted).Round(time.Millisecond))
			} else if o == "n1" {
				t.Fatalf("without settle web on n1 at once; want it placed before n1 started")
			}
			runsOnceOn(t, shared, o, "placed")
		})
	}
}

// A cold start: every node has "web start n1" in its hactl, and n1
// starts after n2 and n3 see each other. Nothing runs before n1 is in
// (the cluster bootstraps once the three voters see each other, and then
// settles until n1 is alive and renewing), and web is placed on n1.
func TestHASettleColdStart(t *testing.T) {
	t.Parallel()
	start := prepareCluster(t, 3, settleCltab("20s"), nil, func(i int, dir string) {
		writeFile(t, filepath.Join(dir, "hactl"), "web start n1\n")
	})
	n2, n3 := start(1), start(2)
	n2.waitReady()
	n3.waitReady()
	shared := sharedDir([]*node{n2})
	defer noDoubleRun(t, shared)()
	early := []*node{n2, n3}
	waitAlive(t, early, 2, "n2 and n3 to see each other")
	if r := running(t, shared); len(r) != 0 {
		t.Fatalf("web runs before n1 started: %v", r)
	}
	started := time.Now()
	n1 := start(0)
	n1.waitReady()
	nodes := []*node{n1, n2, n3}
	if o := waitOwnerWithin(t, 30*time.Second, nodes, "start"); o != "n1" {
		t.Fatalf("web on %s, want the preferred n1", o)
	}
	t.Logf("web on n1 %v after n1 started", time.Since(started).Round(time.Millisecond))
	runsOnceOn(t, shared, "n1", "placed")
}

// web prefers n1; n1 is killed, web moves; n1 comes back. With failback
// (the default) web goes back to n1, gracefully and only once n1 has
// been up for the hold; with failback=off on its hactl line it stays
// where it moved. web never runs on two nodes.
func TestHAFailback(t *testing.T) {
	t.Parallel()
	hold := cluster.FailbackHold(2 * time.Second)
	for _, c := range []struct {
		name, line string
		back       bool
	}{{"failback on", "web start n1\n", true}, {"failback off", "web start n1 failback=off\n", false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nodes, shared := startHA(t, settleCltab("20s"))
			writeFile(t, nodes[1].path("hactl"), c.line)
			if o := waitOwner(t, nodes, "start"); o != "n1" {
				t.Fatalf("web on %s, want the preferred n1", o)
			}
			defer noDoubleRun(t, shared)()

			moved, rest, _ := killOwner(t, nodes, "n1", "start", 40*time.Second)
			old := byName(nodes, "n1")
			back := &node{daemon: launch(t, old.dir, old.flags...), name: "n1", flags: old.flags}
			back.waitReady()
			returned := time.Now()
			nodes = append(rest, back)
			waitAlive(t, nodes, 3, "3 alive again")

			if c.back {
				eventually(t, hold+30*time.Second, func() bool { o, ok := owner(t, nodes, "start"); return ok && o == "n1" },
					"web back on n1, seen by all")
				after := time.Since(returned)
				t.Logf("web back on n1 %v after n1 started again (hold %v)", after.Round(time.Millisecond), hold)
				if after < hold {
					t.Fatalf("web went back to n1 %v after it returned, before the hold of %v", after, hold)
				}
				// It went the graceful way: stopped on the node it moved
				// to before it started on n1.
				if !anyLog(nodes, "HA assignment", "failback to n1, preferred before "+moved) {
					t.Fatal("no failback assignment logged")
				}
			} else {
				// Long enough for a failback to show: the hold, a renewal
				// round and the lifecycle plan, test, start.
				if poll(2*hold+5*time.Second, func() bool { o, ok := owner(t, nodes, "start"); return ok && o != moved }) {
					t.Fatalf("web moved off %s with failback=off", moved)
				}
				if o := waitOwner(t, nodes, "start"); o != moved {
					t.Fatalf("web on %s, want it to stay on %s", o, moved)
				}
				if anyLog(nodes, "failback to") {
					t.Fatal("a failback was planned with failback=off")
				}
			}
			o, _ := owner(t, nodes, "start")
			runsOnceOn(t, shared, o, "at the end")
		})
	}
}

// anyLog reports whether any node logged a line with every part.
func anyLog(nodes []*node, parts ...string) bool {
	for _, nd := range nodes {
		if nd.logHas(parts...) {
			return true
		}
	}
	return false
}
