package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster/store"
)

// The watchers of clinit --watch: the state at the start, then each
// event the loop sees (members, group states, assignments, fencings,
// rule-outs, leases); a watcher that falls behind is dropped.

// watchBuffer is how far a watcher may fall behind before it is dropped:
// a stalled client must not hold the loop.
const watchBuffer = 1024

// ErrNoNode is Watch's answer for a node that is not in the cluster.
var ErrNoNode = errors.New("no such node")

// Watch streams the current state (each member's state, then each
// node's groups), then every change the loop sees, on this node's groups
// and on every other node's, until ctx ends or the cluster layer stops
// (then the channel is closed). A watcher that falls too far behind has
// its channel closed too. node, if not empty, must be a member (alive or
// not) or a voter the cltab names, else ErrNoNode: a watch of a node
// that is not there would wait in silence (the caller filters the events).
func (c *Cluster) Watch(ctx context.Context, node string) (<-chan api.Event, error) {
	ch := make(chan api.Event, watchBuffer)
	var unknown error
	if err := c.call(ctx, func() {
		if node != "" && !c.knownNode(node) {
			unknown = fmt.Errorf("%w: %s is not in this cluster (members: %s)", ErrNoNode, node, strings.Join(c.memberNames(), ", "))
			return
		}
		c.watchers[ch] = true
		c.watching.Store(int32(len(c.watchers)))
		h := c.hastatNow()
		for _, n := range h.Nodes {
			c.emitTo(ch, api.Event{Kind: api.EventMember, Time: time.Now().UTC(), Node: n.Node, NodeState: n.State})
		}
		for _, n := range h.Nodes {
			for _, g := range n.Groups {
				c.emitTo(ch, api.Event{Kind: api.EventState, Time: g.Since, Node: n.Node, Group: g.Group, Level: g.Level, State: g.State})
			}
		}
	}); err != nil {
		return nil, err
	}
	if unknown != nil {
		return nil, unknown
	}
	go func() {
		select {
		case <-ctx.Done():
			c.call(context.Background(), func() { c.dropWatcher(ch) })
		case <-c.done:
		}
	}()
	return ch, nil
}

func (c *Cluster) dropWatcher(ch chan api.Event) {
	if c.watchers[ch] {
		delete(c.watchers, ch)
		c.watching.Store(int32(len(c.watchers)))
		close(ch)
	}
}

// Emit adds an event of this node's to the watchers' streams (a
// respawn, a throttle: the engine's). It never blocks: with nobody
// watching it does nothing, and when the loop is that far behind the
// event is dropped.
func (c *Cluster) Emit(ev api.Event) {
	if c.watching.Load() == 0 {
		return
	}
	select {
	case c.notes <- ev:
	default:
	}
}

// noteBuffer is how many events from outside the loop (Emit, fencing)
// wait for it.
const noteBuffer = 256

func (c *Cluster) emit(ev api.Event) {
	for ch := range c.watchers {
		c.emitTo(ch, ev)
	}
}

func (c *Cluster) emitTo(ch chan api.Event, ev api.Event) {
	select {
	case ch <- ev:
	default:
		c.dropWatcher(ch)
	}
}

// applyStatus stores a newer status of a node and emits what changed in
// it, group by group.
func (c *Cluster) applyStatus(s nodeStatus) bool {
	old, had := c.view.statuses[s.Node]
	if !c.view.apply(s) {
		return false
	}
	if len(c.watchers) == 0 {
		return true
	}
	before := map[string]groupState{}
	if had {
		for _, g := range old.Groups {
			before[g.Group] = g
		}
	}
	for _, g := range s.Groups {
		if b, ok := before[g.Group]; ok && b.Level == g.Level && b.State == g.State {
			continue
		}
		c.emit(api.Event{Kind: api.EventState, Time: time.UnixMilli(g.Since).UTC(), Node: s.Node, Group: g.Group, Level: g.Level, State: g.State})
	}
	return true
}

// emitAssignments tells the watchers of every assignment that changed.
func (c *Cluster) emitAssignments(prev, st *store.State) {
	if len(c.watchers) == 0 {
		return
	}
	var groups []string
	for g, a := range st.Assign {
		if prev == nil || prev.Assign[g] != a {
			groups = append(groups, g)
		}
	}
	sort.Strings(groups)
	now := time.Now().UTC()
	for _, g := range groups {
		a := st.Assign[g]
		c.emit(api.Event{Kind: api.EventAssign, Time: now, Node: c.cfg.Node, Group: g, Assigned: a.Node, Epoch: a.Epoch, Stop: a.Stop, Why: a.Why})
	}
}

// emitCommitted tells the watchers of the decisions a new committed state
// holds beside the assignments: fencings and rule-outs, with their
// reasons.
func (c *Cluster) emitCommitted(prev, st *store.State) {
	if len(c.watchers) == 0 {
		return
	}
	now := time.Now().UTC()
	var nodes []string
	for n, f := range st.Fences {
		if prev == nil || prev.Fences[n] != f {
			nodes = append(nodes, n)
		}
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		c.emit(api.Event{Kind: api.EventFenced, Time: now, Node: n, Why: "its stomith command exited 0"})
	}
	var groups []string
	for g := range st.RuleOuts {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		var nodes []string
		for n, r := range st.RuleOuts[g] {
			if prev == nil || prev.RuleOuts[g][n] != r {
				nodes = append(nodes, n)
			}
		}
		sort.Strings(nodes)
		for _, n := range nodes {
			r := st.RuleOuts[g][n]
			ev := api.Event{Kind: api.EventRuledOut, Time: now, Node: n, Group: g, Why: r.Why}
			if r.Until > 0 {
				ev.Until = time.UnixMilli(r.Until).UTC()
			}
			c.emit(ev)
		}
	}
}
