package cluster

import (
	"math"
	"time"
)

// AwarenessMaxMultiplier bounds how far memberlist slows its probes on a
// node that misses acks (a node cut off from the others misses them all):
// its default, 8, would stretch the time a cut-off node takes to see the
// others dead, and so the safe wait below, eightfold.
const AwarenessMaxMultiplier = 2

// DetectBound is the longest a node of a cluster of n takes, by these
// timings, to declare the others dead when it is cut off from them: a
// probe of each of them (round robin, slowed by awareness), then the
// suspicion timeout without any confirmation (nobody else can confirm to
// a cut-off node), which is its maximum. A node that lost quorum stops
// its HA groups within fencetime after that; so a taker that saw it dead
// and waits this long plus fencetime starts after it has stopped, even
// if the node is alive on the other side of a cut.
func DetectBound(n int) time.Duration {
	n = max(n, 2)
	probes := time.Duration(AwarenessMaxMultiplier) * (time.Duration(n-1)*ProbeInterval + ProbeTimeout)
	scale := math.Max(1, math.Log10(float64(n)))
	suspicion := time.Duration(float64(SuspicionMaxTimeoutMult*SuspicionMult) * scale * float64(ProbeInterval))
	return probes + suspicion
}
