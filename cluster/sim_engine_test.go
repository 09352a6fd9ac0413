package cluster

// The simulation's fake engine and keeper. The engine moves a group
// through its levels as daemon/ does (SPEC 3): a tell stops the
// processes of other levels (SIGTERM, SIGKILL after stoptimeout;
// stopping is running), then starts the level's entries, each only if
// the gate lets it (MayStart). The levels of an HA group here: plan, a
// wait entry; test, a test entry; start (the hactl level), a wait entry
// then a respawn service; stop, a wait entry (the release). Processes
// are the machine's: they outlive a dead or frozen daemon, and only a
// signal (the engine's, the keeper's) or the machine's death ends them.
// The keeper is keeper/'s guarantee (keeper/doc.go): at the deadline it
// TERMs the processes of the groups it holds, and KILLs what is left
// after the stop time, whatever the daemon does.

import (
	"time"

	"github.com/clinit/clinit/api"
)

// simGroup is one group in a node's engine.
type simGroup struct {
	name, level, state string
	gen                int // each tell: steps of an older one are dropped
}

func (gr *simGroup) status() groupState {
	return groupState{Group: gr.name, Level: gr.level, State: gr.state}
}

// simProc is one process (one process group) on a machine.
type simProc struct {
	n            *simNode
	group, level string
	kind         string // "wait", "test", "service"
	gen          int    // the group's tell that started it
	alive        bool
	termed       bool
	ignoresTerm  bool // only a SIGKILL ends it
	fails        bool // it exited non-zero
}

// simEntry kinds of a level, in order.
func simEntries(level string) []string {
	switch level {
	case LevelPlan:
		return []string{"wait"}
	case LevelTest:
		return []string{"test"}
	case "start":
		return []string{"wait", "service"}
	case LevelStop:
		return []string{"wait"}
	}
	return nil
}

func (n *simNode) group(g string) *simGroup {
	gr := n.groups[g]
	if gr == nil {
		gr = &simGroup{name: g, level: LevelStop, state: api.StateDone}
		n.groups[g] = gr
	}
	return gr
}

func (n *simNode) alive(g string) []*simProc {
	var out []*simProc
	for _, p := range n.procs {
		if p.alive && p.group == g {
			out = append(out, p)
		}
	}
	return out
}

// engineTell moves a group to a level (in the daemon).
func (s *sim) engineTell(n *simNode, g, level string) {
	gr := n.group(g)
	gr.level = level
	gr.gen++
	if procs := n.alive(g); len(procs) > 0 {
		gr.state = api.StateStopping
		for _, p := range procs {
			s.engineTerm(n, p)
		}
	} else {
		s.startEntry(n, gr, gr.gen, 0)
	}
	s.statusChanged(n)
}

// engineTerm: SIGTERM, and SIGKILL after stoptimeout if the daemon is
// still there to send it.
func (s *sim) engineTerm(n *simNode, p *simProc) {
	s.term(p)
	s.daemonAtLocal(n, n.nowT().Add(simStopTimeout), func() { s.kill(p, "engine") })
}

// term delivers SIGTERM: the process exits within the stop timeout,
// unless it ignores TERM.
func (s *sim) term(p *simProc) {
	if !p.alive || p.termed {
		return
	}
	p.termed = true
	if p.ignoresTerm {
		return
	}
	s.at(s.now+s.rand(simStopTimeout*9/10), func() { s.exited(p, "TERM") })
}

func (s *sim) kill(p *simProc, by string) {
	if p.alive {
		s.exited(p, "KILL by "+by)
	}
}

// exited: the process is gone; the daemon's reaper hears of it.
func (s *sim) exited(p *simProc, how string) {
	if !p.alive {
		return
	}
	p.alive = false
	n := p.n
	for i, q := range n.procs {
		if q == p {
			n.procs = append(n.procs[:i:i], n.procs[i+1:]...)
			break
		}
	}
	s.logf("%s %s %s (%s) exits: %s", n.name, p.group, p.kind, p.level, how)
	s.daemonAt(n, s.now, func() { s.reaped(n, p) })
}

// reaped is the engine's side of an exit.
func (s *sim) reaped(n *simNode, p *simProc) {
	gr := n.groups[p.group]
	if gr == nil {
		return
	}
	switch {
	case gr.state == api.StateStopping:
		if len(n.alive(gr.name)) == 0 {
			s.startEntry(n, gr, gr.gen, 0)
			s.statusChanged(n)
		}
	case p.gen != gr.gen:
	case p.kind == "service":
		// respawn, if the gate lets it
		s.startEntry(n, gr, gr.gen, len(simEntries(gr.level))-1)
		s.statusChanged(n)
	case p.fails || p.termed:
		gr.state = api.StateFailed
		s.statusChanged(n)
	default:
		k := 0
		for i, e := range simEntries(gr.level) {
			if e == p.kind {
				k = i + 1
			}
		}
		s.startEntry(n, gr, gr.gen, k)
		s.statusChanged(n)
	}
}

// startEntry starts the k-th entry of the group's level, or ends the
// level when there is none left.
func (s *sim) startEntry(n *simNode, gr *simGroup, gen, k int) {
	entries := simEntries(gr.level)
	if k >= len(entries) {
		gr.state = api.StateDone
		if gr.level == LevelTest {
			gr.state = api.StatePassed
		}
		return
	}
	gr.state = api.StateStarting
	if !s.mayStart(n, gr.name, gr.level) {
		s.logf("%s %s %s not started: no lease", n.name, gr.name, gr.level)
		gr.state = api.StateFailed
		return
	}
	p := &simProc{n: n, group: gr.name, level: gr.level, kind: entries[k], gen: gen, alive: true,
		ignoresTerm: s.rng.Intn(5) == 0}
	n.procs = append(n.procs, p)
	s.logf("%s %s %s (%s) starts", n.name, gr.name, p.kind, p.level)
	s.keeper(n).watch(s, p)
	if p.kind == "service" {
		gr.state = api.StateDone
		return
	}
	d := simPlanMax
	switch {
	case gr.level == LevelTest:
		d = simTestMax
	case gr.level == LevelStop:
		d = simStopMax
	case gr.level != LevelPlan:
		d = simStartMax
	}
	s.at(s.now+s.rand(d), func() {
		// A test fails if its node is broken for the group when it ends.
		p.fails = p.kind == "test" && n.broken[gr.name]
		s.exited(p, "done")
	})
}

// restoreEngine is a starting daemon's adoption: each group keeps its
// level; processes still running are adopted; a level whose processes
// are gone is started again (through the gate).
func (s *sim) restoreEngine(n *simNode) {
	for _, g := range sortedKeys(n.groups) {
		gr := n.groups[g]
		gr.gen++
		procs := n.alive(g)
		if len(procs) == 0 {
			if gr.level != LevelStop || gr.state == api.StateStopping {
				s.startEntry(n, gr, gr.gen, 0)
			}
			continue
		}
		gr.state = api.StateStarting
		for _, p := range procs {
			if p.level == gr.level {
				p.gen = gr.gen
				if p.kind == "service" {
					gr.state = api.StateDone
				}
			} else {
				gr.state = api.StateStopping
				s.engineTerm(n, p)
			}
		}
	}
}

// statusChanged: the engine's status moved; the HA loop decides again
// and the leader hears of it.
func (s *sim) statusChanged(n *simNode) {
	s.daemonAt(n, s.now, func() { s.decide(n) })
}

// simKeeper is one machine's keeper.
type simKeeper struct {
	deadline time.Time // on the machine's clock; zero: none yet
	held     map[string]bool
	gen      int
}

func newSimKeeper() *simKeeper { return &simKeeper{held: map[string]bool{}} }

func (s *sim) keeper(n *simNode) *simKeeper { return n.keeper }

// hold is refused without a lease or once it has ended.
func (k *simKeeper) hold(g string, now time.Time) bool {
	if k.deadline.IsZero() || !now.Before(k.deadline) {
		return false
	}
	k.held[g] = true
	return true
}

// watch: a process of a held group started after the deadline is
// stopped at once.
func (k *simKeeper) watch(s *sim, p *simProc) {
	if k.held[p.group] && !p.n.nowT().Before(k.deadline) {
		s.lapse(p.n, k, k.gen)
	}
}

// keeperLease hands the keeper a new deadline, which it arms; the
// keeper is a process of its own, so it acts whatever the daemon does.
func (s *sim) keeperLease(n *simNode, deadline time.Time) {
	k := n.keeper
	k.deadline = deadline
	k.gen++
	gen := k.gen
	s.at(n.realAt(deadline)+s.rand(200*time.Microsecond), func() {
		if n.keeper == k && k.gen == gen {
			s.lapse(n, k, gen)
		}
	})
}

// lapse: TERM to every process of a held group, KILL after the stop
// time to what is left, and to any process of a held group found then if
// no new lease came meanwhile.
func (s *sim) lapse(n *simNode, k *simKeeper, gen int) {
	var termed []*simProc
	for _, p := range n.procs {
		if p.alive && k.held[p.group] {
			termed = append(termed, p)
		}
	}
	if len(termed) > 0 {
		s.logf("%s keeper lapses: %d processes", n.name, len(termed))
	}
	for _, p := range termed {
		s.term(p)
	}
	s.at(n.realAt(n.nowT().Add(simStopTimeout))+s.rand(200*time.Microsecond), func() {
		if n.keeper != k {
			return
		}
		for _, p := range termed {
			s.kill(p, "keeper")
		}
		if k.gen != gen {
			return
		}
		for _, p := range append([]*simProc(nil), n.procs...) {
			if p.alive && k.held[p.group] {
				s.kill(p, "keeper")
			}
		}
	})
}
