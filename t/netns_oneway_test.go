package t

import (
	"testing"
	"time"
)

// 30% of the packets towards web's owner are lost for 30 s, none of
// those it sends: it hears probes, heartbeats and lease answers only
// in part, while the others hear it in full. Whatever that does to
// membership and to its lease, web never runs twice; the moves are
// reported.
func TestNetnsOneWayLoss(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	owner, from := placeWeb(t, b)

	how, err := b.LossTo(owner, 30)
	if err != nil {
		t.Skipf("no way to drop packets at random on this kernel (no sch_netem, no bpf classifier): %v", err)
	}
	b.Note("loss", owner.Name)
	t.Logf("30%% loss towards %s only (%s) for 30s", owner.Name, how)
	time.Sleep(30 * time.Second)
	t.Logf("dropped by the switch ports: %v", b.Drops())
	b.NoLoss()
	b.Note("noloss", owner.Name)
	waitUntil(t, mergeBound(n)+hang, func() bool { return allAlive(b.Hosts, n) && agreedOwner(b, b.Hosts) != nil },
		"every host to see %d alive and agree where web runs after the loss", n)
	time.Sleep(electionBound + lifecycle)

	deaths := memberDeaths(b)
	runsOn(t, b, "", "the loss")
	r := verdict(t, b, from, nil, failoverBound(n))
	t.Logf("one-way loss towards %s: %d moves, %d starts; members declared dead, counted over all logs: %d; web now on %s",
		owner.Name, r.Moves, len(r.Runs), deaths, hostName(agreedOwner(b, b.Hosts)))
}
