package cluster

import (
	"encoding/json"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
)

// How statuses travel: gossip and direct sends out, messages and full
// state syncs (push/pull) in, each status kept when it is newer than
// what is known of its node.

// directLimit: in a cluster this small, a node also sends its own status
// to every member by TCP. Gossip alone transmits a message a few times by
// UDP (4 times on 2 or 3 nodes) and, under load, all of them can be lost:
// the status would then wait for the next push/pull, up to 15 s.
const directLimit = 16

// broadcast gossips a status: by UDP when it fits, else by TCP to all.
func (c *Cluster) broadcast(node string, msg []byte) {
	if c.ml == nil {
		return
	}
	if len(msg) > maxGossip || (node == c.cfg.Node && c.ml.NumMembers() <= directLimit) {
		c.sendAll(msg)
	}
	if len(msg) <= maxGossip {
		c.queue.QueueBroadcast(&broadcast{node: node, msg: msg})
	}
}

// sendAll sends msg to every other live member over TCP, without
// blocking the loop. The addresses come from the view, not from
// memberlist's node records, which it rewrites while it runs.
func (c *Cluster) sendAll(msg []byte) {
	for name := range c.view.members {
		if name == c.cfg.Node {
			continue
		}
		if n := c.member(name); n != nil {
			c.sendNode(n, msg)
		}
	}
}

// member is the node to send to member name, nil when it is not up. It
// is made from the view, not taken from memberlist's list: memberlist
// rewrites the nodes it lists when they come back, and a send on another
// goroutine must not read them.
func (c *Cluster) member(name string) *memberlist.Node {
	m := c.view.members[name]
	if m == nil || !c.view.up(name) {
		return nil
	}
	host, port, err := net.SplitHostPort(m.addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	p, err := strconv.ParseUint(port, 10, 16)
	if ip == nil || err != nil {
		return nil
	}
	return &memberlist.Node{Name: name, Addr: ip, Port: uint16(p)}
}

// sendNode sends msg to n over TCP, without blocking the loop.
func (c *Cluster) sendNode(n *memberlist.Node, msg []byte) {
	go func() {
		if err := c.ml.SendReliable(n, msg); err != nil {
			c.log.Debug("send", zap.String("node", n.Name), zap.Error(err))
		}
	}()
}

// localGap is the least time between two rebuilds of the push/pull
// state: it is read at each push/pull (every 15 s or more), while every
// status received changes it (a hundred nodes placing their groups: a
// hundred a second, each rebuild encoding every status).
const localGap = time.Second

// rebuildLocal prepares what LocalState hands memberlist.
func (c *Cluster) rebuildLocal() {
	pp := pushPull{Node: c.cfg.Node, Statuses: make([]nodeStatus, 0, len(c.view.statuses))}
	for _, s := range c.view.statuses {
		if s.Node == c.cfg.Node {
			s = c.self
		}
		pp.Statuses = append(pp.Statuses, s)
	}
	b, _ := json.Marshal(pp)
	c.local.Store(&b)
}

// onMessage handles a user message or broadcast from another node.
func (c *Cluster) onMessage(b []byte) {
	digest, seen := c.seen.digest(b)
	if seen {
		return // a copy of a status handled already
	}
	kind, body, err := decode(b)
	if err != nil {
		// Its copies are dropped unread: a deflate bomb costs one
		// inflation, not one per copy.
		c.seen.add(digest)
		c.log.Warn("malformed message", zap.Error(err))
		return
	}
	switch kind {
	case msgStatus:
		var s nodeStatus
		if err := json.Unmarshal(body, &s); err != nil || s.Node == "" {
			c.log.Warn("malformed status message", zap.Error(err))
			return
		}
		c.seen.add(digest)
		if !c.goodStatus(s) {
			return
		}
		if c.onStatus(s) {
			c.broadcast(s.Node, b) // spread it: memberlist only sends our own queue
		}
	case msgCommit:
		c.kickRenewal()
	default:
		c.log.Warn("unknown message kind", zap.Int("kind", int(kind)))
	}
}

// onStatus applies a node's status and reports whether it was news.
func (c *Cluster) onStatus(s nodeStatus) bool {
	if s.Node == c.cfg.Node {
		// Our own status from before a restart, with a later clock: step
		// over it so ours wins again. The same version is our current
		// status coming back to us (every receiver spreads a status it
		// had not seen): stepping over that would make a new status of
		// every echo, and each node would gossip its own without end.
		if s.Version > c.self.Version {
			c.self.Version = s.Version
			c.bump()
			c.publishSelf()
		}
		return false
	}
	if !c.applyStatus(s) {
		return false
	}
	c.changed()
	if m := c.view.members[s.Node]; s.Leaving && m != nil && m.state == api.NodeDead {
		// Its goodbye came after memberlist reported it gone.
		c.onMember(s.Node, false, m.addr, m.meta)
	}
	return true
}

// onPushPull merges another node's full state.
func (c *Cluster) onPushPull(b []byte) {
	var pp pushPull
	if err := json.Unmarshal(b, &pp); err != nil {
		c.log.Warn("malformed state from a member", zap.Error(err))
		return
	}
	for _, s := range pp.Statuses {
		if s.Node != "" && c.goodStatus(s) {
			c.onStatus(s)
		}
	}
}
