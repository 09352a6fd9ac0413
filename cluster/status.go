package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// This node's status: what every node gossips about itself (its groups
// and load, under a version that only grows), taken from the engine and
// sent when it changes.

// nodeStatus is what a node gossips about itself: its groups, its load,
// and a version that only grows, also across restarts (it starts from the
// clock), so that the newest status of a node wins everywhere.
type nodeStatus struct {
	Node    string       `json:"n"`
	Version uint64       `json:"v"`
	CPUs    int          `json:"c"`
	Load    float64      `json:"l"`
	Groups  []groupState `json:"g,omitempty"`
	// Leaving is the last status of a node shutting down gracefully: when
	// memberlist then reports it gone, it left; otherwise it died.
	Leaving bool `json:"x,omitempty"`
	// Bad holds the HA groups this node has ruled itself out for, until
	// a time (unix milliseconds): a failed test or level (SPEC 7).
	Bad map[string]int64 `json:"b,omitempty"`
}

// groupState is one clstat line with the time the state was entered.
type groupState struct {
	Group string `json:"g"`
	Level string `json:"l"`
	State string `json:"s"`
	Since int64  `json:"t,omitempty"` // unix milliseconds
	// Throttled: a respawn entry of the group restarts too rapidly.
	Throttled bool   `json:"r,omitempty"`
	Why       string `json:"y,omitempty"` // why it is FAILED
}

// running reports whether the group is held at a level that is not stop.
func (g groupState) running() bool { return g.Level != cltab.LevelStop }

// held: at a level that is not stop, or still stopping.
func (gs groupState) held() bool { return gs.Level != LevelStop || gs.State == "STOPPING" }

// stoppedKept is how long a group stopped here stays in this node's
// status: long enough for every member (and --watch) to see it stop,
// then it is left out. A node that once ran hundreds of groups does not
// gossip them all, at stop, for ever.
const stoppedKept = time.Minute

// groupsOf converts the engine's status to what is gossiped: every group
// but those stopped (stop DONE) for more than stoppedKept at now. A group
// left out is, to the HA rules, as a group at stop: not held here.
func groupsOf(st api.Status, now time.Time) []groupState {
	gs := make([]groupState, 0, len(st.Groups))
	for _, g := range st.Groups {
		if g.Level == cltab.LevelStop && g.State == api.StateDone && now.Sub(g.Since) > stoppedKept {
			continue
		}
		throttled := false
		for _, e := range g.Entries {
			throttled = throttled || e.Throttled
		}
		gs = append(gs, groupState{Group: g.Group, Level: g.Level, State: g.State, Since: g.Since.UnixMilli(), Throttled: throttled, Why: g.Why})
	}
	return gs
}

func sameGroups(a, b []groupState) bool { return slices.Equal(a, b) }

// How often the load is read.
const loadEvery = 10 * time.Second

// SetStatus hands the engine's latest status to the cluster. It never
// blocks: only the newest status matters.
func (c *Cluster) SetStatus(st api.Status) {
	c.latest.Store(&st)
	select {
	case c.statusCh <- struct{}{}:
	default:
	}
}

// bump gives this node's status its next version.
func (c *Cluster) bump() {
	c.self.Version = max(c.self.Version+1, uint64(time.Now().UnixNano()))
	c.applyStatus(c.self)
	c.changed()
}

// publishLocal takes the engine's newest status and, when its groups
// changed, gossips it.
func (c *Cluster) publishLocal() {
	st := c.latest.Load()
	if st == nil {
		return
	}
	gs := groupsOf(*st, time.Now())
	if sameGroups(gs, c.self.Groups) {
		return
	}
	old := map[string]groupState{}
	for _, g := range c.self.Groups {
		old[g.Group] = g
	}
	for _, g := range gs {
		if o, ok := old[g.Group]; !ok || o.Level != g.Level || o.State != g.State {
			c.transitions.Add(1)
		}
	}
	c.self.Groups = gs
	c.bump()
	c.publishSelf()
}

// selfGap is the least time between two gossips of this node's status:
// a burst of changes (many groups placed at once) goes out as the
// newest status once per selfGap, not once per change; an isolated
// change goes out at once. It grows with the cluster: every node must
// receive every status, and a node receives some 30 UDP packets a
// second, so statuses that change faster than that can carry are
// delayed for seconds instead (the 30-node placement bench: claims made
// before the claims ahead were seen).
func (c *Cluster) selfGap() time.Duration {
	return max(100*time.Millisecond, time.Duration(len(c.view.members))*15*time.Millisecond)
}

// publishSelf gossips this node's status, at once or at the end of the
// current selfGap.
func (c *Cluster) publishSelf() {
	c.selfSend.Mark()
	c.selfSend.Poll()
}

// publishSelfNow gossips this node's status at once; the next waits a
// selfGap from it.
func (c *Cluster) publishSelfNow() { c.selfSend.FlushNow() }

// sendSelf gossips this node's status.
func (c *Cluster) sendSelf() { c.broadcast(c.self.Node, encode(msgStatus, c.self)) }

func (c *Cluster) refreshLoad() {
	cpus, load := numCPU(), loadAvg()
	if cpus == c.self.CPUs && load == c.self.Load {
		return
	}
	// Broadcast when its load level changes, for every node to rank
	// nodes alike; a smaller change travels with the next status change
	// and with every push/pull.
	was := loadLevel(c.self)
	c.self.CPUs, c.self.Load = cpus, load
	c.bump()
	if loadLevel(c.self) != was {
		c.publishSelf()
	}
}

// flushStatus pushes the newest status, marked as leaving, to every
// member directly: a node about to leave is not remembered running its
// groups, and the others record it as left, not dead.
func (c *Cluster) flushStatus() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.call(ctx, func() {
		c.publishLocal()
		c.self.Leaving = true
		c.bump()
		msg := encode(msgStatus, c.self)
		for _, n := range c.ml.Members() {
			if n.Name != c.cfg.Node {
				c.ml.SendReliable(n, msg)
			}
		}
	})
}
