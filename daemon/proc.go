package daemon

import (
	"errors"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/reaper"
)

// proc is the runtime of one cltab entry: at most one process at a time.
// Owned by the engine loop; the goroutines that await its exit and read
// its output only post. Where it stands is m (pstate.go); do carries out
// the effects of its transitions.
type proc struct {
	g     *group
	entry *cltab.Entry
	m     machine

	run int // counts starts; tells a late event from a current one
	// pid is the leader of the current or last run, and so its process
	// group: it names a live process while m.state.leader(), the process
	// group watched while m.state.lingers().
	pid     int
	epoch   int // group epoch of the last start
	started time.Time
	since   time.Time
	exit    int  // last exit status; -1 for a signal
	exited  bool // exit is meaningful
	// sig is the signal that ended the last run, if one did.
	sig syscall.Signal
	// startTicks is the /proc start time of pid: with it, the pid names
	// this process for good.
	startTicks uint64
	fifo       string // the output FIFO of the current run, if any
	// restarts counts the starts of a respawn entry that follow an exit
	// nobody asked for, in the same level (a tell to another clears it):
	// a level change, a reread or a stop is not a restart.
	restarts int

	// residues are the process groups exited runs left members in
	// (helpers started in the background): stopped with the entry.
	residues []int

	// hashText is entryHash(hashOf), for the state written at each
	// batch (hash).
	hashOf   *cltab.Entry
	hashText string

	killTimer timer   // the kill deadline, while one is armed
	restTimer timer   // the end of the rest, in sResting
	rest      resting // why and until when it rests, in sResting
}

func (p *proc) alive() bool { return p.m.state.alive() }

func (p *proc) status() api.EntryStatus {
	s := api.EntryStatus{Tag: p.entry.Tag, Mode: string(p.entry.Mode), Restarts: p.restarts, Since: p.since, Throttled: p.m.state == sResting}
	if p.m.state.leader() {
		s.Pid = p.pid
	}
	if s.Throttled {
		s.ThrottledUntil = p.rest.until
	}
	if p.exited && !p.m.state.leader() {
		code := p.exit
		s.Exit = &code
		if p.sig != 0 {
			s.Signal = signalName(p.sig)
		}
	}
	return s
}

// step moves p by in (pstate.go) and carries out the effects.
func (e *Engine) step(p *proc, in input) {
	in.mode = p.entry.Mode
	if table[p.m.state][in.ev].kind == cellImpossible {
		// The loop posts no such event: a bug, said so, and nothing done.
		e.log.Error("impossible process transition", zap.String("group", p.g.name), zap.String("tag", p.entry.Tag),
			zap.Stringer("state", p.m.state), zap.Stringer("event", in.ev))
		return
	}
	m, fx := step(p.m, in)
	p.m = m
	if m.state.lingers() {
		e.lingering[p] = true
	} else {
		delete(e.lingering, p)
	}
	for _, f := range fx {
		e.do(p, f)
	}
}

// do carries out one effect of a transition of p.
func (e *Engine) do(p *proc, f effect) {
	g := p.g
	switch f {
	case fxSpawn, fxRespawn:
		e.spawn(p, f == fxRespawn)
	case fxTerm:
		e.signal(p, syscall.SIGTERM)
	case fxKill:
		e.signal(p, syscall.SIGKILL)
	case fxArmKill:
		run := p.run
		p.killTimer = e.clock.AfterFunc(e.timing.stop, func() {
			e.post(func() {
				if p.run == run {
					p.killTimer = nil
					e.step(p, input{ev: evDeadline})
				}
			})
		})
	case fxStopKill:
		if p.killTimer != nil {
			p.killTimer.Stop()
			p.killTimer = nil
		}
	case fxWarnLate:
		e.log.Warn("did not stop in time: SIGKILL", zap.String("group", g.name), zap.String("tag", p.entry.Tag), zap.Int("pid", p.pid))
	case fxWatch:
		e.watchLinger(p, p.run)
	case fxWarnBackground:
		e.log.Warn(p.entry.Tag+" exited but left processes running in its process group: not restarted until they are gone; run the program in the foreground so that clinit supervises it",
			append(e.exitFields(p), zap.Int("pgid", p.pid))...)
	case fxGroupEnded:
		e.log.Info("process group ended", zap.String("group", g.name), zap.String("tag", p.entry.Tag), zap.Int("pgid", p.pid))
	case fxResidue:
		p.residues = append(p.residues, p.pid)
	case fxThrottle:
		e.throttle(p)
	case fxRestFailed:
		e.rest(p, "cannot start")
	case fxStopRest:
		if p.restTimer != nil {
			p.restTimer.Stop()
			p.restTimer = nil
		}
	case fxLogExit, fxReportExit:
		e.log.Info("exited", e.exitFields(p)...)
	case fxReportFailed:
		e.log.Warn("failed", e.exitFields(p)...)
	case fxReportStopped:
		e.log.Info("stopped", e.exitFields(p)...)
	case fxAdvance:
		e.advance(g)
	}
}

func (e *Engine) exitFields(p *proc) []zap.Field {
	return []zap.Field{zap.String("group", p.g.name), zap.String("tag", p.entry.Tag), zap.Int("pid", p.pid), p.endField()}
}

// start asks for p's process, unless the cluster's gate holds it back.
func (e *Engine) start(p *proc) {
	g := p.g
	if e.cfg.MayStart != nil && !e.cfg.MayStart(g.name, g.level) {
		e.log.Warn("not started: this node's lease does not hold the HA group", zap.String("group", g.name), zap.String("tag", p.entry.Tag))
		p.exit, p.exited = 126, true
		e.persists.Mark()
		return
	}
	e.step(p, input{ev: evStart})
}

// spawn runs p's command in a process group of its own; respawn: it is
// started again after a run that ended by itself (not by a stop), at the
// level it ran at (not after a tell).
func (e *Engine) spawn(p *proc, respawn bool) {
	g := p.g
	prevExit, prevSig := p.exit, p.sig
	if respawn {
		p.restarts++
	}
	p.run++
	p.epoch = g.epoch
	p.exited = false
	p.started = e.clock.Now()
	p.since = p.started
	run := p.run
	exitFile := ""
	if p.entry.Mode == cltab.ModeWait || p.entry.Mode == cltab.ModeTest {
		exitFile = e.exitFile(p.entry.Tag)
	}
	p.fifo = e.outFifo(p.entry.Tag, run)
	pid, ticks, err := e.child.spawn(p.entry, g.level, exitFile, p.fifo, func(x *reaper.Exit) {
		e.post(func() { e.exited(p, run, x) })
	})
	if err != nil {
		e.log.Error("cannot start", zap.String("group", g.name), zap.String("tag", p.entry.Tag), zap.Error(err))
		p.exit, p.exited = 127, true
		e.step(p, input{ev: evStartFailed})
		return
	}
	p.pid, p.startTicks = pid, ticks
	e.journal(p)
	e.persists.Mark()
	if respawn {
		ev := api.Event{Kind: api.EventRespawn, Group: g.name, Tag: p.entry.Tag, Pid: pid, Restarts: p.restarts}
		if prevSig != 0 {
			ev.Signal = signalName(prevSig)
		} else {
			ev.Exit = &prevExit
		}
		e.event(ev)
	}
	e.log.Debug("started", zap.String("group", g.name), zap.String("tag", p.entry.Tag), zap.Int("pid", pid))
}

// stop sends SIGTERM to p's process group, and SIGKILL after the grace.
func (e *Engine) stop(p *proc) {
	e.step(p, input{ev: evStop, grace: e.timing.stop > 0})
}

// lingerCheck runs after orphans were reaped, or a watched member of a
// lingering process group exited: a lingering process group may be empty
// now, and then its stop is complete, or its respawn entry's run is over.
func (e *Engine) lingerCheck() {
	for pgid, g := range e.residues {
		if !e.child.groupAlive(pgid) {
			delete(e.residues, pgid)
			e.advance(g)
		}
	}
	for p := range e.lingering {
		if e.child.groupAlive(p.pid) {
			continue
		}
		e.groupGone(p)
	}
}

// groupGone ends the linger of p, whose process group is empty.
func (e *Engine) groupGone(p *proc) {
	e.persists.Mark()
	now := e.clock.Now()
	quick := p.started.Add(e.timing.window).After(now)
	if p.m.state == sBackground && p.entry.Mode == cltab.ModeRespawn {
		p.since = now
	}
	e.step(p, input{ev: evGone, quick: quick, limit: e.timing.limit})
}

// watchLinger learns through a pidfd when one live member of p's
// lingering process group exits, then looks again, until the group is
// empty. Members that are our descendants are also reported by the
// reaper; this covers the members of a group adopted after a restart,
// which are not.
func (e *Engine) watchLinger(p *proc, run int) {
	pgid := p.pid
	current := func() bool { return p.run == run && p.m.state.lingers() && p.pid == pgid }
	for range 3 { // a member may exit between the scan and its pidfd
		pid, start, ok := groupMember(pgid)
		if !ok {
			break
		}
		err := watchProc(pid, start, pgid, func() {
			e.post(func() {
				if !current() {
					return
				}
				if e.child.groupAlive(pgid) {
					e.watchLinger(p, run)
					return
				}
				e.groupGone(p)
			})
		})
		if err == nil {
			return
		}
	}
	// Empty already: the loop ends the linger as an event of its own,
	// not inside its caller (and post must not block the loop itself).
	go e.post(func() {
		if current() && !e.child.groupAlive(pgid) {
			e.groupGone(p)
		}
	})
}

// signal signals p's whole process group (its pgid is its leader's pid).
func (e *Engine) signal(p *proc, sig syscall.Signal) {
	pgid := p.pid
	if pgid <= 0 {
		return
	}
	if err := e.child.kill(pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		e.log.Warn("signal", zap.String("tag", p.entry.Tag), zap.Int("pid", pgid), zap.Stringer("signal", sig), zap.Error(err))
	}
}

// exited handles the end of p's process: x is what the reaper collected,
// nil for an adopted process (not our child: its status is unknown).
func (e *Engine) exited(p *proc, run int, x *reaper.Exit) {
	if p.run != run {
		return
	}
	g := p.g
	p.exit, p.exited = exitCode(x), true
	p.sig = signalOf(x)
	if x == nil { // adopted: not our child, so no wait status
		p.exit = e.readExit(p)
	}
	p.since = e.clock.Now()
	e.persists.Mark()
	mode := p.entry.Mode
	e.step(p, input{
		ev: evExit,
		// Orphans the leader left that had exited were reaped before its
		// exit was posted: only live members keep its process group
		// alive. After SIGKILL to the group, none is waited for.
		left:  p.m.state != sKill && e.child.groupAlive(p.pid),
		clean: p.exit == 0 || x == nil,
		quick: p.started.Add(e.timing.window).After(p.since),
		fail:  p.exit != 0 && (mode == cltab.ModeWait || mode == cltab.ModeTest),
		limit: e.timing.limit,
	})
	if len(g.procs) == 0 {
		e.forget(g)
	}
}

// stopResidues stops what p's exited runs left in their process groups:
// SIGTERM now, SIGKILL after the grace. Until each group is gone the
// engine is not idle, so -k leaves nothing behind.
func (e *Engine) stopResidues(p *proc) {
	for _, pgid := range p.residues {
		if e.residues[pgid] != nil || !e.child.groupAlive(pgid) {
			continue
		}
		e.residues[pgid] = p.g
		e.log.Info("stopping what the entry left in its process group", zap.String("group", p.g.name), zap.String("tag", p.entry.Tag), zap.Int("pgid", pgid))
		e.child.kill(pgid, syscall.SIGTERM)
		e.clock.AfterFunc(e.timing.stop, func() {
			e.post(func() {
				if g := e.residues[pgid]; g != nil {
					e.child.kill(pgid, syscall.SIGKILL)
					delete(e.residues, pgid)
					e.advance(g)
				}
			})
		})
	}
	p.residues = nil
}

// throttle rests a respawn entry that restarted too rapidly.
func (e *Engine) throttle(p *proc) {
	// A program that daemonizes out of its process group (setsid) looks
	// like one that exits at once, and each start leaves one more copy:
	// name what it left, which the subreaper sees reparented to us.
	known := map[int]bool{}
	for _, pgid := range p.residues {
		known[pgid] = true
	}
	if left := strays(p.g.name, p.entry.Tag, known); len(left) > 0 {
		e.log.Warn(p.entry.Tag+" starts processes that leave its process group (setsid, a daemonizing program): clinit can neither supervise nor stop them; run the program in the foreground",
			zap.String("group", p.g.name), zap.String("tag", p.entry.Tag), zap.Ints("pids", left))
	}
	e.rest(p, "respawning too rapidly")
}

// rest pauses a respawn entry; at the end of the pause it may start again.
func (e *Engine) rest(p *proc, why string) {
	e.log.Warn(p.entry.Tag+" "+why, zap.String("group", p.g.name), zap.String("tag", p.entry.Tag), zap.Duration("pause", e.timing.pause))
	var t timer
	t = e.clock.AfterFunc(e.timing.pause, func() {
		e.post(func() {
			if p.restTimer != t {
				return
			}
			p.restTimer = nil
			e.step(p, input{ev: evRested})
		})
	})
	p.restTimer = t
	p.rest = resting{why: why, until: e.clock.Now().Add(e.timing.pause), pause: e.timing.pause}
	e.persists.Mark()
	e.event(api.Event{Kind: api.EventThrottle, Group: p.g.name, Tag: p.entry.Tag, Until: p.rest.until.UTC(), Why: why})
}

// event hands an event of this node's to OnEvent, stamped.
func (e *Engine) event(ev api.Event) {
	if e.cfg.OnEvent == nil {
		return
	}
	ev.Time, ev.Node = e.clock.Now().UTC(), e.cfg.Node
	e.cfg.OnEvent(ev)
}

func exitCode(x *reaper.Exit) int {
	if x == nil {
		return -1
	}
	return x.Code()
}
