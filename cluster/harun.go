package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// haState is the HA part of the loop's state. Only Cluster.run touches
// it.
type haState struct {
	cfg      haConfig
	mem      *haMemory
	why      map[string]string
	timer    *time.Timer
	dirty    bool            // decide again
	handoff  bool            // shutting down: give every HA group up
	fencing  map[string]bool // fences running
	fenceTry map[string]time.Duration
}

func newHAState(t *cltab.Tab) *haState {
	tm := time.NewTimer(time.Hour)
	tm.Stop()
	return &haState{cfg: haConfigOf(t), mem: newHAMemory(), why: map[string]string{}, timer: tm,
		fencing: map[string]bool{}, fenceTry: map[string]time.Duration{}}
}

// SetTab hands the cluster a new cltab (its HA settings).
func (c *Cluster) SetTab(ctx context.Context, t *cltab.Tab) error {
	return c.call(ctx, func() {
		c.ha.cfg = haConfigOf(t)
		c.cfg.Tab = t
		c.ha.dirty = true
	})
}

// Handoff gives up every HA group this node runs (moves them to stop) and
// returns once they have stopped or ctx ends; the others take them over
// without waiting for failure detection. The node is marked leaving, so
// nobody picks it again.
func (c *Cluster) Handoff(ctx context.Context) {
	if err := c.call(ctx, func() {
		c.ha.handoff = true
		c.self.Leaving = true
		c.bump()
		c.broadcast(c.self.Node, encode(msgStatus, c.self))
		c.ha.dirty = true
	}); err != nil {
		return
	}
	for {
		var held []string
		if err := c.call(ctx, func() { held = c.heldHA() }); err != nil || len(held) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// heldHA lists the HA groups this node still holds.
func (c *Cluster) heldHA() []string {
	var held []string
	for _, h := range c.hactl.Groups {
		if _, ok := holds(c.self, h.Group); ok {
			held = append(held, h.Group)
		}
	}
	return held
}

// decideHA runs the HA rules and carries out what they ask.
func (c *Cluster) decideHA() {
	c.ha.dirty = false
	if c.cfg.Tell == nil || len(c.hactl.Groups) == 0 {
		return
	}
	if c.ha.handoff {
		for _, g := range c.heldHA() {
			c.haTell(haAction{Group: g, Level: LevelStop, Why: "handing over: this node is shutting down"})
		}
		return
	}
	in := haInput{self: c.cfg.Node, now: time.Now(), cfg: c.ha.cfg, hactl: c.hactl.Groups, members: map[string]haMember{}}
	learning := false
	for name, m := range c.view.members {
		s, ok := c.view.statuses[name]
		in.members[name] = haMember{state: m.state, since: m.changed, status: s, hasStatus: ok}
		if m.state == api.NodeAlive && !ok {
			learning = true
		}
	}
	before := len(c.ha.mem.bad)
	d := decide(in, c.ha.mem)
	c.ha.why = d.why
	for _, a := range d.actions {
		switch {
		case a.Fence != "":
			c.fence(a.Fence, in.members[a.Fence].since)
		case learning && a.Level != LevelStop:
			// A member's status is not known yet: it may hold the group.
			delete(c.ha.mem.pending, a.Group)
			c.ha.why[a.Group] = "learning the cluster"
			c.ha.dirty = true
		default:
			c.haTell(a)
		}
	}
	if len(c.ha.mem.bad) != before || c.publishBad() {
		c.bump()
		c.broadcast(c.self.Node, encode(msgStatus, c.self))
	}
	if !d.wake.IsZero() {
		c.ha.timer.Reset(max(time.Until(d.wake), time.Millisecond))
	}
	c.dirtyView = true
}

// publishBad copies the groups this node ruled itself out for into its
// status, and reports whether that changed it.
func (c *Cluster) publishBad() bool {
	bad := map[string]int64{}
	for g, until := range c.ha.mem.bad {
		bad[g] = until.UnixMilli()
	}
	if len(bad) == 0 {
		bad = nil
	}
	if fmt.Sprint(bad) == fmt.Sprint(c.self.Bad) {
		return false
	}
	c.self.Bad = bad
	return true
}

// haTell tells the engine, on a goroutine of its own: the engine may be
// busy, and the loop must not wait for it.
func (c *Cluster) haTell(a haAction) {
	c.ha.mem.pending[a.Group] = a.Level
	c.log.Info("HA", zap.String("group", a.Group), zap.String("level", a.Level), zap.String("why", a.Why))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := c.cfg.Tell(ctx, a.Group, a.Level)
		if err == nil {
			return
		}
		c.enqueue(func() {
			c.log.Error("HA tell failed", zap.String("group", a.Group), zap.String("level", a.Level), zap.Error(err))
			if c.ha.mem.pending[a.Group] == a.Level {
				delete(c.ha.mem.pending, a.Group)
			}
			c.ha.timer.Reset(time.Second) // try again
		})
	}()
}

// fence runs the stomith command for a dead node, retried with backoff
// until it succeeds; the node's groups wait for it.
func (c *Cluster) fence(node string, death time.Time) {
	if c.ha.fencing[node] {
		return
	}
	cmd, _ := c.cfg.Tab.Setting("stomith")
	c.ha.fencing[node] = true
	c.log.Warn("fencing a dead node", zap.String("node", node), zap.String("command", cmd))
	go func() {
		out, err := exec.Command("/bin/sh", "-c", cmd, "clinit-stomith", node).CombinedOutput()
		c.enqueue(func() {
			delete(c.ha.fencing, node)
			if err == nil {
				c.log.Info("fenced", zap.String("node", node))
				c.ha.mem.fenced[node] = death
				delete(c.ha.fenceTry, node)
				c.ha.dirty = true
				return
			}
			wait := min(max(2*c.ha.fenceTry[node], time.Second), 30*time.Second)
			c.ha.fenceTry[node] = wait
			c.log.Error("fencing failed; retrying", zap.String("node", node), zap.Error(err),
				zap.String("output", strings.TrimSpace(string(out))), zap.Duration("retry", wait))
			c.ha.timer.Reset(wait)
		})
	}()
}
