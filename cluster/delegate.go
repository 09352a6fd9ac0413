package cluster

import (
	"encoding/json"

	"github.com/hashicorp/memberlist"
)

// delegate is memberlist's view of us. memberlist calls it with its own
// locks held, so every method returns at once: it copies what it was
// given and enqueues it for Cluster.run; it never calls memberlist back.
type delegate struct{ c *Cluster }

// NodeMeta is this node's raft port and whether it votes, fixed at start.
func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.c.meta) > limit {
		return nil
	}
	return d.c.meta
}

func (d *delegate) NotifyMsg(b []byte) {
	msg := append([]byte(nil), b...) // memberlist reuses b
	d.c.enqueue(func() { d.c.onMessage(msg) })
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte {
	if b := d.c.local.Load(); b != nil {
		return *b
	}
	return nil
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	b := append([]byte(nil), buf...)
	d.c.enqueue(func() { d.c.onPushPull(b) })
}

// Membership events. memberlist does not fill in Node.State for them, so
// NotifyLeave cannot tell a death from a departure: the loop does, from
// the node's last status (see nodeStatus.Leaving).
func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.member(n, true) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.member(n, true) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.member(n, false) }

func (d *delegate) member(n *memberlist.Node, alive bool) {
	name, addr := n.Name, n.Address()
	var meta nodeMeta
	if len(n.Meta) > 0 && json.Unmarshal(n.Meta, &meta) != nil {
		meta = nodeMeta{} // a member whose metadata does not parse has no raft port
	}
	d.c.enqueue(func() { d.c.onMember(name, alive, addr, meta) })
}
