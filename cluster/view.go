package cluster

import (
	"slices"
	"sort"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// nodeStatus is what a node gossips about itself: its groups, its load,
// and a version that only grows, also across restarts (it starts from the
// clock), so that the newest status of a node wins everywhere.
type nodeStatus struct {
	Node    string       `json:"n"`
	Version uint64       `json:"v"`
	CPUs    int          `json:"c"`
	Load    float64      `json:"l"`
	Groups  []groupState `json:"g,omitempty"`
	// Leaving is the last status of a node shutting down gracefully: when
	// memberlist then reports it gone, it left; otherwise it died.
	Leaving bool `json:"x,omitempty"`
	// Bad holds the HA groups this node has ruled itself out for, until
	// a time (unix milliseconds): a failed test or level (SPEC 7).
	Bad map[string]int64 `json:"b,omitempty"`
}

// groupState is one clstat line with the time the state was entered.
type groupState struct {
	Group string `json:"g"`
	Level string `json:"l"`
	State string `json:"s"`
	Since int64  `json:"t,omitempty"` // unix milliseconds
	// Throttled: a respawn entry of the group restarts too rapidly.
	Throttled bool   `json:"r,omitempty"`
	Why       string `json:"y,omitempty"` // why it is FAILED
}

// running reports whether the group is held at a level that is not stop.
func (g groupState) running() bool { return g.Level != cltab.LevelStop }

// member is one node as memberlist reports it.
type member struct {
	state   string // api.NodeAlive, ...
	addr    string // HOST:PORT of its memberlist, to reconnect to
	meta    nodeMeta
	changed time.Time
}

// view is the cluster as this node knows it. Only Cluster.run touches it.
type view struct {
	self     string
	members  map[string]*member
	statuses map[string]nodeStatus
}

func newView(self string) *view {
	return &view{
		self:     self,
		members:  map[string]*member{self: {state: api.NodeAlive}},
		statuses: map[string]nodeStatus{},
	}
}

// apply stores s if it is newer than what is known of its node, and
// reports whether it was.
func (v *view) apply(s nodeStatus) bool {
	if old, ok := v.statuses[s.Node]; ok && old.Version >= s.Version {
		return false
	}
	v.statuses[s.Node] = s
	return true
}

// setState records a membership change and reports whether it is one
// (a new raft port in its metadata is one).
func (v *view) setState(node, state, addr string, meta *nodeMeta, now time.Time) bool {
	m := v.members[node]
	if m == nil {
		m = &member{}
		v.members[node] = m
	}
	if addr != "" {
		m.addr = addr
	}
	metaChanged := false
	if meta != nil && *meta != m.meta {
		m.meta, metaChanged = *meta, true
	}
	if m.state == state {
		return metaChanged
	}
	m.state, m.changed = state, now
	return true
}

// up reports whether node counts as running what it says it runs: a
// suspect node may be alive; a dead or departed one runs nothing here.
func (v *view) up(node string) bool {
	m := v.members[node]
	return m != nil && (m.state == api.NodeAlive || m.state == api.NodeSuspect)
}

// placed is one node running an HA group.
type placed struct {
	node string
	gs   groupState
}

// placedSet is where each HA group runs: the first up member, in name
// order, and the others (rare: a group runs on one node at most, but
// for the instants of a move seen from afar).
type placedSet struct {
	first map[string]placed
	more  map[string][]placed
}

// on returns the up members running group g, in name order.
func (p placedSet) on(g string) []placed {
	f, ok := p.first[g]
	if !ok {
		return nil
	}
	return append([]placed{f}, p.more[g]...)
}

// placements lists the members in name order and where each HA group
// runs: one pass over the statuses, not one per HA group (1,000 groups
// on 100 nodes).
func (v *view) placements() (names []string, running placedSet) {
	names = make([]string, 0, len(v.members))
	n := 0
	for name := range v.members {
		names = append(names, name)
		n += len(v.statuses[name].Groups)
	}
	sort.Strings(names)
	running = placedSet{first: make(map[string]placed, n), more: map[string][]placed{}}
	for _, name := range names {
		if !v.up(name) {
			continue
		}
		for _, gs := range v.statuses[name].Groups {
			if !gs.running() {
				continue
			}
			if _, ok := running.first[gs.Group]; ok {
				running.more[gs.Group] = append(running.more[gs.Group], placed{name, gs})
			} else {
				running.first[gs.Group] = placed{name, gs}
			}
		}
	}
	return names, running
}

// hastat collates the view for the HA groups of h (SPEC 6).
func (v *view) hastat(h *cltab.Hactl, why map[string]string) api.Hastat {
	st := api.Hastat{Node: v.self, Groups: []api.HAGroupStatus{}, Nodes: []api.NodeStatus{}}
	names, running := v.placements()
	if h != nil {
		for _, g := range h.Groups {
			found := false
			for _, o := range running.on(g.Group) {
				st.Groups = append(st.Groups, api.HAGroupStatus{
					Group: g.Group, Level: o.gs.Level, State: o.gs.State, Node: o.node,
					Since: time.UnixMilli(o.gs.Since).UTC(), Why: o.gs.Why,
				})
				found = true
			}
			if !found {
				st.Groups = append(st.Groups, api.HAGroupStatus{Group: g.Group, Level: g.Level, State: "-", Node: "-", Why: why[g.Group]})
			}
		}
	}
	for _, n := range names {
		s := v.statuses[n]
		ns := api.NodeStatus{Node: n, State: v.members[n].state, CPUs: s.CPUs, Load: s.Load, Version: s.Version, Groups: []api.GroupStatus{}}
		for _, g := range s.Groups {
			ns.Groups = append(ns.Groups, api.GroupStatus{Group: g.Group, Level: g.Level, State: g.State, Since: time.UnixMilli(g.Since).UTC(), Why: g.Why})
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st
}

// hastatText appends to b the text of hastat (api.Hastat.Text of
// hastat(h, ...)) without building the Hastat: what the file holds, its
// lines only.
func (v *view) hastatText(b []byte, h *cltab.Hactl) []byte {
	names, running := v.placements()
	if h != nil {
		for _, g := range h.Groups {
			f, ok := running.first[g.Group]
			if !ok {
				b = api.AppendHastatGroup(b, g.Group, g.Level, "-", "-")
				continue
			}
			b = api.AppendHastatGroup(b, g.Group, f.gs.Level, f.gs.State, f.node)
			for _, o := range running.more[g.Group] {
				b = api.AppendHastatGroup(b, g.Group, o.gs.Level, o.gs.State, o.node)
			}
		}
	}
	for _, n := range names {
		b = api.AppendHastatNode(b, n, v.members[n].state, v.statuses[n].Load)
	}
	return b
}

// stoppedKept is how long a group stopped here stays in this node's
// status: long enough for every member (and --watch) to see it stop,
// then it is left out. A node that once ran hundreds of groups does not
// gossip them all, at stop, for ever.
const stoppedKept = time.Minute

// groupsOf converts the engine's status to what is gossiped: every group
// but those stopped (stop DONE) for more than stoppedKept at now. A group
// left out is, to the HA rules, as a group at stop: not held here.
func groupsOf(st api.Status, now time.Time) []groupState {
	gs := make([]groupState, 0, len(st.Groups))
	for _, g := range st.Groups {
		if g.Level == cltab.LevelStop && g.State == api.StateDone && now.Sub(g.Since) > stoppedKept {
			continue
		}
		throttled := false
		for _, e := range g.Entries {
			throttled = throttled || e.Throttled
		}
		gs = append(gs, groupState{Group: g.Group, Level: g.Level, State: g.State, Since: g.Since.UnixMilli(), Throttled: throttled, Why: g.Why})
	}
	return gs
}

func sameGroups(a, b []groupState) bool { return slices.Equal(a, b) }
