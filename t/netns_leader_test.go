package t

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/t/netbed"
)

// Faults of the raft leader (HA.md: "leader dies", "minority partition
// holds the leader"): the leader is a host of its own, found from the
// hosts' `clinit --hastat --json`, and not necessarily web's owner.

// leaderOf is the leader h names in its --hastat --json ("" if none).
func leaderOf(t *testing.T, h *netbed.Host) string {
	t.Helper()
	out, _, code, err := h.Clinit("--hastat", "--json")
	if err != nil || code != 0 {
		return ""
	}
	var hs api.Hastat
	if json.Unmarshal([]byte(out), &hs) != nil {
		return ""
	}
	return hs.Leader
}

// waitLeader waits until every one of hosts names the same leader, one
// of among, and returns it.
func waitLeader(t *testing.T, b *netbed.Bed, hosts, among []*netbed.Host, timeout time.Duration) *netbed.Host {
	t.Helper()
	var l *netbed.Host
	waitUntil(t, timeout, func() bool {
		name := ""
		for _, h := range hosts {
			n := leaderOf(t, h)
			if n == "" || (name != "" && n != name) {
				return false
			}
			name = n
		}
		l = b.Host(name)
		return l != nil && contains(among, l)
	}, "%v to agree on a leader among %v", names(hosts), names(among))
	return l
}

// The raft leader, which is not web's owner, is cut off (1|2 of 3): it
// steps down, the two others elect one of them, and web stays where it
// runs (its owner renews its lease with the new leader). Healed, nothing
// moves either.
func TestNetnsLeaderCut(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	leader := waitLeader(t, b, b.Hosts, b.Hosts, 30*time.Second)
	rest := without2(b.Hosts, leader)
	owner, from := placeWeb(t, b, "--prefer", rest[0].Name)
	if owner == leader {
		t.Fatalf("web went to the leader %s despite --prefer %s", leader.Name, rest[0].Name)
	}
	t.Logf("leader %s, web on %s", leader.Name, owner.Name)

	cut := time.Now()
	b.Note("cut", leader.Name)
	b.Cut(leader)
	next := waitLeader(t, b, rest, rest, detectMax(n)+electionBound+hang)
	t.Logf("cut the leader %s: %v name %s leader after %v", leader.Name, names(rest), next.Name, time.Since(cut).Round(time.Millisecond))
	// Long enough for a wrong move to show: the owner's lease, the fence
	// time and a lifecycle.
	time.Sleep(time.Duration(float64(raftnode.DefaultLease)*(1+raftnode.Drift)) + fenceTime + lifecycle)
	if o := agreedOwner(b, rest); o != owner {
		t.Errorf("with the leader cut off web runs on %v (seen by %v), want it to stay on %s", hostName(o), names(rest), owner.Name)
	}

	heal(t, b, leader, n)
	time.Sleep(electionBound + lifecycle)
	runsOn(t, b, owner.Name, "the heal")
	moves(t, b, from, failoverBound(n), 0)
}

// The raft leader is also web's owner, and is cut off (1|2 of 3): it
// loses leadership and its lease, and stops web by itself; the two
// others elect a leader, which waits a lease and the fence time from its
// election before it gives web to one of them. Healed, the old owner is
// web's preferred node again: web fails back to it, never running twice.
func TestNetnsLeaderOwnerCut(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	leader := waitLeader(t, b, b.Hosts, b.Hosts, 30*time.Second)
	owner, from := placeWeb(t, b, "--prefer", leader.Name)
	if owner != leader {
		t.Fatalf("web went to %s despite --prefer %s", owner.Name, leader.Name)
	}
	rest := without2(b.Hosts, owner)

	cut := time.Now()
	b.Note("cut", owner.Name)
	b.Cut(owner)
	next := waitOwnerAmong(t, b, rest, rest, failoverBound(n)+noise)
	// Its lease ends, its daemon stops web: by then, if web moved too
	// early, the checker has the double run.
	waitUntil(t, time.Duration(float64(raftnode.DefaultLease)*(1+raftnode.Drift))+stopTimeout+hang, func() bool {
		_, ok := firstAfter(events(t, b), "stop", owner.Name, cut)
		return ok
	}, "the cut-off leader %s to stop web", owner.Name)
	stoppedFirst(t, b, owner, next, cut, "the leader and owner, it stopped web after %v")

	healed := heal(t, b, owner, n)
	// web prefers the healed host: it fails back (:::failback: is on by
	// default) once that host has renewed for the failback hold, its
	// present owner stopping it first (the checker would see a double run).
	back := waitOwnerAmong(t, b, b.Hosts, []*netbed.Host{owner}, cluster.FailbackHold(raftnode.DefaultLease)+failoverBound(n)+noise)
	t.Logf("heal: web back on %s after %v", back.Name, time.Since(healed).Round(time.Millisecond))
	moves(t, b, from, failoverBound(n), 2)
}

// A cut that lands 0-700 ms into a placement: `clinit --ha web start
// --prefer X` is committed, and X's link is cut that long after. X is
// the leader at some delays and another host at the others. Whatever
// X had done by then (nothing, plan, test, start), web ends up on one of
// the two others and never runs twice.
func TestNetnsCutIntoPlacement(t *testing.T) {
	t.Parallel()
	for i, d := range []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 700 * time.Millisecond} {
		cutLeader := i%2 == 0
		t.Run(fmt.Sprintf("%dms", d.Milliseconds()), func(t *testing.T) {
			t.Parallel()
			const n = 3
			b := netns(t, n)
			leader := waitLeader(t, b, b.Hosts, b.Hosts, 30*time.Second)
			target := leader
			if !cutLeader {
				target = without2(b.Hosts, leader)[0]
			}
			rest := without2(b.Hosts, target)
			out, errOut, code, err := rest[0].Clinit("--ha", "web", "start", "--prefer", target.Name)
			committed := time.Now()
			if err != nil || code != 0 {
				t.Fatalf("clinit --ha web start: %d %v %s %s", code, err, out, errOut)
			}
			time.Sleep(d)
			b.Note("cut", target.Name)
			b.Cut(target)
			t.Logf("leader %s; web given to %s, cut %v after the commit (leader cut: %v)", leader.Name, target.Name, time.Since(committed).Round(time.Millisecond), cutLeader)
			// A cut before the first assignment is committed leaves a
			// cluster that never placed a group, with a member missing:
			// it settles first.
			bound := failoverBound(n) + netnsSettle
			next := waitOwnerAmong(t, b, rest, rest, bound+noise)
			evs := events(t, b)
			start, _ := firstAfter(evs, "start", next.Name, committed)
			ranThere, _ := firstAfter(evs, "start", target.Name, committed)
			t.Logf("web on %s %v after the commit; %s had started it: %v", next.Name, start.Time.Sub(committed).Round(time.Millisecond), target.Name, !ranThere.Time.IsZero())
			time.Sleep(lifecycle)
			runsOn(t, b, next.Name, "the move")
			r := verdict(t, b, committed, nil, bound)
			t.Logf("sweep %v, cut %s (leader: %v): longest double run %v, longest time running nowhere %v (bound %v), %d moves",
				d, target.Name, cutLeader, r.Overlap, r.Gap.Round(time.Millisecond), bound, r.Moves)
			b.Heal(target)
		})
	}
}
