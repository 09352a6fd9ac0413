package cluster

import (
	"time"

	"github.com/clinit/clinit/api"
)

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
