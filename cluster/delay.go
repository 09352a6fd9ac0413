package cluster

import (
	"math"
	"time"
)

// gossipDelay estimates how old a status is when it arrives here: the
// age of each newer status received from another node (its version is
// the sender's clock), averaged, the average halving every
// delayHalfLife without news. A claim must be seen by the other
// candidates before the next one claims, and before the claimant goes
// further (the plan hold): in a cluster so loaded that statuses take
// seconds to travel, one second between candidates set off claim storms
// (bench, 30 nodes on 2 cores). Those waits grow with the estimate.
type gossipDelay struct {
	est  time.Duration
	last time.Time
}

const (
	delayHalfLife = 10 * time.Second
	// maxScaled bounds the waits the estimate may stretch: a clock
	// skewed by minutes must not stall placement.
	maxScaled = 5 * time.Second
	// clockVersions: a version over this is a clock reading (statuses
	// take their versions from the clock, see bump).
	clockVersions = uint64(1_000_000_000_000_000_000) // 2001 in Unix nanoseconds
)

// sample notes a status of version v received at now.
func (g *gossipDelay) sample(v uint64, now time.Time) {
	if v < clockVersions {
		return
	}
	age := min(max(now.Sub(time.Unix(0, int64(v))), 0), maxScaled)
	g.est = g.current(now)*4/5 + age/5
	g.last = now
}

// current is the estimate at now.
func (g *gossipDelay) current(now time.Time) time.Duration {
	if g.last.IsZero() {
		return 0
	}
	decay := math.Exp2(-float64(now.Sub(g.last)) / float64(delayHalfLife))
	return time.Duration(float64(g.est) * decay)
}

// atLeast is base, or twice the estimate when longer, up to maxScaled.
func (g *gossipDelay) atLeast(base time.Duration, now time.Time) time.Duration {
	return max(base, min(2*g.current(now), maxScaled))
}
