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
// its output only post.
type proc struct {
	g     *group
	entry *cltab.Entry

	run     int // counts starts; tells a late event from a current one
	pid     int // 0 when no process runs
	epoch   int // group epoch of the last start
	started time.Time
	since   time.Time
	exit    int  // last exit status; -1 for a signal
	exited  bool // exit is meaningful
	lastPid int  // the process group of a lingering stop
	// sig is the signal that ended the last run, if one did.
	sig syscall.Signal
	// startTicks is the /proc start time of pid: with it, the pid names
	// this process for good. adopted: started by a previous daemon.
	startTicks uint64
	adopted    bool
	fifo       string // the output FIFO of the current run, if any
	// restarts counts the starts of a respawn entry that follow an exit
	// nobody asked for (respawning is set by such an exit), in the same
	// level (a tell to another clears it): a level change, a reread or a
	// stop is not a restart.
	restarts   int
	respawning bool

	// Stopping: term is set once SIGTERM went to the process group, kill
	// once SIGKILL did. linger is set when the leader exited but others
	// of its process group live on: after SIGTERM, until the kill
	// deadline; for a respawn entry whose program went to the background,
	// until they are gone, and only then is it started again.
	term, kill, linger bool
	killTimer          timer

	// residues are the process groups exited runs left members in
	// (helpers started in the background): stopped with the entry.
	residues []int

	// hashText is entryHash(hashOf), for the state written at each
	// batch (hash).
	hashOf   *cltab.Entry
	hashText string

	rapid    int     // consecutive exits within the respawn window
	throttle timer   // non-nil while a too-rapid respawn entry rests
	rest     resting // why and until when it rests, while throttle is set
}

func (p *proc) alive() bool { return p.pid != 0 || p.linger }

func (p *proc) unthrottle() {
	if p.throttle != nil {
		p.throttle.Stop()
		p.throttle = nil
	}
	p.rapid = 0
}

func (p *proc) status() api.EntryStatus {
	s := api.EntryStatus{Tag: p.entry.Tag, Mode: string(p.entry.Mode), Pid: p.pid, Restarts: p.restarts, Since: p.since, Throttled: p.throttle != nil}
	if s.Throttled {
		s.ThrottledUntil = p.rest.until
	}
	if p.exited && p.pid == 0 {
		code := p.exit
		s.Exit = &code
		if p.sig != 0 {
			s.Signal = signalName(p.sig)
		}
	}
	return s
}

// start runs p's command in a process group of its own.
func (e *Engine) start(p *proc) {
	g := p.g
	if e.cfg.MayStart != nil && !e.cfg.MayStart(g.name, g.level) {
		e.log.Warn("not started: this node's lease does not hold the HA group", zap.String("group", g.name), zap.String("tag", p.entry.Tag))
		p.exit, p.exited = 126, true
		e.dirty = true
		return
	}
	// Started again after a run that ended by itself (not by a stop),
	// at the level it ran at (not after a tell).
	respawn := p.respawning
	prevExit, prevSig := p.exit, p.sig
	if respawn {
		p.restarts++
	}
	p.respawning = false
	p.run++
	p.epoch = g.epoch
	p.term, p.kill, p.linger, p.exited = false, false, false, false
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
		if p.entry.Mode == cltab.ModeRespawn {
			e.rest(p, "cannot start")
		}
		return
	}
	p.pid, p.startTicks = pid, ticks
	e.journal(p)
	e.dirty = true
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
	if p.term || !p.alive() {
		return
	}
	p.term = true
	if e.timing.stop <= 0 {
		e.killNow(p)
		return
	}
	e.signal(p, syscall.SIGTERM)
	run := p.run
	p.killTimer = e.clock.AfterFunc(e.timing.stop, func() {
		e.post(func() { e.killDeadline(p, run) })
	})
}

func (e *Engine) killDeadline(p *proc, run int) {
	if p.run != run || !p.alive() {
		return
	}
	if p.pid != 0 {
		e.log.Warn("did not stop in time: SIGKILL", zap.String("group", p.g.name), zap.String("tag", p.entry.Tag), zap.Int("pid", p.pid))
	}
	e.killNow(p)
	if p.linger {
		p.linger = false
		delete(e.lingering, p)
		e.advance(p.g)
	}
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
		if e.child.groupAlive(p.lastPid) {
			continue
		}
		e.lingerEnded(p)
	}
}

// linger keeps p alive, after its leader exited, for as long as its
// process group has members.
func (e *Engine) linger(p *proc) {
	p.linger = true
	e.lingering[p] = true
	e.watchLinger(p, p.run)
}

func (e *Engine) lingerEnded(p *proc) {
	p.linger = false
	delete(e.lingering, p)
	if p.killTimer != nil {
		p.killTimer.Stop()
	}
	e.dirty = true
	if !p.term && p.entry.Mode == cltab.ModeRespawn {
		// The run of a program that went to the background ends here.
		p.since = e.clock.Now()
		e.log.Info("process group ended", zap.String("group", p.g.name), zap.String("tag", p.entry.Tag), zap.Int("pgid", p.lastPid))
		e.respawnEnded(p)
	}
	e.advance(p.g)
}

// watchLinger learns through a pidfd when one live member of p's
// lingering process group exits, then looks again, until the group is
// empty. Members that are our descendants are also reported by the
// reaper; this covers the members of a group adopted after a restart,
// which are not.
func (e *Engine) watchLinger(p *proc, run int) {
	pgid := p.lastPid
	for range 3 { // a member may exit between the scan and its pidfd
		pid, start, ok := groupMember(pgid)
		if !ok {
			break
		}
		err := watchProc(pid, start, pgid, func() {
			e.post(func() {
				if p.run != run || !p.linger || p.lastPid != pgid {
					return
				}
				if e.child.groupAlive(pgid) {
					e.watchLinger(p, run)
					return
				}
				e.lingerEnded(p)
			})
		})
		if err == nil {
			return
		}
	}
	// Empty already: the loop ends the linger as an event of its own,
	// not inside its caller (and post must not block the loop itself).
	go e.post(func() {
		if p.run == run && p.linger && p.lastPid == pgid && !e.child.groupAlive(pgid) {
			e.lingerEnded(p)
		}
	})
}

func (e *Engine) killNow(p *proc) {
	p.kill = true
	e.signal(p, syscall.SIGKILL)
}

// signal signals p's whole process group (its pgid is its pid).
func (e *Engine) signal(p *proc, sig syscall.Signal) {
	pgid := p.pid
	if pgid == 0 && p.linger {
		pgid = p.lastPid
	}
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
	pgid := p.pid
	p.pid = 0
	p.exit, p.exited = exitCode(x), true
	p.sig = signalOf(x)
	if x == nil { // adopted: not our child, so no wait status
		p.exit = e.readExit(p)
	}
	p.adopted = false
	p.since = e.clock.Now()
	p.lastPid = pgid
	e.dirty = true
	fields := []zap.Field{zap.String("group", g.name), zap.String("tag", p.entry.Tag), zap.Int("pid", pgid), p.endField()}
	// Orphans the leader left that had exited were reaped before its
	// exit was posted: only live members keep its process group alive.
	left := !p.kill && e.child.groupAlive(pgid)
	// The line saying how the process ended is logged once what follows
	// has been started (its replacement, the next entry): a log line
	// takes some 0.1 ms that a respawn need not wait for.
	var report func()
	switch {
	case p.term:
		// Stopped by us: a stop is complete once its group is gone.
		if left {
			e.linger(p)
		} else if p.killTimer != nil {
			p.killTimer.Stop()
		}
		report = func() { e.log.Info("stopped", fields...) }
	case p.entry.Mode == cltab.ModeRespawn && left && (p.exit == 0 || x == nil):
		// The program went to the background: its leader forked and
		// exited 0 (or, adopted, with a status we cannot know). Supervise
		// the process group it left rather than start a second copy
		// beside it, and start again once the group is gone. A leader
		// that failed or was killed is restarted at once, below, and what
		// it left is stopped with the entry.
		e.log.Warn(p.entry.Tag+" exited but left processes running in its process group: not restarted until they are gone; run the program in the foreground so that clinit supervises it",
			append(fields, zap.Int("pgid", pgid))...)
		p.respawning = true
		e.linger(p)
	case p.entry.Mode == cltab.ModeRespawn:
		p.respawning = true
		if e.tooRapid(p) { // not started again now: logged in order
			e.log.Info("exited", fields...)
			e.throttle(p)
		} else {
			report = func() { e.log.Info("exited", fields...) }
		}
	case p.exit != 0 && (p.entry.Mode == cltab.ModeWait || p.entry.Mode == cltab.ModeTest):
		report = func() { e.log.Warn("failed", fields...) }
	default:
		report = func() { e.log.Info("exited", fields...) }
	}
	if left && !p.term && !p.linger {
		p.residues = append(p.residues, pgid)
	}
	e.advance(g)
	if report != nil {
		report()
	}
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

// respawnEnded counts the run of a respawn entry that just ended, and rests
// the entry when too many runs in a row ended too soon.
func (e *Engine) respawnEnded(p *proc) {
	if e.tooRapid(p) {
		e.throttle(p)
	}
}

// tooRapid counts the run of a respawn entry that just ended, and reports
// whether too many runs in a row ended too soon.
func (e *Engine) tooRapid(p *proc) bool {
	if p.started.Add(e.timing.window).After(p.since) {
		p.rapid++
	} else {
		p.rapid = 0
	}
	return p.rapid > e.timing.limit
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

// rest pauses a respawn entry, then lets advance start it again.
func (e *Engine) rest(p *proc, why string) {
	e.log.Warn(p.entry.Tag+" "+why, zap.String("group", p.g.name), zap.String("tag", p.entry.Tag), zap.Duration("pause", e.timing.pause))
	var t timer
	t = e.clock.AfterFunc(e.timing.pause, func() {
		e.post(func() {
			if p.throttle != t {
				return
			}
			p.throttle, p.rapid = nil, 0
			e.advance(p.g)
		})
	})
	p.throttle = t
	p.rest = resting{why: why, until: e.clock.Now().Add(e.timing.pause), pause: e.timing.pause}
	e.dirty = true
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
