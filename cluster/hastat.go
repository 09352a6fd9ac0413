package cluster

import (
	"context"
	"maps"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/store"
	"github.com/clinit/clinit/internal/atomicfile"
)

// hastat: the view collated for the HA groups, written to the hastat
// file and handed to clinit --hastat.

// Hastat returns the collated view.
func (c *Cluster) Hastat(ctx context.Context) (api.Hastat, error) {
	if c.rn == nil && c.rc != nil {
		// A node that does not vote reads the committed state when the
		// files change; what operators asked since (a ban, a standby) is
		// read now.
		if st, err := c.rc.State(ctx); err == nil {
			c.call(ctx, func() { c.onCommitted(st) })
		}
	}
	var h api.Hastat
	err := c.call(ctx, func() { h = c.hastatNow() })
	if c.ml != nil {
		g := GossipStats()
		h.Gossip = &g
	}
	return h, err
}

// hastatNow is the collated view with what the cluster decided: the
// committed assignments and their epochs, the leader, this node's lease,
// and why each group that runs nowhere does.
func (c *Cluster) hastatNow() api.Hastat {
	now := time.Now()
	held := leaseHeld(c.ha.lease, now)
	h := c.view.hastat(c.hactl, c.whyNowhere(held))
	for i, n := range h.Nodes {
		if m := c.view.members[n.Node]; m != nil {
			h.Nodes[i].Address, h.Nodes[i].Build = m.addr, m.meta.Build
		}
	}
	if st := c.committed; st != nil {
		addCommitted(&h, st, now)
	}
	// Maintenance as this node honours it: from its grant while its
	// lease holds.
	h.Maintenance = held && c.ha.lease.Grant.Maintenance
	if held {
		h.Leader, h.LeaseUntil = c.ha.lease.Grant.Leader, c.ha.lease.Until.UTC()
	}
	for _, r := range c.files {
		if r.version > 0 {
			if h.Versions == nil {
				h.Versions = map[string]uint64{}
			}
			h.Versions[r.Kind] = r.version
		}
	}
	return h
}

// whyNowhere says, for each group of the hactl, why it would run
// nowhere, as this node knows it; held: this node's lease holds.
func (c *Cluster) whyNowhere(held bool) map[string]string {
	why := map[string]string{}
	for _, g := range c.hactl.Groups {
		a := store.Assignment{}
		if c.committed != nil {
			a = c.committed.Assign[g.Group]
		}
		switch w, ok := c.ha.why[g.Group]; {
		case c.committed != nil && c.committed.Maintenance:
			why[g.Group] = whyMaintenance
		case !c.ha.on:
			why[g.Group] = "HA is off: the cltab names no voters (:::nodes: or :::servers:)"
		case ok && w != "" && c.rn != nil && c.rn.IsLeader():
			why[g.Group] = w
		case !held:
			why[g.Group] = "no quorum: no leader answers this node's renewals"
		case a.Node != "":
			why[g.Group] = "assigned to " + a.Node + ", not running yet"
		case a.Why != "":
			why[g.Group] = a.Why
		case c.committed != nil && c.committed.SettleFrom > 0 && len(c.committed.Assign) == 0 && c.ha.plan.settle > 0:
			// The leader's why names who it waits for; here, the
			// committed start says it waits.
			why[g.Group] = whySettling + "the leader waits for the expected members up to " + c.ha.plan.settle.String()
		default:
			why[g.Group] = "not placed yet"
		}
	}
	return why
}

// addCommitted adds to h what the committed state st decided: each
// group's assignment and epoch, move, failures, rule-outs and bans, and
// each node's standby.
func addCommitted(h *api.Hastat, st *store.State, now time.Time) {
	for i := range h.Groups {
		g := &h.Groups[i]
		a := st.Assign[g.Group]
		g.Assigned, g.Epoch = a.Node, a.Epoch
		g.MovedTo = st.Moves[g.Group]
		if len(st.Fails[g.Group]) > 0 {
			g.Fails = maps.Clone(st.Fails[g.Group])
		}
		for _, n := range slices.Sorted(maps.Keys(st.RuleOuts[g.Group])) {
			r := st.RuleOuts[g.Group][n]
			if r.Until > now.UnixMilli() {
				g.RuleOuts = append(g.RuleOuts, api.RuleOut{Node: n, Until: time.UnixMilli(r.Until).UTC(), Why: r.Why})
			}
		}
		for _, n := range slices.Sorted(maps.Keys(st.Bans[g.Group])) {
			g.RuleOuts = append(g.RuleOuts, api.RuleOut{Node: n, Why: st.Bans[g.Group][n].Why})
		}
	}
	for i := range h.Nodes {
		h.Nodes[i].Standby = st.Standby[h.Nodes[i].Node]
	}
}

// hastatGap is the least time between two writes of hastat: that of the
// flushes, which this node's own changes skip (they are answered at
// once), while the file need not follow each of them.
func (c *Cluster) hastatGap() time.Duration { return c.flushGap() }

func (c *Cluster) writeHastat() {
	if c.cfg.Hastat == "" {
		return
	}
	text := c.view.hastatText(c.hastatBuf[:0], c.hactl)
	c.hastatBuf = text
	if string(text) == c.hastatText {
		return
	}
	if err := atomicfile.WriteStatus(c.cfg.Hastat, text, 0o644); err != nil {
		c.log.Error("writing hastat", zap.String("path", c.cfg.Hastat), zap.Error(err))
		return
	}
	c.hastatText = string(text)
}

// hastat collates the view for the HA groups of h (SPEC 6).
func (v *view) hastat(h *cltab.Hactl, why map[string]string) api.Hastat {
	st := api.Hastat{Node: v.self, Groups: []api.HAGroupStatus{}, Nodes: []api.NodeStatus{}}
	names, running := v.placements()
	if h != nil {
		for _, g := range h.Groups {
			found := false
			for _, o := range running.on(g.Group) {
				st.Groups = append(st.Groups, api.HAGroupStatus{
					Group: g.Group, Level: o.gs.Level, State: o.gs.State, Node: o.node,
					Since: time.UnixMilli(o.gs.Since).UTC(), Why: o.gs.Why,
				})
				found = true
			}
			if !found {
				st.Groups = append(st.Groups, api.HAGroupStatus{Group: g.Group, Level: g.Level, State: "-", Node: "-", Why: why[g.Group]})
			}
		}
	}
	for _, n := range names {
		s := v.statuses[n]
		ns := api.NodeStatus{Node: n, State: v.members[n].state, CPUs: s.CPUs, Load: s.Load, Version: s.Version, Groups: []api.GroupStatus{}}
		for _, g := range s.Groups {
			ns.Groups = append(ns.Groups, api.GroupStatus{Group: g.Group, Level: g.Level, State: g.State, Since: time.UnixMilli(g.Since).UTC(), Why: g.Why})
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st
}

// hastatText appends to b the text of hastat (api.Hastat.Text of
// hastat(h, ...)) without building the Hastat: what the file holds, its
// lines only.
func (v *view) hastatText(b []byte, h *cltab.Hactl) []byte {
	names, running := v.placements()
	if h != nil {
		for _, g := range h.Groups {
			f, ok := running.first[g.Group]
			if !ok {
				b = api.AppendHastatGroup(b, g.Group, g.Level, "-", "-")
				continue
			}
			b = api.AppendHastatGroup(b, g.Group, f.gs.Level, f.gs.State, f.node)
			for _, o := range running.more[g.Group] {
				b = api.AppendHastatGroup(b, g.Group, o.gs.Level, o.gs.State, o.node)
			}
		}
	}
	for _, n := range names {
		b = api.AppendHastatNode(b, n, v.members[n].state, v.statuses[n].Load)
	}
	return b
}

// placed is one node running an HA group.
type placed struct {
	node string
	gs   groupState
}

// placedSet is where each HA group runs: the first up member, in name
// order, and the others (rare: a group runs on one node at most, but
// for the instants of a move seen from afar).
type placedSet struct {
	first map[string]placed
	more  map[string][]placed
}

// on returns the up members running group g, in name order.
func (p placedSet) on(g string) []placed {
	f, ok := p.first[g]
	if !ok {
		return nil
	}
	return append([]placed{f}, p.more[g]...)
}

// placements lists the members in name order and where each HA group
// runs: one pass over the statuses, not one per HA group (1,000 groups
// on 100 nodes).
func (v *view) placements() (names []string, running placedSet) {
	names = make([]string, 0, len(v.members))
	n := 0
	for name := range v.members {
		names = append(names, name)
		n += len(v.statuses[name].Groups)
	}
	sort.Strings(names)
	running = placedSet{first: make(map[string]placed, n), more: map[string][]placed{}}
	for _, name := range names {
		if !v.up(name) {
			continue
		}
		for _, gs := range v.statuses[name].Groups {
			if !gs.running() {
				continue
			}
			if _, ok := running.first[gs.Group]; ok {
				running.more[gs.Group] = append(running.more[gs.Group], placed{name, gs})
			} else {
				running.first[gs.Group] = placed{name, gs}
			}
		}
	}
	return names, running
}
