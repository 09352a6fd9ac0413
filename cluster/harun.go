package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
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
	revivals revivals
}

// revivalWait is how long a member that came back has to renew its
// status by gossip before this node fetches it from the member.
const revivalWait = time.Second

// revivals follows the members that come back from the dead (a healed
// partition, a restart). Their status here is the one from before, and
// what they sent meanwhile was lost, as was what this node sent them;
// memberlist's push/pull may be many seconds away. So a node that sees
// members come back re-announces its own status, and counts a revived
// member's status as unknown (it holds nothing and blocks every claim
// here, as a missing one) until a newer version of it arrives, or until
// its state was fetched from it: that is asked for when revivalWait
// passes without a newer version (the member may not have seen anyone
// come back, and has nothing to re-announce), and again after each
// revivalWait until it succeeds.
type revivals struct {
	states  map[string]string  // each member's state when last seen
	revived map[string]revival // members back, status not renewed yet
}

type revival struct {
	version uint64    // of its status when it came back
	until   time.Time // the end of the wait
}

func newRevivals() revivals {
	return revivals{states: map[string]string{}, revived: map[string]revival{}}
}

// track takes the current membership and statuses. It reports whether a
// member came back since the last call, the members whose state is to be
// fetched, and when the first wait ends.
func (r revivals) track(self string, members map[string]*member, statuses map[string]nodeStatus, now time.Time, wait time.Duration) (back bool, pull []string, wake time.Time) {
	for name, m := range members {
		prev, known := r.states[name]
		r.states[name] = m.state
		up := m.state == api.NodeAlive || m.state == api.NodeSuspect
		rv, revived := r.revived[name]
		switch {
		case name == self:
		case !up:
			delete(r.revived, name)
		case known && (prev == api.NodeDead || prev == api.NodeLeft):
			r.revived[name] = revival{version: statuses[name].Version, until: now.Add(wait)}
			back = true
		case revived && statuses[name].Version > rv.version:
			delete(r.revived, name)
		case revived && !now.Before(rv.until):
			r.revived[name] = revival{version: rv.version, until: now.Add(wait)}
			pull = append(pull, name)
		}
	}
	sort.Strings(pull)
	for _, rv := range r.revived {
		if wake.IsZero() || rv.until.Before(wake) {
			wake = rv.until
		}
	}
	return back, pull, wake
}

// pulled records that a member's state was fetched from it.
func (r revivals) pulled(name string) { delete(r.revived, name) }

// unknown reports whether a member's status is not to be trusted yet.
func (r revivals) unknown(name string) bool {
	_, ok := r.revived[name]
	return ok
}

func newHAState(t *cltab.Tab) *haState {
	tm := time.NewTimer(time.Hour)
	tm.Stop()
	return &haState{cfg: haConfigOf(t), mem: newHAMemory(), why: map[string]string{}, timer: tm,
		fencing: map[string]bool{}, fenceTry: map[string]time.Duration{}, revivals: newRevivals()}
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
		c.publishSelfNow()
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

// heldHAby reports whether a member's last status holds an HA group.
func (c *Cluster) heldHAby(name string) bool {
	s, ok := c.view.statuses[name]
	if !ok {
		return false
	}
	for _, h := range c.hactl.Groups {
		if _, held := holds(s, h.Group); held {
			return true
		}
	}
	return false
}

// decideHA runs the HA rules and carries out what they ask.
func (c *Cluster) decideHA() {
	c.ha.dirty = false
	now := time.Now()
	back, pull, revivalWake := c.ha.revivals.track(c.cfg.Node, c.view.members, c.view.statuses, now, revivalWait)
	if back {
		// What the members that came back know of this node is old too.
		c.bump()
		c.publishSelf()
	}
	for _, name := range pull {
		c.pullState(name)
	}
	if c.cfg.Tell == nil || (len(c.hactl.Groups) == 0 && len(c.ha.mem.known) == 0) {
		return
	}
	if c.ha.handoff {
		for _, g := range c.heldHA() {
			c.haTell(haAction{Group: g, Level: LevelStop, Why: "handing over: this node is shutting down"})
		}
		return
	}
	in := haInput{self: c.cfg.Node, now: now, cfg: c.ha.cfg, hactl: c.hactl.Groups, members: map[string]haMember{}}
	in.cfg.detectMax = DetectBound(max(len(c.view.members), c.ha.cfg.nodes))
	in.cfg.claimDelay = c.delay.atLeast(c.ha.cfg.claimDelay, now)
	in.cfg.planHold = c.delay.atLeast(c.ha.cfg.planHold, now)
	for name, m := range c.view.members {
		s, ok := c.view.statuses[name]
		hm := haMember{state: m.state, since: m.changed, status: s, hasStatus: ok && !c.ha.revivals.unknown(name)}
		if m.state == api.NodeDead && c.tr != nil && m.addr != "" {
			hm.heard = c.tr.heard(m.addr)
		}
		in.members[name] = hm
	}
	d := decide(in, c.ha.mem)
	c.ha.why = d.why
	told := false
	for _, a := range d.actions {
		if a.Fence != "" {
			c.fence(a.Fence, in.members[a.Fence].since)
		} else if a.Probe != "" {
			c.probeDead(a.Probe, in.members[a.Probe].silentSince())
		} else {
			c.haTell(a)
			told = true
		}
	}
	// A tell changes the claims in the status the others get.
	if c.publishBad() || told {
		c.bump()
		c.publishSelf()
	}
	if !revivalWake.IsZero() && (d.wake.IsZero() || revivalWake.Before(d.wake)) {
		d.wake = revivalWake
	}
	if !d.wake.IsZero() {
		c.ha.timer.Reset(max(time.Until(d.wake), time.Millisecond))
	}
	c.dirtyView = true
}

// pullState fetches a member's state, and gives it this node's, by a
// memberlist push/pull with it; on a goroutine of its own, since the loop
// must not wait for the network. A failure is tried again when the next
// revivalWait ends.
func (c *Cluster) pullState(name string) {
	m := c.view.members[name]
	if c.ml == nil || m == nil || m.addr == "" {
		return
	}
	addr := m.addr
	go func() {
		if _, err := c.ml.Join([]string{addr}); err != nil {
			c.log.Debug("fetching the state of a member back from the dead", zap.String("node", name), zap.Error(err))
			return
		}
		// The merge of its state was queued before this.
		c.call(context.Background(), func() {
			c.ha.revivals.pulled(name)
			c.ha.dirty = true
		})
	}()
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

// gossiped is this node's status as the others get it: the engine's
// groups, and the HA claims told to the engine that its status does not
// show yet, each as its group at the level claimed, STARTING. Under
// load an engine takes seconds to start a group and report it (the
// 30-node bench: 5 to 15 s while 30 daemons start 3,000 processes on 2
// CPUs); a claim the others learn of only then is no claim for them,
// and the next candidates claim too when their delays end. With the
// claim in the status, they learn of it one gossip after the decision.
// The loop's own view keeps the engine's groups: its decisions follow
// what runs, with the claims in flight in haMemory.pending.
func (c *Cluster) gossiped() nodeStatus {
	s := c.self
	var claims []groupState
	now := time.Now().UnixMilli()
	for g, level := range c.ha.mem.pending {
		if level == LevelStop {
			continue
		}
		if _, held := holds(s, g); held {
			continue
		}
		claims = append(claims, groupState{Group: g, Level: level, State: api.StateStarting, Since: now})
	}
	if len(claims) == 0 {
		return s
	}
	groups := make([]groupState, 0, len(s.Groups)+len(claims))
	for _, gs := range s.Groups {
		if _, claimed := c.ha.mem.pending[gs.Group]; !claimed || c.ha.mem.pending[gs.Group] == LevelStop || gs.held() {
			groups = append(groups, gs)
		}
	}
	groups = append(groups, claims...)
	slices.SortFunc(groups, func(a, b groupState) int { return strings.Compare(a.Group, b.Group) })
	s.Groups = groups
	return s
}

// haTell tells the engine, on a goroutine of its own: the engine may be
// busy, and the loop must not wait for it. A claim changes the status
// the others get (gossiped): the caller bumps and publishes it.
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
				if a.Level != LevelStop {
					c.bump() // the claim is gone from what the others get
					c.publishSelf()
				}
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
	timeout := c.cfg.Tab.Duration("stomithtimeout", cltab.DefaultStomithTimeout)
	c.ha.fencing[node] = true
	c.log.Warn("fencing a dead node", zap.String("node", node), zap.String("command", cmd))
	go func() {
		out, err := runStomith(c.cfg.Run, cmd, node, timeout)
		c.enqueue(func() {
			delete(c.ha.fencing, node)
			if err == nil {
				c.fenceOK.Add(1)
				c.log.Info("fenced", zap.String("node", node))
				c.ha.mem.fenced[node] = death
				delete(c.ha.fenceTry, node)
				c.ha.dirty = true
				return
			}
			c.fenceFailed.Add(1)
			wait := min(max(2*c.ha.fenceTry[node], time.Second), 30*time.Second)
			c.ha.fenceTry[node] = wait
			c.log.Error("fencing failed; retrying", zap.String("node", node), zap.Error(err),
				zap.String("output", strings.TrimSpace(string(out))), zap.Duration("retry", wait))
			c.ha.timer.Reset(wait)
		})
	}()
}

// probeDead tries, once the safe wait is over, to reach a dead node that
// held an HA group, by a memberlist push/pull with it. Unreachable, its
// groups may start elsewhere; reachable, it is not dead (a cut healed
// before it noticed, or only this side lost it): the push/pull tells it
// so, it refutes, and it is alive again here.
func (c *Cluster) probeDead(node string, silent time.Time) {
	m := c.view.members[node]
	if c.ha.fencing[node] || m == nil {
		return
	}
	if c.ml == nil || m.addr == "" {
		c.ha.mem.probed[node] = silent
		c.ha.dirty = true
		return
	}
	c.ha.fencing[node] = true
	addr := m.addr
	go func() {
		_, err := c.ml.Join([]string{addr})
		c.enqueue(func() {
			delete(c.ha.fencing, node)
			if err != nil {
				c.log.Info("dead node unreachable after the safe wait: taking over its groups", zap.String("node", node))
				c.ha.mem.probed[node] = silent
				c.ha.dirty = true
				return
			}
			c.log.Warn("a node seen dead answers: not taking over its groups", zap.String("node", node))
			c.tr.mark(addr, time.Now())
			c.ha.timer.Reset(time.Second)
		})
	}()
}
