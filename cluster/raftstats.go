package cluster

import (
	"strconv"
	"strings"
	"time"
)

// RaftStats is what /metrics shows of this node's raft voter, from
// raft's own Stats.
type RaftStats struct {
	Voter bool   // false: this node does not vote, the rest is zero
	State string // "leader", "follower", "candidate" or "shutdown"
	Term  uint64
	// The newest entry of the log, the newest committed, the newest
	// applied to the state, and the newest a snapshot holds.
	LastLogIndex, CommitIndex, AppliedIndex, SnapshotIndex uint64
	Peers                                                  int // the other voters of its configuration
	// LastContact is how long ago the leader was last heard: 0 on the
	// leader, negative when never.
	LastContact time.Duration
}

// Raft returns this node's raft figures. It may be called from any
// goroutine: the voter is set before Start returns, and raft's Stats is
// safe for concurrent use.
func (c *Cluster) Raft() RaftStats {
	if c.rn == nil {
		return RaftStats{}
	}
	st := c.rn.Stats()
	num := func(k string) uint64 {
		v, _ := strconv.ParseUint(st[k], 10, 64)
		return v
	}
	r := RaftStats{Voter: true, State: strings.ToLower(st["state"]), Term: num("term"),
		LastLogIndex: num("last_log_index"), CommitIndex: num("commit_index"), AppliedIndex: num("applied_index"),
		SnapshotIndex: num("last_snapshot_index"), Peers: int(num("num_peers")), LastContact: -1}
	switch lc := st["last_contact"]; lc {
	case "never", "":
	case "0":
		r.LastContact = 0
	default:
		if d, err := time.ParseDuration(lc); err == nil {
			r.LastContact = d
		}
	}
	return r
}
