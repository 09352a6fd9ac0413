package daemon

import "github.com/clinit/clinit/cltab"

// The states of one entry's process and what moves it between them, as a
// state × event table in the manner of s6-supervise: step is pure, and
// returns the effects that the engine loop then carries out (proc.go).

// pstate is where an entry's process stands.
type pstate uint8

const (
	// sDown: no process, and nothing of one is left: never started, or
	// its last run is over.
	sDown pstate = iota
	// sUp: the process runs.
	sUp
	// sTerm: SIGTERM went to its process group; SIGKILL follows at the
	// kill deadline.
	sTerm
	// sKill: SIGKILL went to its process group; its exit is awaited.
	sKill
	// sBackground: a respawn entry's leader exited 0 but left others in
	// its process group (a program that went to the background): the
	// group is supervised until it is empty, and only then does the
	// entry start again.
	sBackground
	// sLinger: stopped, the leader exited but others of its process group
	// live on: until they are gone, or SIGKILL at the kill deadline.
	sLinger
	// sResting: a respawn entry that restarted too rapidly, or could not
	// start, rests until its pause is over.
	sResting
	nStates
)

var stateNames = [nStates]string{"down", "up", "term", "kill", "background", "linger", "resting"}

func (s pstate) String() string { return stateNames[s] }

// alive: something of the process still runs (its leader or its group).
func (s pstate) alive() bool { return s >= sUp && s <= sLinger }

// leader: the process the entry started still runs.
func (s pstate) leader() bool { return s == sUp || s == sTerm || s == sKill }

// lingers: the leader exited; its process group is watched until empty.
func (s pstate) lingers() bool { return s == sBackground || s == sLinger }

// stopping: a stop is under way.
func (s pstate) stopping() bool { return s == sTerm || s == sKill || s == sLinger }

// pevent is what happens to an entry's process.
type pevent uint8

const (
	evStart       pevent = iota // the group's level wants it started
	evStop                      // the level, a reread or a shutdown wants it stopped
	evExit                      // its leader exited
	evDeadline                  // the grace after SIGTERM is over
	evGone                      // its lingering process group is empty
	evRested                    // its pause is over
	evRelease                   // a tell to another level, or its entry left the cltab: counts and rest end
	evStartFailed               // the start just asked for could not be made
	evAdopt                     // a process of a previous daemon, still running, is taken over
	evAdoptGroup                // a process group a previous daemon's run left is watched again
	nEvents
)

var eventNames = [nEvents]string{"start", "stop", "exit", "deadline", "gone", "rested", "release", "start-failed", "adopt", "adopt-group"}

func (e pevent) String() string { return eventNames[e] }

// input is an event with the facts its transition depends on, gathered
// by the loop.
type input struct {
	ev    pevent
	mode  cltab.Mode
	grace bool // stop: SIGKILL comes after a grace period (stoptimeout > 0)
	left  bool // exit: live members remain in the leader's process group
	clean bool // exit: the leader exited 0, or was adopted (status unknown)
	quick bool // exit, gone: the run ended within the respawn window of its start
	fail  bool // exit: a non-zero exit of a wait or test, which fails the group
	limit int  // rapid restarts allowed before a pause
}

// machine is an entry's state and the counts its transitions keep.
type machine struct {
	state pstate
	// rapid counts the consecutive runs of a respawn entry that ended
	// within the respawn window.
	rapid int
	// again: the next start follows an exit nobody asked for, in the same
	// level, and counts as a restart.
	again bool
}

// effect is what a transition asks the loop to do, in order.
type effect uint8

const (
	fxSpawn          effect = iota // start the process
	fxRespawn                      // start it again after an exit nobody asked for (a restart)
	fxTerm                         // SIGTERM to its process group
	fxKill                         // SIGKILL to its process group
	fxArmKill                      // arm the kill deadline
	fxStopKill                     // stop the kill deadline
	fxWarnLate                     // log that it did not stop in time
	fxWatch                        // watch its lingering process group until it is empty
	fxWarnBackground               // log that it went to the background
	fxGroupEnded                   // its background run ended with its process group
	fxResidue                      // remember its process group, which its exit left members in
	fxThrottle                     // rest: it restarted too rapidly
	fxRestFailed                   // rest: it could not start
	fxStopRest                     // end the rest early
	fxLogExit                      // log its exit now
	fxAdvance                      // advance its group
	fxReportExit                   // log its exit (after the advance: what follows starts first)
	fxReportFailed                 // log its failure (idem)
	fxReportStopped                // log its stop (idem)
	nEffects
)

var effectNames = [nEffects]string{"spawn", "respawn", "term", "kill", "arm-kill", "stop-kill", "warn-late", "watch",
	"warn-background", "group-ended", "residue", "throttle", "rest-failed", "stop-rest", "log-exit", "advance",
	"report-exit", "report-failed", "report-stopped"}

func (f effect) String() string { return effectNames[f] }

// action is one cell of the table.
type action func(m machine, in input) (machine, []effect)

// cell kinds: an action, an event ignored in that state (nothing to do:
// a stop of what is stopping, a stale timer), or one that cannot happen
// there (the loop never posts it; nothing is done).
type cellKind uint8

const (
	cellAct cellKind = iota
	cellIgnored
	cellImpossible
)

type cell struct {
	kind cellKind
	do   action
}

func act(f action) cell { return cell{kind: cellAct, do: f} }

var (
	ignored    = cell{kind: cellIgnored}
	impossible = cell{kind: cellImpossible}
)

// table is the state × event table: every pair is named.
var table = [nStates][nEvents]cell{
	sDown: {
		evStart: act(func(m machine, in input) (machine, []effect) {
			fx := fxSpawn
			if m.again {
				fx = fxRespawn
			}
			m.state, m.again = sUp, false
			return m, []effect{fx}
		}),
		evStop:        ignored,
		evExit:        impossible,
		evDeadline:    ignored, // a deadline stopped as it fired
		evGone:        ignored,
		evRested:      ignored,
		evRelease:     act(release),
		evStartFailed: impossible,
		evAdopt:       act(func(m machine, in input) (machine, []effect) { m.state = sUp; return m, nil }),
		evAdoptGroup: act(func(m machine, in input) (machine, []effect) {
			m.state = sBackground
			return m, []effect{fxWatch}
		}),
	},
	sUp: {
		evStart: impossible,
		evStop: act(func(m machine, in input) (machine, []effect) {
			if !in.grace {
				m.state = sKill
				return m, []effect{fxKill}
			}
			m.state = sTerm
			return m, []effect{fxTerm, fxArmKill}
		}),
		evExit:        act(upExit),
		evDeadline:    impossible,
		evGone:        impossible,
		evRested:      impossible,
		evRelease:     act(release),
		evStartFailed: act(startFailed),
		evAdopt:       impossible,
		evAdoptGroup:  impossible,
	},
	sTerm: {
		evStart: impossible,
		evStop:  ignored,
		evExit: act(func(m machine, in input) (machine, []effect) {
			// Stopped by us: a stop is complete once its group is gone.
			if in.left {
				m.state = sLinger
				return m, []effect{fxWatch, fxAdvance, fxReportStopped}
			}
			m.state = sDown
			return m, []effect{fxStopKill, fxAdvance, fxReportStopped}
		}),
		evDeadline: act(func(m machine, in input) (machine, []effect) {
			m.state = sKill
			return m, []effect{fxWarnLate, fxKill}
		}),
		evGone:        impossible,
		evRested:      impossible,
		evRelease:     act(release),
		evStartFailed: impossible,
		evAdopt:       impossible,
		evAdoptGroup:  impossible,
	},
	sKill: {
		evStart: impossible,
		evStop:  ignored,
		// SIGKILL went to the whole group: what is left of it is not
		// waited for.
		evExit: act(func(m machine, in input) (machine, []effect) {
			m.state = sDown
			return m, []effect{fxAdvance, fxReportStopped}
		}),
		evDeadline:    impossible,
		evGone:        impossible,
		evRested:      impossible,
		evRelease:     act(release),
		evStartFailed: impossible,
		evAdopt:       impossible,
		evAdoptGroup:  impossible,
	},
	sBackground: {
		evStart: impossible,
		evStop: act(func(m machine, in input) (machine, []effect) {
			m.state = sLinger
			if !in.grace {
				return m, []effect{fxKill}
			}
			return m, []effect{fxTerm, fxArmKill}
		}),
		evExit:     impossible,
		evDeadline: impossible,
		evGone: act(func(m machine, in input) (machine, []effect) {
			m.state = sDown
			if in.mode != cltab.ModeRespawn {
				// Only a retired entry restored by a new daemon lingers
				// so; it is stopped before it can get here.
				return m, []effect{fxAdvance}
			}
			// The run of a program that went to the background ends here.
			var too bool
			if m, too = count(m, in); too {
				m.state = sResting
				return m, []effect{fxGroupEnded, fxThrottle, fxAdvance}
			}
			return m, []effect{fxGroupEnded, fxAdvance}
		}),
		evRested:      impossible,
		evRelease:     act(release),
		evStartFailed: impossible,
		evAdopt:       impossible,
		evAdoptGroup:  impossible,
	},
	sLinger: {
		evStart: impossible,
		evStop:  ignored,
		evExit:  impossible,
		evDeadline: act(func(m machine, in input) (machine, []effect) {
			m.state = sDown
			return m, []effect{fxKill, fxAdvance}
		}),
		evGone: act(func(m machine, in input) (machine, []effect) {
			m.state = sDown
			return m, []effect{fxStopKill, fxAdvance}
		}),
		evRested:      impossible,
		evRelease:     act(release),
		evStartFailed: impossible,
		evAdopt:       impossible,
		evAdoptGroup:  impossible,
	},
	sResting: {
		evStart:    impossible,
		evStop:     ignored, // nothing runs
		evExit:     impossible,
		evDeadline: ignored,
		evGone:     impossible,
		evRested: act(func(m machine, in input) (machine, []effect) {
			m.state, m.rapid = sDown, 0
			return m, []effect{fxAdvance}
		}),
		evRelease: act(func(m machine, in input) (machine, []effect) {
			m, _ = release(m, in)
			m.state = sDown
			return m, []effect{fxStopRest}
		}),
		evStartFailed: impossible,
		evAdopt:       impossible,
		evAdoptGroup:  impossible,
	},
}

// step is the transition of m on in: the next machine and the effects,
// in the order the loop must carry them out. Ignored and impossible
// events leave m as it is.
func step(m machine, in input) (machine, []effect) {
	c := table[m.state][in.ev]
	if c.kind != cellAct {
		return m, nil
	}
	return c.do(m, in)
}

// upExit is the end of a run nobody stopped.
func upExit(m machine, in input) (machine, []effect) {
	m.state = sDown
	var fx []effect
	residue := func() {
		// What a run left behind in its process group is stopped with
		// the entry.
		if in.left {
			fx = append(fx, fxResidue)
		}
	}
	switch {
	case in.mode == cltab.ModeRespawn && in.left && in.clean:
		// The program went to the background: its leader forked and
		// exited 0 (or, adopted, with a status we cannot know). Supervise
		// the process group it left rather than start a second copy
		// beside it, and start again once the group is gone. A leader
		// that failed or was killed is restarted at once, and what it
		// left is stopped with the entry.
		m.state, m.again = sBackground, true
		return m, []effect{fxWarnBackground, fxWatch, fxAdvance}
	case in.mode == cltab.ModeRespawn:
		m.again = true
		var too bool
		if m, too = count(m, in); too {
			// Not started again now: the exit is logged before the rest.
			m.state = sResting
			fx = append(fx, fxLogExit, fxThrottle)
			residue()
			return m, append(fx, fxAdvance)
		}
		residue()
		return m, append(fx, fxAdvance, fxReportExit)
	case in.fail:
		residue()
		return m, append(fx, fxAdvance, fxReportFailed)
	}
	residue()
	return m, append(fx, fxAdvance, fxReportExit)
}

// count counts the run of a respawn entry that just ended, and reports
// whether too many runs in a row ended too soon.
func count(m machine, in input) (machine, bool) {
	if in.quick {
		m.rapid++
	} else {
		m.rapid = 0
	}
	return m, m.rapid > in.limit
}

func startFailed(m machine, in input) (machine, []effect) {
	m.state = sDown
	if in.mode == cltab.ModeRespawn {
		m.state = sResting
		return m, []effect{fxRestFailed}
	}
	return m, nil
}

// release forgets the counts of the level left (or of an entry retired).
func release(m machine, in input) (machine, []effect) {
	m.rapid, m.again = 0, false
	return m, nil
}
