package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
	"github.com/clinit/clinit/internal/coalesce"
)

// bigCluster is one node's loop state in a cluster of nodes members and
// groups HA groups, every group placed and running on one node, as in
// the bench's placement of 1,000 groups on 100 daemons; no network.
func bigCluster(tb testing.TB, nodes, groups int) *Cluster {
	tb.Helper()
	var tab, hactl strings.Builder
	fmt.Fprintf(&tab, ":::servers:n1,n2,n3\n")
	for i := 1; i <= groups; i++ {
		fmt.Fprintf(&tab, "g%04d:p%04d:plan:once:true\ng%04d:s%04d:start:respawn:exec sleep 1\n", i, i, i, i)
		fmt.Fprintf(&hactl, "g%04d start\n", i)
	}
	t, err := cltab.Parse("cltab", []byte(tab.String()))
	if err != nil {
		tb.Fatal(err)
	}
	h, err := cltab.ParseHactl("hactl", []byte(hactl.String()))
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{
		cfg: Config{Node: "n1", Tab: t, Hastat: filepath.Join(tb.TempDir(), "hastat"),
			Tell: func(context.Context, string, string) error { return nil }},
		log: zap.NewNop(), view: newView("n1"), hactl: h, ha: newHAState(t),
		committed: store.New(), watchers: map[chan api.Event]bool{},
	}
	c.newCoalescers(coalesce.Wall)
	now := time.Now()
	c.ha.started = now.Add(-time.Hour)
	c.ha.lease = raftnode.Lease{Until: now.Add(time.Hour), Grant: raftnode.Grant{Leader: "n2", Groups: map[string]uint64{}}}
	for n := 1; n <= nodes; n++ {
		name := fmt.Sprintf("n%d", n)
		c.view.setState(name, api.NodeAlive, "127.0.0.1:1", nil, now)
		st := nodeStatus{Node: name, Version: 1, CPUs: 2}
		for i := n; i <= groups; i += nodes {
			g := fmt.Sprintf("g%04d", i)
			st.Groups = append(st.Groups, groupState{Group: g, Level: "start", State: api.StateDone, Since: now.UnixMilli()})
			c.committed.Assign[g] = store.Assignment{Node: name, Epoch: 1, Version: 10}
			if name == "n1" {
				c.ha.lease.Grant.Groups[g] = 1
			}
		}
		c.view.apply(st)
		if name == "n1" {
			c.self = st
		}
	}
	return c
}

func BenchmarkFlush(b *testing.B) {
	for _, n := range []int{3, 100} {
		c := bigCluster(b, n, 1000)
		b.Run(fmt.Sprintf("hastat/%d-nodes", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.hastatText = ""
				c.writeHastat()
			}
		})
		b.Run(fmt.Sprintf("decide/%d-nodes", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.decideHA()
			}
		})
	}
}

// The hastat file's text, built without an api.Hastat, is that of the
// Hastat --hastat shows: groups placed, placed twice, nowhere, on a dead
// member.
func TestHastatTextIsHastat(t *testing.T) {
	c := bigCluster(t, 5, 40)
	st := c.view.statuses["n2"]
	st.Version++
	st.Groups = append(st.Groups, groupState{Group: "g0001", Level: "test", State: api.StateChecking})
	c.view.apply(st)
	c.view.setState("n3", api.NodeDead, "", nil, time.Now())
	st = c.view.statuses["n4"]
	st.Version++
	st.Groups = nil
	c.view.apply(st)
	want := c.view.hastat(c.hactl, nil).Text()
	got := string(c.view.hastatText(nil, c.hactl))
	if got != want {
		t.Fatalf("hastat file text:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range []string{"g0001 start DONE n1\n", "g0001 test CHECKING n2\n", "g0003 start - -\n", "g0004 start - -\n", "node n3 dead 0.00\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("hastat lacks %q:\n%s", line, got)
		}
	}
}

// A group stopped here long ago leaves this node's status; one that
// stopped lately, is stopping, or failed to stop stays.
func TestStoppedGroupsLeaveTheStatus(t *testing.T) {
	now := time.Now()
	st := api.Status{Groups: []api.GroupStatus{
		{Group: "old", Level: "stop", State: api.StateDone, Since: now.Add(-2 * stoppedKept)},
		{Group: "new", Level: "stop", State: api.StateDone, Since: now.Add(-time.Second)},
		{Group: "going", Level: "stop", State: api.StateStopping, Since: now.Add(-2 * stoppedKept)},
		{Group: "bad", Level: "stop", State: api.StateFailed, Since: now.Add(-2 * stoppedKept)},
		{Group: "web", Level: "start", State: api.StateDone, Since: now.Add(-2 * stoppedKept)},
	}}
	var got []string
	for _, g := range groupsOf(st, now) {
		got = append(got, g.Group)
	}
	if strings.Join(got, ",") != "new,going,bad,web" {
		t.Errorf("gossiped groups %v, want new, going, bad and web", got)
	}
}

// BenchmarkPlan is the leader's planner on 100 members and 1,000 groups:
// steady (every group placed and running) and placing (none placed).
func BenchmarkPlan(b *testing.B) {
	for _, placed := range []bool{true, false} {
		b.Run(fmt.Sprintf("placed=%v", placed), func(b *testing.B) {
			c := bigCluster(b, 100, 1000)
			now := time.Now()
			st := c.committed
			if !placed {
				st = store.New()
			}
			in := planInput{now: now, cfg: planConfig{fenceTime: 10 * time.Second, lease: 8 * time.Second}, state: st,
				hactl: c.hactl.Groups, members: map[string]planMember{}, fencing: map[string]bool{}, leader: "n1",
				expiry: func(string) (time.Time, bool) { return now.Add(time.Second), true }}
			for name, m := range c.view.members {
				s, ok := c.view.statuses[name]
				in.members[name] = planMember{state: m.state, status: s, hasStatus: ok}
			}
			b.ResetTimer()
			for range b.N {
				plan(in)
			}
		})
	}
}
