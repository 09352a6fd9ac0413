package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

// This node's link to consensus: its raft voter (when it votes) and the
// clients to the leader, proposals from any node, and the committed
// state as it reaches this node, applied by the loop.

// startRaft opens this node's raft voter, when it is one, and the
// clients every node uses to reach the leader; before memberlist
// starts, for the raft port to be in the node's metadata from its first
// packet.
func (c *Cluster) startRaft(mc *memberlist.Config, tr memberlist.Transport) error {
	if c.voters.expect == 0 {
		return nil
	}
	if c.cfg.Transport != nil && c.cfg.RaftBind == "" {
		return nil // an in-memory test network: no raft
	}
	d, err := raftnode.NewDialer(c.cfg.Key)
	if err != nil {
		return err
	}
	c.rc = raftnode.NewClient(d, c.voterAddrs)
	c.leaseClient = raftnode.NewClient(d, c.voterAddrs)
	meta := nodeMeta{}
	if c.voters.votes(c.cfg.Node) {
		ip, port, err := tr.FinalAdvertiseAddr(mc.AdvertiseAddr, mc.AdvertisePort)
		if err != nil {
			return err
		}
		bind, adv, err := raftAddrs(c.cfg, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		// The raft port carries the cluster's decisions: without a key it
		// listens on loopback only, as memberlist does (or --insecure).
		host, p, err := net.SplitHostPort(bind)
		if err != nil {
			return fmt.Errorf("raft bind %s: %w", bind, err)
		}
		bip, err := bindIP(host)
		if err != nil {
			return fmt.Errorf("raft bind %s: %w", bind, err)
		}
		if c.cfg.Key == nil && !c.cfg.Insecure && !bip.IsLoopback() {
			return fmt.Errorf("raft bind %s is not a loopback address and no --keyfile is given: anyone who reaches the port could vote; give a key (clinit --keygen) or --insecure", bind)
		}
		bind = net.JoinHostPort(bip.String(), p)
		if c.rn, err = raftnode.Open(raftnode.Config{Node: c.cfg.Node, Dir: filepath.Join(c.cfg.StateDir, "raft"), Bind: bind, Advertise: adv,
			Key: c.cfg.Key, Log: c.cfg.Log, Lease: c.ha.plan.lease, Resolve: c.resolveVoter,
			OnSilent: c.probeSilent, Fencing: c.fence.isRunning}); err != nil {
			return err
		}
		c.bootstrapped = c.rn.Bootstrapped()
		meta = nodeMeta{Raft: c.rn.Addr(), Voter: true}
		c.log.Info("raft voter", zap.String("addr", c.rn.Addr()), zap.Bool("has state", c.bootstrapped))
	}
	meta.Build = c.cfg.Build
	c.meta, _ = json.Marshal(meta)
	return nil
}

// propose commits a command through the leader, from any node.
func (c *Cluster) propose(ctx context.Context, cmd store.Command) (store.Result, error) {
	if c.rn != nil {
		return c.rn.Propose(ctx, cmd)
	}
	if c.rc == nil {
		return store.Result{}, errors.New("no consensus: the cltab names no voters (:::nodes: or :::servers:)")
	}
	return c.rc.Propose(ctx, cmd)
}

// proposeAll commits commands through the leader in one round trip,
// from any node; each result's Err is a refusal or a failure to commit.
func (c *Cluster) proposeAll(ctx context.Context, cmds []store.Command) ([]store.Result, error) {
	if c.rn != nil {
		return c.rn.ProposeFrom(ctx, cmds)
	}
	if c.rc == nil {
		return nil, errors.New("no consensus: the cltab names no voters (:::nodes: or :::servers:)")
	}
	return c.rc.ProposeAll(ctx, cmds)
}

// followCommits hands every change of the state applied by this voter
// to the loop.
func (c *Cluster) followCommits() {
	for {
		st, changed := c.rn.State()
		c.call(context.Background(), func() { c.onCommitted(st) })
		select {
		case <-changed:
		case <-c.stop:
			return
		}
		// A burst of commits (a thousand groups placed) is taken as
		// one state, not copied once per commit.
		select {
		case <-time.After(commitGap):
		case <-c.stop:
			return
		}
	}
}

// commitGap merges the commits of a burst.
const commitGap = 10 * time.Millisecond

// fetchState reads the committed state from the leader, one read at a
// time, for a node that does not vote.
func (c *Cluster) fetchState() {
	if c.rc == nil || c.fetching {
		return
	}
	c.fetching = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := c.rc.State(ctx)
		c.enqueue(func() {
			c.fetching = false
			if err != nil {
				c.log.Warn("reading the committed state from the leader", zap.Error(err))
				return
			}
			c.onCommitted(st)
		})
	}()
}

// onCommitted takes a newer committed state: the replicated files are
// written where they differ, and the HA rules run again.
func (c *Cluster) onCommitted(st *store.State) {
	if c.committed != nil && st.Index <= c.committed.Index {
		return
	}
	prev := c.committed
	c.committed = st
	c.emitAssignments(prev, st)
	c.emitCommitted(prev, st)
	for _, r := range c.files {
		f, ok := st.Files[r.Kind]
		if !ok || f.Version <= r.version {
			// Not newer: an older state can arrive after this node's own
			// commit was recorded (proposeFile), and must not undo it.
			continue
		}
		c.writeCommitted(r, f)
	}
	c.flushes.Mark()
}
