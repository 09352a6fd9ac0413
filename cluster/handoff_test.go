package cluster

import (
	"context"
	"testing"
	"time"
)

// Handoff waits while an HA group runs here, and returns as soon as the
// engine's status shows it stopped: it is woken by that change, not by
// a poll.
func TestHandoffWaitsForTheGroupToStop(t *testing.T) {
	n := mockCluster(t, 1, testKey)[0]
	c := n.Cluster
	n.SetStatus(status("n0", "web", "start", "DONE"))
	if err := c.call(context.Background(), func() { c.ha.kept["web"] = true }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web held here", func() bool {
		var held bool
		c.call(context.Background(), func() { held = len(c.heldHA()) == 1 })
		return held
	})
	returned := make(chan struct{})
	go func() {
		c.Handoff(context.Background())
		close(returned)
	}()
	eventually(t, "the handoff waiting", func() bool {
		var waiting bool
		c.call(context.Background(), func() { waiting = len(c.handoffs) == 1 })
		return waiting
	})
	// A turn of the loop that changes nothing keeps it waiting.
	var waiting int
	c.call(context.Background(), func() {})
	c.call(context.Background(), func() { waiting = len(c.handoffs) })
	if waiting != 1 {
		t.Fatalf("%d handoffs waiting while web runs here, want 1", waiting)
	}
	n.SetStatus(status("n0", "web", "stop", "DONE"))
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Handoff still waiting after web stopped")
	}
}

// A handoff with nothing to hand over returns at once.
func TestHandoffOfNothing(t *testing.T) {
	c := mockCluster(t, 1, testKey)[0].Cluster
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Handoff(ctx)
	if ctx.Err() != nil {
		t.Fatal("Handoff of nothing waited for its deadline")
	}
}
