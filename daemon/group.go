package daemon

import (
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// group is one resource group. Owned by the engine loop.
type group struct {
	name  string
	told  bool
	level string
	// epoch counts the times the group entered a new level: a wait, once
	// or test entry runs again only in a later epoch (SPEC 3.4).
	epoch int
	state string
	since time.Time
	why   string // why it is FAILED

	procs []*proc // current cltab entries, in file order
	byTag map[string]*proc
	// retired are entries gone from the cltab (or changed) that are still
	// alive, or whose exited runs left residues: advance stops both, and
	// drops each once nothing of it is left.
	retired []*proc
}

func (g *group) add(p *proc) {
	if g.byTag == nil {
		g.byTag = map[string]*proc{}
	}
	g.procs = append(g.procs, p)
	g.byTag[p.entry.Tag] = p
}

// retire takes p out of g's current entries; it is stopped if it runs.
func (e *Engine) retire(g *group, p *proc) {
	delete(g.byTag, p.entry.Tag)
	e.step(p, input{ev: evRelease})
	if p.alive() || len(p.residues) > 0 {
		g.retired = append(g.retired, p)
	}
}

func (g *group) sortByLine() {
	sort.SliceStable(g.procs, func(i, j int) bool { return g.procs[i].entry.Line < g.procs[j].entry.Line })
}

func (g *group) alive() bool {
	for _, p := range g.retired {
		if p.alive() {
			return true
		}
	}
	for _, p := range g.procs {
		if p.alive() {
			return true
		}
	}
	return false
}

// wanted reports whether p's entry should run at the group's level.
func (g *group) wanted(p *proc) bool {
	return g.told && p.entry.Mode != cltab.ModeOff && p.entry.HasLevel(g.level)
}

func (e *Engine) setState(g *group, s string) {
	if g.state == s {
		return
	}
	g.state, g.since = s, e.clock.Now()
	e.persists.Mark()
	fields := []zap.Field{zap.String("group", g.name), zap.String("level", g.level), zap.String("state", s)}
	if s == api.StateFailed {
		fields = append(fields, zap.String("why", g.why))
	} else {
		g.why = ""
	}
	e.log.Info("group state", fields...)
}

// advance drives g one step towards its level; it is called after every
// event that concerns g and is idempotent. First everything that must not
// run is stopped; only once that is done are the wanted entries started,
// in file order, a wait or test holding back the entries after it.
func (e *Engine) advance(g *group) {
	pending := false
	for _, p := range g.retired {
		if p.alive() {
			e.stop(p)
			pending = true
		}
	}
	for _, p := range g.retired {
		e.stopResidues(p)
	}
	g.retired = pruneRetired(g.retired)
	for _, p := range g.procs {
		switch {
		case p.alive() && (e.stopping || !g.wanted(p)):
			e.stop(p)
			pending = true
		case p.m.state.stopping():
			// A stop under way finishes even if the level wants the
			// entry again: then it runs anew, and the exit our own
			// signal caused is not taken for its result.
			pending = true
		}
		if len(p.residues) > 0 && (e.stopping || !g.wanted(p)) {
			e.stopResidues(p)
		}
	}
	// The next level starts only once what exited entries left is gone.
	for _, rg := range e.residues {
		if rg == g {
			pending = true
		}
	}
	if pending {
		e.setState(g, api.StateStopping)
		return
	}
	if e.stopping || !g.told {
		return
	}
	for i, p := range g.procs {
		if !g.wanted(p) {
			continue
		}
		switch p.entry.Mode {
		case cltab.ModeRespawn:
			if p.m.state == sDown {
				e.start(p)
			}
		case cltab.ModeOnce:
			if p.alive() {
				// Still running from before: it has run at this level.
				p.epoch = g.epoch
			} else if p.epoch != g.epoch {
				e.start(p)
			}
		case cltab.ModeWait, cltab.ModeTest:
			if p.alive() {
				// Still running from before: its result counts now.
				p.epoch = g.epoch
			} else if p.epoch != g.epoch {
				e.start(p)
			}
			if p.alive() {
				if e.lastWanted(g, i) {
					e.setState(g, api.StateChecking)
				} else {
					e.setState(g, api.StateStarting)
				}
				return
			}
			if p.exit != 0 {
				e.fail(g, p.failure())
				return
			}
		}
	}
	if why := restingWhy(g); why != "" {
		e.fail(g, why)
		return
	}
	e.setState(g, e.doneState(g))
}

// lastWanted reports whether no entry after index i runs at g's level.
func (e *Engine) lastWanted(g *group, i int) bool {
	for _, p := range g.procs[i+1:] {
		if g.wanted(p) {
			return false
		}
	}
	return true
}

// doneState is PASSED when every entry at the level is a test (and all
// passed, or advance would have stopped at FAILED), else DONE.
func (e *Engine) doneState(g *group) string {
	tests := 0
	for _, p := range g.procs {
		if g.wanted(p) {
			if p.entry.Mode != cltab.ModeTest {
				return api.StateDone
			}
			tests++
		}
	}
	if tests == 0 {
		return api.StateDone
	}
	return api.StatePassed
}

// pruneRetired drops the retired entries of which nothing is left.
func pruneRetired(ps []*proc) []*proc {
	out := ps[:0]
	for _, p := range ps {
		if p.alive() || len(p.residues) > 0 {
			out = append(out, p)
		}
	}
	for i := len(out); i < len(ps); i++ {
		ps[i] = nil
	}
	return out
}

func (e *Engine) status() api.Status {
	st := api.Status{Node: e.cfg.Node, Cltab: e.cfg.CltabPath, Groups: []api.GroupStatus{}}
	for _, g := range e.groups {
		if !g.told {
			continue
		}
		gs := api.GroupStatus{Group: g.name, Level: g.level, State: g.state, Since: g.since, Why: g.why}
		for _, p := range g.procs {
			gs.Entries = append(gs.Entries, p.status())
		}
		st.Groups = append(st.Groups, gs)
	}
	sort.Slice(st.Groups, func(i, j int) bool { return st.Groups[i].Group < st.Groups[j].Group })
	return st
}
