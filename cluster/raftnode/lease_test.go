package raftnode

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinit/clinit/cluster/store"
)

func TestLeaseGrantCarriesAssignments(t *testing.T) {
	tc := startCluster(t, 3)
	l := tc.leader()
	c := tc.client()
	r, err := c.Propose(ctx(t), store.Command{Op: store.OpAssign, Group: "web", Node: "n1"})
	if err != nil || r.Err != nil {
		t.Fatal(r, err)
	}
	sent := time.Now()
	g, err := c.Renew(ctx(t), "n1")
	if err != nil {
		t.Fatal(err)
	}
	if g.Groups["web"] != 1 || g.Index < r.Version || g.Leader != tc.nodes[l].cfg.Node {
		t.Errorf("grant %+v: want web at epoch 1, index >= %d, leader n%d", g, r.Version, l)
	}
	if g2, _ := c.Renew(ctx(t), "n2"); len(g2.Groups) != 0 {
		t.Errorf("n2 granted %v", g2.Groups)
	}
	exp, ok := tc.nodes[l].Expiry("n1")
	if !ok {
		t.Fatal("leader knows no expiry for a node that renewed")
	}
	// The leader's bound is never earlier than the node's own lease.
	if min := sent.Add(DefaultLease); exp.Before(min) {
		t.Errorf("leader's expiry %v is before the node's lease end %v", exp, min)
	}
	for i, nd := range tc.nodes {
		if i != l {
			if _, ok := nd.Expiry("n1"); ok {
				t.Errorf("follower n%d claims to know n1's expiry", i)
			}
		}
	}
}

// A leader cut off from the quorum soon answers no renewal: its check
// against a quorum fails once the acknowledgements in flight are spent
// and, within raft's leader lease, it steps down.
func TestLeaderWithoutQuorumGrantsNothing(t *testing.T) {
	tc := startCluster(t, 3)
	l := tc.leader()
	c := tc.client()
	if _, err := c.Renew(ctx(t), "n0"); err != nil {
		t.Fatal(err)
	}
	for i := range tc.nodes {
		if i != l {
			tc.stop(i)
		}
	}
	cut := time.Now()
	var err error
	for time.Since(cut) < 5*time.Second {
		if _, err = tc.nodes[l].grant.renew("n0", time.Now()); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("a leader without quorum still granted leases 5 s later")
	}
	refused := time.Since(cut)
	t.Logf("refused %v after the cut", refused)
	if refused > HeartbeatTimeout {
		// A majority elsewhere may elect a leader once it has not heard
		// this one for HeartbeatTimeout: this one must be done by then.
		t.Errorf("granted for %v after losing quorum, past the heartbeat timeout %v", refused, HeartbeatTimeout)
	}
	for i := 0; i < 10; i++ {
		if _, err := tc.nodes[l].grant.renew("n0", time.Now()); err == nil {
			t.Fatal("granted again after a refusal, still without quorum")
		}
	}
	if _, ok := tc.nodes[l].Expiry("n0"); ok {
		t.Error("a deposed leader still reports expiries")
	}
}

// A new leader counts every lease it did not grant from its election.
func TestNewLeaderCountsFromItsElection(t *testing.T) {
	tc := startCluster(t, 3)
	old := tc.leader()
	c := tc.client()
	if _, err := c.Renew(ctx(t), "n9"); err != nil {
		t.Fatal(err)
	}
	tc.stop(old)
	lost := time.Now()
	nl := tc.leader()
	if err := tc.nodes[nl].Ready(); err != nil {
		t.Fatal(err)
	}
	exp, ok := tc.nodes[nl].Expiry("n9")
	if !ok {
		t.Fatal("new leader reports no expiry once ready")
	}
	if min := lost.Add(DefaultLease); exp.Before(min) {
		t.Errorf("new leader lets n9's lease end at %v, before %v (the old leader could have renewed it until it died)", exp, min)
	}
}

func TestRenewerHoldsAndLapses(t *testing.T) {
	tc := startCluster(t, 3)
	tc.leader()
	leases := make(chan Lease, 100)
	rctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Renewer{Node: "n0", Client: tc.client(), Lease: time.Second, OnLease: func(l Lease) {
		select {
		case leases <- l:
		default:
		}
	}}
	go r.Run(rctx)
	var first Lease
	select {
	case first = <-leases:
	case <-time.After(10 * time.Second):
		t.Fatal("no lease in 10 s")
	}
	if d := time.Until(first.Until); d > time.Second || d <= 0 {
		t.Errorf("lease runs %v more, want (0, 1s]", d)
	}
	if d := first.UntilBoot - Boottime(); d > int64(time.Second) || d <= 0 {
		t.Errorf("boottime lease runs %v more", time.Duration(d))
	}
	// Renewed every quarter lease.
	select {
	case l2 := <-leases:
		if !l2.Until.After(first.Until) {
			t.Errorf("renewal did not move the lease on: %v then %v", first.Until, l2.Until)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no renewal in 5 s")
	}
	// Without a quorum no renewal sent after the close succeeds: the
	// last lease runs out.
	for i := range tc.nodes {
		tc.stop(i)
	}
	closed := time.Now()
	timeout := time.After(2 * time.Second)
	for {
		select {
		case l := <-leases:
			if sent := l.Until.Add(-time.Second); sent.After(closed) {
				t.Fatalf("a renewal sent %v after every voter closed was granted", sent.Sub(closed))
			}
		case <-timeout:
			return
		}
	}
}

// The leader reports a node that stopped renewing once it has been
// silent for FenceSilence, not before, and never one that renews.
func TestLeaderReportsSilence(t *testing.T) {
	tc := startCluster(t, 3)
	leader := fmt.Sprintf("n%d", tc.leader())
	var last sync.Map     // node -> time.Time of its last answered renewal's send
	var renewals sync.Map // node -> *atomic.Int32, its answered renewals
	run := func(ctx context.Context, node string) {
		n := new(atomic.Int32)
		renewals.Store(node, n)
		r := &Renewer{Node: node, Client: tc.client(), Lease: DefaultLease, OnLease: func(l Lease) {
			last.Store(node, l.Until.Add(-DefaultLease))
			n.Add(1)
		}}
		r.Run(ctx)
	}
	answered := func(node string) int32 {
		if n, ok := renewals.Load(node); ok {
			return n.(*atomic.Int32).Load()
		}
		return 0
	}
	keep, stopKeep := context.WithCancel(context.Background())
	defer stopKeep()
	quit, stopQuit := context.WithCancel(context.Background())
	go run(keep, "n7")
	go run(quit, "n8")
	// Both renew for a while (three answered renewals each) before n8
	// stops.
	deadline := time.Now().Add(20 * time.Second)
	for answered("n7") < 3 || answered("n8") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("renewals answered in 20 s: n7 %d, n8 %d; want 3 each", answered("n7"), answered("n8"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopQuit()
	stopped := time.Now()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-tc.silent:
			if s == "n7@"+leader {
				t.Fatalf("n7, which renews, reported silent")
			}
			if s != "n8@"+leader {
				continue
			}
			v, _ := last.Load("n8")
			if d := time.Since(v.(time.Time)); d < FenceSilence(DefaultLease) {
				t.Errorf("n8 reported silent %v after its last renewal was sent, before the fence silence %v", d, FenceSilence(DefaultLease))
			}
			if d := time.Since(stopped); d > FenceSilence(DefaultLease)+2*time.Second {
				t.Errorf("n8 reported silent only %v after it stopped renewing", d)
			}
			// n7 keeps renewing: no report of it for two fence silences.
			quiet := time.After(2 * FenceSilence(DefaultLease))
			for {
				select {
				case s := <-tc.silent:
					if s == "n7@"+leader {
						t.Fatal("n7, which renews, reported silent")
					}
				case <-quiet:
					return
				}
			}
		case <-timeout:
			t.Fatal("n8 not reported silent 10 s after it stopped renewing")
		}
	}
}
