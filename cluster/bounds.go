package cluster

// AwarenessMaxMultiplier bounds how far memberlist slows its probes on a
// node that misses acks (a node cut off from the others misses them all):
// its default, 8, would stretch eightfold the time a member takes to
// see a cut-off one dead.
const AwarenessMaxMultiplier = 2
