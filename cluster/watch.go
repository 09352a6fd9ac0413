package cluster

import (
	"context"
	"time"

	"github.com/clinit/clinit/api"
)

// watchBuffer is how far a watcher may fall behind before it is dropped:
// a stalled client must not hold the loop.
const watchBuffer = 1024

// Watch streams the current state (each member's state, then each
// node's groups), then every change the loop sees, on this node's groups
// and on every other node's, until ctx ends or the cluster layer stops
// (then the channel is closed). A watcher that falls too far behind has
// its channel closed too.
func (c *Cluster) Watch(ctx context.Context) (<-chan api.Event, error) {
	ch := make(chan api.Event, watchBuffer)
	if err := c.call(ctx, func() {
		c.watchers[ch] = true
		h := c.hastatNow()
		for _, n := range h.Nodes {
			c.emitTo(ch, api.Event{Time: time.Now().UTC(), Node: n.Node, NodeState: n.State})
		}
		for _, n := range h.Nodes {
			for _, g := range n.Groups {
				c.emitTo(ch, api.Event{Time: g.Since, Node: n.Node, Group: g.Group, Level: g.Level, State: g.State})
			}
		}
	}); err != nil {
		return nil, err
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
		close(ch)
	}
}

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
		c.emit(api.Event{Time: time.UnixMilli(g.Since).UTC(), Node: s.Node, Group: g.Group, Level: g.Level, State: g.State})
	}
	return true
}
