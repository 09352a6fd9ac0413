package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
)

// Membership: memberlist started with our delegate and transport, and
// the members it reports, as the view records them.

// startMemberlist binds the transport, opens the raft voter, then
// creates memberlist: raft's port must be in the node's metadata from
// its first packet.
func (c *Cluster) startMemberlist() error {
	installMetrics()
	mc, err := c.cfg.memberlistConfig()
	if err != nil {
		return err
	}
	d := &delegate{c}
	mc.Delegate, mc.Events, mc.Alive = d, d, d
	mc.LogOutput = logWriter{c.log.Named("memberlist")}
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes: func() int {
			if m := c.mlRef.Load(); m != nil {
				return m.NumMembers()
			}
			return 1
		},
		RetransmitMult: mc.RetransmitMult,
	}
	tr, err := c.transport(mc)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := c.startRaft(mc, tr); err != nil {
		tr.Shutdown()
		return fmt.Errorf("cluster: %w", err)
	}
	mc.Transport = tr
	ml, err := memberlist.Create(mc)
	if err != nil {
		tr.Shutdown()
		return fmt.Errorf("cluster: %w", err)
	}
	c.ml = ml
	c.mlRef.Store(ml)
	c.log.Info("cluster member", zap.String("node", c.cfg.Node), zap.String("addr", c.Addr()), zap.Bool("encrypted", c.secure))
	if !c.secure {
		c.log.Warn("no key: gossip and raft are not encrypted (loopback or --insecure only)")
	}
	return nil
}

// Addr is the HOST:PORT others reach this node at ("" on a single node).
func (c *Cluster) Addr() string {
	if c.ml == nil {
		return ""
	}
	n := c.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// onMember handles a membership event: a node is there, or gone. A gone
// node whose last status said it was leaving has left; any other died.
func (c *Cluster) onMember(name string, alive bool, addr string, meta nodeMeta) {
	state := api.NodeAlive
	if !alive {
		state = api.NodeDead
		if s, ok := c.view.statuses[name]; ok && s.Leaving {
			state = api.NodeLeft
		}
	}
	if c.view.setState(name, state, addr, &meta, time.Now()) {
		c.flushes.Mark()
		c.refreshVoters()
		c.emit(api.Event{Kind: api.EventMember, Time: time.Now().UTC(), Node: name, NodeState: state})
		if alive && name != c.cfg.Node && c.ml != nil {
			// A member that joins (or comes back) learns every status by
			// its push/pull, but the others learn its own only when it
			// changes: re-announce ours, and it will do likewise.
			c.publishSelf()
		}
		c.log.Info("member", zap.String("node", name), zap.String("state", state), zap.String("addr", addr))
	}
}

// resync rebuilds the membership from memberlist after dropped events:
// a member it no longer lists is gone.
func (c *Cluster) resync() {
	listed := map[string]bool{}
	for _, n := range c.ml.Members() {
		listed[n.Name] = true
		var meta nodeMeta
		if len(n.Meta) > 0 && json.Unmarshal(n.Meta, &meta) != nil {
			meta = nodeMeta{}
		}
		c.onMember(n.Name, true, n.Address(), meta)
	}
	for name, m := range c.view.members {
		if !listed[name] && c.view.up(name) {
			c.onMember(name, false, m.addr, m.meta)
		}
	}
}

// knownNode reports whether name is a member this node has seen, or a
// voter of the cltab (one that has not joined yet).
func (c *Cluster) knownNode(name string) bool {
	if _, ok := c.view.members[name]; ok {
		return true
	}
	if _, ok := c.view.statuses[name]; ok {
		return true
	}
	return slices.Contains(c.voters.names, name)
}

// memberNames are the members this node has seen, sorted.
func (c *Cluster) memberNames() []string {
	var names []string
	for n := range c.view.members {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// UnknownNodes returns those of names that are not in the cluster (see
// Watch), and the members that are.
func (c *Cluster) UnknownNodes(ctx context.Context, names []string) (unknown, members []string, err error) {
	err = c.call(ctx, func() {
		for _, n := range names {
			if !c.knownNode(n) {
				unknown = append(unknown, n)
			}
		}
		members = c.memberNames()
	})
	return unknown, members, err
}
