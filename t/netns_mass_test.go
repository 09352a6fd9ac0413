package t

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/t/netbed"
)

// massGroups HA groups beside web, each with a service that records its
// start and stop in an events file of its own (ev-gNN in the shared
// directory), so that the checker sees each group alone; web's checks
// are those of the other scenarios.
const massGroups = 40

func massGroup(i int) string { return fmt.Sprintf("g%02d", i) }

// massCltab is the netns cltab with the mass groups.
func massCltab() string {
	var b strings.Builder
	b.WriteString(netnsCltab)
	for i := 1; i <= massGroups; i++ {
		g := massGroup(i)
		ev := "{dir}/ev-" + g
		fmt.Fprintf(&b, "%s:%s:start,:respawn:echo \"start $CLINIT_NODE $(date +%%s%%N) $$\" >> %s; trap 'echo \"stop $CLINIT_NODE $(date +%%s%%N) $$\" >> %s; exit 0' TERM; sleep 1000 & wait\n", g, g+"srv", ev, ev)
	}
	return b.String()
}

// groupEvents are group g's events: its own file's, with the hosts
// killed (noted in the main events file), sorted by time.
func groupEvents(t *testing.T, b *netbed.Bed, g string) []netbed.Event {
	t.Helper()
	own, err := netbed.ReadEvents(b.Shared + "/ev-" + g)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events(t, b) {
		if e.Kind == "kill" {
			own = append(own, e)
		}
	}
	sort.SliceStable(own, func(i, j int) bool { return own[i].Time.Before(own[j].Time) })
	return own
}

// placedOnce reports whether every one of hosts sees each group of gs
// DONE at start on one host of among, the same in every view.
func placedOnce(hosts, among []*netbed.Host, gs []string) bool {
	views := make([]api.Hastat, len(hosts))
	for i, h := range hosts {
		views[i] = h.Hastat()
	}
	for _, g := range gs {
		node := ""
		for _, v := range views {
			s, ok := v.Group(g)
			if !ok || s.Level != "start" || s.State != "DONE" || (node != "" && s.Node != node) {
				return false
			}
			node = s.Node
		}
		ok := false
		for _, h := range among {
			ok = ok || h.Name == node
		}
		if !ok {
			return false
		}
	}
	return true
}

// The raft leader's host is killed outright (Kill9) right after an edit
// of the hactl that puts 40 groups at start at once is committed: the
// leader is planning them, and some may be assigned to it already. The
// two others elect a leader, which waits a lease and the fence time
// before it moves what the dead leader held; every group ends up running
// on exactly one host, and none ever runs on two.
func TestNetnsLeaderKilledMass(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netnsWith(t, n, massCltab())
	leader := waitLeader(t, b, b.Hosts, b.Hosts, 30*time.Second)
	rest := without2(b.Hosts, leader)
	editor, witness := rest[0], rest[1]

	var gs []string
	var hactl strings.Builder
	for i := 1; i <= massGroups; i++ {
		gs = append(gs, massGroup(i))
		fmt.Fprintf(&hactl, "%s start\n", massGroup(i))
	}
	text := hactl.String()
	// An edit on disk, replaced whole as an editor does: the daemon
	// proposes it; it is committed once another host has it.
	if err := os.WriteFile(editor.Path("hactl.new"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(editor.Path("hactl.new"), editor.Path("hactl")); err != nil {
		t.Fatal(err)
	}
	edited := time.Now()
	waitUntil(t, 30*time.Second, func() bool {
		data, _ := os.ReadFile(witness.Path("hactl"))
		return string(data) == text
	}, "the edit of %s to reach %s", editor.Name, witness.Name)
	committed := time.Now()
	leader.Kill9()
	killed := time.Now()
	held := assignedTo(t, witness, leader.Name)
	t.Logf("%d groups put at start on %s; committed (on %s) after %v; the leader %s killed %v after that",
		massGroups, editor.Name, witness.Name, committed.Sub(edited).Round(time.Millisecond), leader.Name, killed.Sub(committed).Round(time.Millisecond))

	waitUntil(t, failoverBound(n)+2*noise, func() bool { return placedOnce(rest, rest, gs) },
		"every one of the %d groups to run on one of %v, seen by both", massGroups, names(rest))
	t.Logf("all %d groups placed on %v %v after the kill", massGroups, names(rest), time.Since(killed).Round(time.Millisecond))
	time.Sleep(lifecycle)

	onLeader, moves, worstGap := 0, 0, time.Duration(0)
	perHost := map[string]int{}
	for _, g := range gs {
		evs := groupEvents(t, b, g)
		r := verdictOf(t, g, evs, committed, nil, failoverBound(n))
		moves += r.Moves
		worstGap = max(worstGap, r.Gap)
		if e, ok := firstAfter(evs, "start", leader.Name, edited); ok && e.Time.Before(killed) {
			onLeader++
		}
		open := 0
		for _, run := range r.Runs {
			if run.Open && alive(run.Pid) {
				open++
				perHost[run.Host]++
			}
		}
		if open != 1 {
			t.Errorf("%s: %d services running, want 1", g, open)
		}
	}
	t.Logf("mass placement with the leader killed: %d groups assigned to the leader in %s's committed state just after the kill, %d started there before it; %d moves in all; running now %v; longest time a group ran nowhere %v (bound %v)",
		held, witness.Name, onLeader, moves, perHost, worstGap.Round(time.Millisecond), failoverBound(n))
}

// assignedTo counts the HA groups h's committed state assigns to node.
func assignedTo(t *testing.T, h *netbed.Host, node string) int {
	t.Helper()
	out, errOut, code, err := h.Clinit("--hastat", "--json")
	if err != nil || code != 0 {
		t.Fatalf("%s: clinit --hastat --json: %d %v %s", h.Name, code, err, errOut)
	}
	var hs api.Hastat
	if err := json.Unmarshal([]byte(out), &hs); err != nil {
		t.Fatalf("%s: clinit --hastat --json: %v", h.Name, err)
	}
	k := 0
	for _, g := range hs.Groups {
		if g.Assigned == node {
			k++
		}
	}
	return k
}
