package t

import (
	"testing"
	"time"

	"github.com/clinit/clinit/cluster/raftnode"
)

// fenceCltab is the netns cltab with a fencing command that powers the
// node off, as far as this bed goes: it SIGKILLs every process in the
// node's namespace, waits until none is left, and notes the kill in the
// events file, so that the checker ends the node's runs there (the
// killed service records no stop). It also records whom it fenced.
const fenceCltab = netnsCltab + `:::stomith:ns={ns}-"$1"; while p=$(ip netns pids "$ns") && [ -n "$p" ]; do kill -9 $p; sleep 0.01; done; echo "kill $1 $(date +%s%N) 0" >> {dir}/events; echo "$1" >> {dir}/fenced
`

// The owner's daemon is frozen (SIGSTOP), its services running on, with
// a fencing command: the leader hears no renewal of it for the fence
// silence, its pings go unanswered, and it fences the node (everything
// in its namespace SIGKILLed), then starts web elsewhere, well before
// the lease would have ended. Once, and never while the frozen copy
// ran.
func TestNetnsOwnerDaemonFrozenStomith(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netnsWith(t, n, fenceCltab)
	owner, from := placeWeb(t, b)
	rest := without2(b.Hosts, owner)
	frozen := time.Now()
	owner.Freeze()
	// The bound: an election if the owner led, the fence silence, the
	// pings, the fence, the lifecycle.
	bound := electionBound + raftnode.FenceSilence(raftnode.DefaultLease) + time.Second + lifecycle + noise
	next := waitOwnerAmong(t, b, rest, rest, bound)
	evs := events(t, b)
	kill, _ := firstAfter(evs, "kill", owner.Name, frozen)
	start, _ := firstAfter(evs, "start", next.Name, frozen)
	t.Logf("%s's daemon frozen: fenced after %v; web started on %s after %v",
		owner.Name, kill.Time.Sub(frozen).Round(time.Millisecond), next.Name, start.Time.Sub(frozen).Round(time.Millisecond))
	if kill.Time.IsZero() || !kill.Time.Before(start.Time) {
		t.Errorf("web started on %s at %v, not after a fence of %s (%v)", next.Name, start.Time, owner.Name, kill.Time)
	}
	if d := start.Time.Sub(frozen); d > bound {
		t.Errorf("web started elsewhere %v after the freeze, over the bound %v", d.Round(time.Millisecond), bound)
	}
	fenced := lines(b.Shared + "/fenced")
	if len(fenced) != 1 || fenced[0] != owner.Name {
		t.Errorf("fenced %v, want %s once", fenced, owner.Name)
	}
	moves(t, b, from, bound, 1)
}
