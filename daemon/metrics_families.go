package daemon

import (
	"sort"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/internal/promtext"
)

// The clinit_* families of /metrics.
var (
	famGroup       = promtext.Family{Name: "clinit_group_state", Help: "1 for the level and state each told group of this node is in.", Type: promtext.Gauge, Labels: []string{"group", "level", "state"}}
	famRestarts    = promtext.Family{Name: "clinit_entry_restarts_total", Help: "Restarts of each respawn entry.", Type: promtext.Counter, Labels: []string{"group", "tag"}}
	famThrottled   = promtext.Family{Name: "clinit_entry_throttled", Help: "1 while an entry rests after restarting too rapidly.", Type: promtext.Gauge, Labels: []string{"group", "tag"}}
	famFailed      = promtext.Family{Name: "clinit_group_failed", Help: "1 for each FAILED group of this node, with why.", Type: promtext.Gauge, Labels: []string{"group", "why"}}
	famProcesses   = promtext.Family{Name: "clinit_processes", Help: "Entries of this node with a running process.", Type: promtext.Gauge}
	famTransitions = promtext.Family{Name: "clinit_group_transitions_total", Help: "Changes of level or state of this node's groups.", Type: promtext.Counter}
	famMembers     = promtext.Family{Name: "clinit_members", Help: "Cluster members by state, as this node sees them.", Type: promtext.Gauge, Labels: []string{"state"}}
	famHA          = promtext.Family{Name: "clinit_ha_group_running", Help: "1 when an HA group runs on some node, by where.", Type: promtext.Gauge, Labels: []string{"group", "node"}}
	famGossip      = promtext.Family{Name: "clinit_gossip_bytes_total", Help: "Bytes memberlist sent and received.", Type: promtext.Counter, Labels: []string{"direction", "proto"}}
	famLeader      = promtext.Family{Name: "clinit_ha_leader", Help: "1 for the raft leader that last renewed this node's lease.", Type: promtext.Gauge, Labels: []string{"node"}}
	famLease       = promtext.Family{Name: "clinit_ha_lease_remaining_seconds", Help: "How long this node's lease still holds (0: none).", Type: promtext.Gauge}
	famEpoch       = promtext.Family{Name: "clinit_ha_assignment_epoch", Help: "The committed assignment of each HA group: its node and epoch.", Type: promtext.Gauge, Labels: []string{"group", "node"}}
	famFence       = promtext.Family{Name: "clinit_fencing_runs_total", Help: "Runs of the stomith command, by result.", Type: promtext.Counter, Labels: []string{"result"}}
)

// writeMetrics writes the clinit_* families of the moment's view: nothing
// is counted twice, the engine and the cluster are the only record.
func writeMetrics(w *promtext.Writer, v StatusView, cl *cluster.Cluster) {
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
			restarts = append(restarts, promtext.With(float64(e.Restarts), g.Group, e.Tag))
			throttled = append(throttled, promtext.With(b2f(e.Throttled), g.Group, e.Tag))
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
	w.Write(famLease, promtext.One(max(0, time.Until(v.Hastat.LeaseUntil).Seconds())))
	if g := v.Hastat.Gossip; g != nil {
		w.Write(famGossip,
			promtext.With(float64(g.UDPSentBytes), "sent", "udp"),
			promtext.With(float64(g.TCPSentBytes), "sent", "tcp"),
			promtext.With(float64(g.UDPReceivedBytes), "received", "udp"))
	}
	w.Write(famFence, promtext.With(float64(fenceOK), "ok"), promtext.With(float64(fenceFailed), "failed"))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
