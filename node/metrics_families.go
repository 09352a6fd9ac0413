package node

import (
	"runtime"
	"sort"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/internal/promtext"
)

// The clinit_* families of /metrics; each help says what is counted.
var (
	famBuild       = promtext.Family{Name: "clinit_build_info", Help: "Always 1: the version this daemon was built from, and the Go release that built it.", Type: promtext.Gauge, Labels: []string{"version", "goversion"}}
	famGroup       = promtext.Family{Name: "clinit_group_state", Help: "1 for each group of this node that was told a level: the level and the state it is in, as in clstat.", Type: promtext.Gauge, Labels: []string{"group", "level", "state"}}
	famRestarts    = promtext.Family{Name: "clinit_entry_restarts_total", Help: "Starts of a respawn entry after its process exited without being asked to; a level change, a reread or a stop is not a restart.", Type: promtext.Counter, Labels: []string{"group", "tag"}}
	famThrottled   = promtext.Family{Name: "clinit_entry_throttled", Help: "1 while a respawn entry rests after restarting too rapidly (respawnlimit restarts, each within respawnwindow of its start), else 0.", Type: promtext.Gauge, Labels: []string{"group", "tag"}}
	famFailed      = promtext.Family{Name: "clinit_group_failed", Help: "1 for each FAILED group of this node, with why it failed.", Type: promtext.Gauge, Labels: []string{"group", "why"}}
	famProcesses   = promtext.Family{Name: "clinit_processes", Help: "Entries of this node whose process is running.", Type: promtext.Gauge}
	famTransitions = promtext.Family{Name: "clinit_group_transitions_total", Help: "Changes of a group's level or state between two statuses this node published since the daemon started (changes between two publications count once).", Type: promtext.Counter}
	famMembers     = promtext.Family{Name: "clinit_members", Help: "Cluster members this node knows of, by memberlist's state (a single node counts itself alive).", Type: promtext.Gauge, Labels: []string{"state"}}
	famHA          = promtext.Family{Name: "clinit_ha_group_running", Help: "For each HA group of the hactl: 1 with the node it runs on, 0 with node \"-\" while it runs nowhere.", Type: promtext.Gauge, Labels: []string{"group", "node"}}
	famGossip      = promtext.Family{Name: "clinit_gossip_bytes_total", Help: "Bytes memberlist sent (udp, tcp) and received (udp) since the daemon started; memberlist does not count the TCP bytes it receives.", Type: promtext.Counter, Labels: []string{"direction", "proto"}}
	famLeader      = promtext.Family{Name: "clinit_ha_leader", Help: "1 for the raft leader that last renewed this node's lease, while the lease holds.", Type: promtext.Gauge, Labels: []string{"node"}}
	famLease       = promtext.Family{Name: "clinit_ha_lease_remaining_seconds", Help: "Seconds this node's lease still holds; only while it holds may the node run the HA groups assigned to it (0: no lease).", Type: promtext.Gauge}
	famQuorum      = promtext.Family{Name: "clinit_ha_quorum", Help: "1 while this node's lease holds: a raft leader with a quorum of the voters answered its renewal within the lease. 0 with HA off, no leader or no quorum.", Type: promtext.Gauge}
	famEpoch       = promtext.Family{Name: "clinit_ha_assignment_epoch", Help: "The committed assignment of each HA group: the node the raft log gives it to, and as value its epoch, which goes up at each new assignment.", Type: promtext.Gauge, Labels: []string{"group", "node"}}
	famFence       = promtext.Family{Name: "clinit_fencing_runs_total", Help: "Fencings this node ran as leader, by result: ok (stomith exited 0 and the fence was committed) or failed.", Type: promtext.Counter, Labels: []string{"result"}}
	famVoter       = promtext.Family{Name: "clinit_raft_voter", Help: "1 when this node is a raft voter (the cltab's nodes or servers name it), else 0.", Type: promtext.Gauge}
	famRaftState   = promtext.Family{Name: "clinit_raft_state", Help: "1 for the raft state this voter is in: leader, follower, candidate or shutdown.", Type: promtext.Gauge, Labels: []string{"state"}}
	famRaftTerm    = promtext.Family{Name: "clinit_raft_term", Help: "The raft term this voter is in.", Type: promtext.Gauge}
	famRaftIndex   = promtext.Family{Name: "clinit_raft_index", Help: "Raft log indexes of this voter: its last entry, the last committed, the last applied to its state, the last a snapshot holds.", Type: promtext.Gauge, Labels: []string{"which"}}
	famRaftPeers   = promtext.Family{Name: "clinit_raft_peers", Help: "The other voters of this voter's raft configuration.", Type: promtext.Gauge}
	famRaftContact = promtext.Family{Name: "clinit_raft_last_contact_seconds", Help: "Seconds since this voter last heard from the raft leader (0 on the leader); absent until it has.", Type: promtext.Gauge}
	famDropped     = promtext.Family{Name: "clinit_library_metrics_dropped_total", Help: "New go-metrics series of memberlist and raft not kept, past the cap of the sink (a label with too many values).", Type: promtext.Counter}
)

// writeMetrics writes the clinit_* families of the moment's view: nothing
// is counted twice, the engine and the cluster are the only record.
func writeMetrics(w *promtext.Writer, version string, v StatusView, cl *cluster.Cluster) {
	w.Write(famBuild, promtext.With(1, version, runtime.Version()))
	var groups, restarts, throttled, failed []promtext.Sample
	procs := 0
	for _, g := range v.Status.Groups {
		groups = append(groups, promtext.With(1, g.Group, g.Level, g.State))
		if g.State == api.StateFailed {
			failed = append(failed, promtext.With(1, g.Group, g.Why))
		}
		for _, e := range g.Entries {
			if e.Pid != 0 {
				procs++
			}
			if e.Mode == "respawn" {
				restarts = append(restarts, promtext.With(float64(e.Restarts), g.Group, e.Tag))
				throttled = append(throttled, promtext.With(b2f(e.Throttled), g.Group, e.Tag))
			}
		}
	}
	w.Write(famGroup, groups...)
	w.Write(famRestarts, restarts...)
	w.Write(famThrottled, throttled...)
	w.Write(famFailed, failed...)
	w.Write(famProcesses, promtext.One(float64(procs)))

	transitions, fenceOK, fenceFailed := cl.Counters()
	w.Write(famTransitions, promtext.One(float64(transitions)))

	members := map[string]int{api.NodeAlive: 0, api.NodeDead: 0, api.NodeLeft: 0}
	for _, n := range v.Hastat.Nodes {
		members[n.State]++
	}
	states := make([]string, 0, len(members))
	for s := range members {
		states = append(states, s)
	}
	sort.Strings(states)
	var mem []promtext.Sample
	for _, s := range states {
		mem = append(mem, promtext.With(float64(members[s]), s))
	}
	w.Write(famMembers, mem...)

	var ha []promtext.Sample
	for _, g := range v.Hastat.Groups {
		ha = append(ha, promtext.With(b2f(g.Node != "-"), g.Group, g.Node))
	}
	w.Write(famHA, ha...)
	var epochs []promtext.Sample
	for _, g := range v.Hastat.Groups {
		if g.Assigned != "" {
			epochs = append(epochs, promtext.With(float64(g.Epoch), g.Group, g.Assigned))
		}
	}
	w.Write(famEpoch, epochs...)
	if v.Hastat.Leader != "" {
		w.Write(famLeader, promtext.With(1, v.Hastat.Leader))
	}
	lease := max(0, time.Until(v.Hastat.LeaseUntil).Seconds())
	w.Write(famLease, promtext.One(lease))
	w.Write(famQuorum, promtext.One(b2f(lease > 0)))
	if g := v.Hastat.Gossip; g != nil {
		w.Write(famGossip,
			promtext.With(float64(g.UDPSentBytes), "sent", "udp"),
			promtext.With(float64(g.TCPSentBytes), "sent", "tcp"),
			promtext.With(float64(g.UDPReceivedBytes), "received", "udp"))
	}
	w.Write(famFence, promtext.With(float64(fenceOK), "ok"), promtext.With(float64(fenceFailed), "failed"))

	r := cl.Raft()
	w.Write(famVoter, promtext.One(b2f(r.Voter)))
	if r.Voter {
		w.Write(famRaftState, promtext.With(1, r.State))
		w.Write(famRaftTerm, promtext.One(float64(r.Term)))
		w.Write(famRaftIndex, promtext.With(float64(r.LastLogIndex), "last"), promtext.With(float64(r.CommitIndex), "commit"),
			promtext.With(float64(r.AppliedIndex), "applied"), promtext.With(float64(r.SnapshotIndex), "snapshot"))
		w.Write(famRaftPeers, promtext.One(float64(r.Peers)))
		if r.LastContact >= 0 {
			w.Write(famRaftContact, promtext.One(r.LastContact.Seconds()))
		}
	}
	w.Write(famDropped, promtext.One(float64(cluster.LibraryMetrics().Dropped())))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
