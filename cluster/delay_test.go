package cluster

import (
	"testing"
	"time"
)

// The waits stay at their base while statuses arrive fresh, grow to
// twice the delay statuses arrive with, never past maxScaled, and come
// back once the delay is gone.
func TestGossipDelayStretchesWaits(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var g gossipDelay
	base := time.Second
	if d := g.atLeast(base, now); d != base {
		t.Fatalf("no samples: %v, want %v", d, base)
	}
	version := func(age time.Duration) uint64 { return uint64(now.Add(-age).UnixNano()) }
	for range 20 {
		g.sample(version(50*time.Millisecond), now)
	}
	if d := g.atLeast(base, now); d != base {
		t.Errorf("fresh statuses: %v, want the base %v", d, base)
	}
	for range 30 {
		g.sample(version(2*time.Second), now)
	}
	if d := g.atLeast(base, now); d < 3500*time.Millisecond || d > 4*time.Second {
		t.Errorf("statuses 2 s old: %v, want about 4 s", d)
	}
	for range 30 {
		g.sample(version(time.Hour), now) // a clock far behind
	}
	if d := g.atLeast(base, now); d != maxScaled {
		t.Errorf("statuses an hour old: %v, want the bound %v", d, maxScaled)
	}
	if d := g.atLeast(base, now.Add(10*delayHalfLife)); d != base {
		t.Errorf("ten half-lives without news: %v, want the base %v", d, base)
	}
	g.sample(7, now) // a version that is no clock reading changes nothing
	if d := g.atLeast(base, now); d != maxScaled {
		t.Errorf("after a counter version: %v, want %v", d, maxScaled)
	}
}
