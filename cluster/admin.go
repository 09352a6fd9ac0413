package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster/store"
)

// The operators' commands (clinit --move, --ban, --clear, --standby,
// --online, --maintenance, --cleanup, --forget): each is checked against
// what this node knows, committed through the log, and kept in the
// replicated state until cleared; the planner (plan.go) and the nodes
// (hanode.go) act on it. ErrRefused wraps a command that cannot be
// honoured, with the reason.

// Command runs one cluster command and returns what it did.
func (c *Cluster) Command(ctx context.Context, req api.ClusterRequest) (string, error) {
	var cmd store.Command
	var done string
	var refused error
	if err := c.call(ctx, func() { cmd, done, refused = c.clusterCommand(req) }); err != nil {
		return "", err
	}
	if refused != nil {
		return "", &refusal{refused.Error()}
	}
	r, err := c.propose(ctx, cmd)
	if err != nil {
		return "", err
	}
	if r.Err != nil {
		return "", &refusal{r.Err.Error()}
	}
	c.kickPlanner()
	// Every member renews now, for its grant to say what changed
	// (maintenance is the nodes' to honour); this node too.
	c.hintCommit(ctx, r.Version)
	return fmt.Sprintf("%s (committed at version %d)", done, r.Version), nil
}

// clusterCommand checks req on the loop and returns the command to
// propose and what it does, or why it is refused.
func (c *Cluster) clusterCommand(req api.ClusterRequest) (store.Command, string, error) {
	if !c.ha.on {
		return store.Command{}, "", errors.New("HA is off here: the cltab names no voters (:::nodes: or :::servers:)")
	}
	now := time.Now().UnixMilli()
	group := func() error {
		if req.Group == "" {
			return errors.New(req.Op + " needs a group")
		}
		if c.hactl.Group(req.Group) == nil {
			return fmt.Errorf("%s is not an HA group: the hactl does not list it", req.Group)
		}
		return nil
	}
	node := func() error {
		if req.Node == "" {
			return errors.New(req.Op + " needs a node")
		}
		if _, ok := c.view.members[req.Node]; !ok {
			return fmt.Errorf("%s is not a member of this cluster", req.Node)
		}
		return nil
	}
	both := func() error { return errors.Join(group(), node()) }
	switch req.Op {
	case api.OpMove:
		if err := both(); err != nil {
			return store.Command{}, "", err
		}
		if c.ha.plan.witness[req.Node] {
			return store.Command{}, "", fmt.Errorf("%s is a witness: it holds no group", req.Node)
		}
		return store.Command{Op: store.OpMove, Group: req.Group, Node: req.Node},
			fmt.Sprintf("%s: moved to %s; it stays there until clinit --clear %s", req.Group, req.Node, req.Group), nil
	case api.OpBan:
		if err := both(); err != nil {
			return store.Command{}, "", err
		}
		return store.Command{Op: store.OpBan, Group: req.Group, Node: req.Node, At: now, Why: "banned by an operator"},
			fmt.Sprintf("%s: banned from %s until clinit --clear %s", req.Group, req.Node, req.Group), nil
	case api.OpClear, api.OpCleanup:
		if err := group(); err != nil {
			return store.Command{}, "", err
		}
		on := ""
		if req.Node != "" {
			if err := node(); err != nil {
				return store.Command{}, "", err
			}
			on = " on " + req.Node
		}
		if req.Op == api.OpClear {
			return store.Command{Op: store.OpClearMoves, Group: req.Group, Node: req.Node},
				fmt.Sprintf("%s: its move and bans%s cleared", req.Group, on), nil
		}
		return store.Command{Op: store.OpClear, Group: req.Group, Node: req.Node},
			fmt.Sprintf("%s: its failures and rule-outs%s forgotten", req.Group, on), nil
	case api.OpStandby, api.OpOnline:
		if err := node(); err != nil {
			return store.Command{}, "", err
		}
		if req.Op == api.OpStandby {
			return store.Command{Op: store.OpStandby, Node: req.Node, On: true},
				fmt.Sprintf("%s: in standby; it keeps running and its HA groups move off", req.Node), nil
		}
		return store.Command{Op: store.OpStandby, Node: req.Node},
			fmt.Sprintf("%s: online; it may hold HA groups again", req.Node), nil
	case api.OpMaintenance:
		if req.On {
			return store.Command{Op: store.OpMaintenance, On: true}, "maintenance mode on: HA starts, stops and moves nothing", nil
		}
		return store.Command{Op: store.OpMaintenance}, "maintenance mode off", nil
	case api.OpForget:
		if err := node(); err != nil {
			return store.Command{}, "", err
		}
		if req.Node == c.cfg.Node || c.view.up(req.Node) {
			return store.Command{}, "", fmt.Errorf("%s is %s: only a dead node is forgotten (stop it first)", req.Node, c.view.members[req.Node].state)
		}
		return store.Command{Op: store.OpForget, Node: req.Node, At: now},
			fmt.Sprintf("%s: forgotten; its HA groups are free to move (clinit --online %s if it ever comes back)", req.Node, req.Node), nil
	}
	return store.Command{}, "", fmt.Errorf("unknown cluster command %q", req.Op)
}

// dropForgotten drops from the view the members the log says are gone for
// good and memberlist does not hold up.
func (c *Cluster) dropForgotten(forgotten map[string]bool) {
	for n := range forgotten {
		if _, ok := c.view.members[n]; ok && n != c.cfg.Node && !c.view.up(n) {
			delete(c.view.members, n)
			delete(c.view.statuses, n)
			c.flushes.Mark()
		}
	}
}
