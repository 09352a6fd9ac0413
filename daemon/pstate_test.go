package daemon

import (
	"fmt"
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
)

// Every state × event pair of the process table, with what it must do:
// an action (the next machine and its effects, in order), or the event
// ignored or impossible in that state (no change, no effect).
func TestProcessTable(t *testing.T) {
	const (
		act = cellAct
		ign = cellIgnored
		imp = cellImpossible
	)
	respawn, once, wait := cltab.ModeRespawn, cltab.ModeOnce, cltab.ModeWait
	type fx = []effect
	m := func(s pstate, rapid int, again bool) machine { return machine{state: s, rapid: rapid, again: again} }
	cases := []struct {
		name string
		from machine
		in   input
		kind cellKind
		to   machine
		fx   fx
	}{
		// down
		{"first start", m(sDown, 1, false), input{ev: evStart, mode: once}, act, m(sUp, 1, false), fx{fxSpawn}},
		{"start after an exit is a restart", m(sDown, 2, true), input{ev: evStart, mode: respawn}, act, m(sUp, 2, false), fx{fxRespawn}},
		{"nothing to stop", m(sDown, 0, false), input{ev: evStop, grace: true}, ign, m(sDown, 0, false), nil},
		{"down: exit", m(sDown, 0, false), input{ev: evExit}, imp, m(sDown, 0, false), nil},
		{"down: deadline stopped as it fired", m(sDown, 0, false), input{ev: evDeadline}, ign, m(sDown, 0, false), nil},
		{"down: gone", m(sDown, 0, false), input{ev: evGone}, ign, m(sDown, 0, false), nil},
		{"down: rested", m(sDown, 0, false), input{ev: evRested}, ign, m(sDown, 0, false), nil},
		{"down: release clears the counts", m(sDown, 3, true), input{ev: evRelease}, act, m(sDown, 0, false), nil},
		{"down: start failed", m(sDown, 0, false), input{ev: evStartFailed}, imp, m(sDown, 0, false), nil},
		{"adopt a running process", m(sDown, 0, false), input{ev: evAdopt}, act, m(sUp, 0, false), nil},
		{"adopt a process group", m(sDown, 0, false), input{ev: evAdoptGroup}, act, m(sBackground, 0, false), fx{fxWatch}},

		// up
		{"up: start", m(sUp, 0, false), input{ev: evStart}, imp, m(sUp, 0, false), nil},
		{"stop with a grace", m(sUp, 0, false), input{ev: evStop, grace: true}, act, m(sTerm, 0, false), fx{fxTerm, fxArmKill}},
		{"stop without a grace", m(sUp, 0, false), input{ev: evStop}, act, m(sKill, 0, false), fx{fxKill}},
		{"once exits", m(sUp, 0, false), input{ev: evExit, mode: once, clean: true}, act, m(sDown, 0, false), fx{fxAdvance, fxReportExit}},
		{"once exits, leaving helpers", m(sUp, 0, false), input{ev: evExit, mode: once, left: true, clean: true}, act, m(sDown, 0, false), fx{fxResidue, fxAdvance, fxReportExit}},
		{"wait fails", m(sUp, 0, false), input{ev: evExit, mode: wait, fail: true}, act, m(sDown, 0, false), fx{fxAdvance, fxReportFailed}},
		{"wait fails, leaving helpers", m(sUp, 0, false), input{ev: evExit, mode: wait, fail: true, left: true}, act, m(sDown, 0, false), fx{fxResidue, fxAdvance, fxReportFailed}},
		{"respawn exits after a while", m(sUp, 4, false), input{ev: evExit, mode: respawn, limit: 5}, act, m(sDown, 0, true), fx{fxAdvance, fxReportExit}},
		{"respawn exits quickly", m(sUp, 4, false), input{ev: evExit, mode: respawn, quick: true, limit: 5}, act, m(sDown, 5, true), fx{fxAdvance, fxReportExit}},
		{"respawn exits too rapidly", m(sUp, 5, false), input{ev: evExit, mode: respawn, quick: true, limit: 5}, act, m(sResting, 6, true), fx{fxLogExit, fxThrottle, fxAdvance}},
		{"respawn fails too rapidly, leaving helpers", m(sUp, 5, false), input{ev: evExit, mode: respawn, quick: true, left: true, limit: 5}, act, m(sResting, 6, true), fx{fxLogExit, fxThrottle, fxResidue, fxAdvance}},
		{"respawn fails, leaving helpers", m(sUp, 0, false), input{ev: evExit, mode: respawn, left: true, limit: 5}, act, m(sDown, 0, true), fx{fxResidue, fxAdvance, fxReportExit}},
		{"respawn goes to the background", m(sUp, 2, false), input{ev: evExit, mode: respawn, left: true, clean: true, quick: true, limit: 5}, act, m(sBackground, 2, true), fx{fxWarnBackground, fxWatch, fxAdvance}},
		{"up: deadline", m(sUp, 0, false), input{ev: evDeadline}, imp, m(sUp, 0, false), nil},
		{"up: gone", m(sUp, 0, false), input{ev: evGone}, imp, m(sUp, 0, false), nil},
		{"up: rested", m(sUp, 0, false), input{ev: evRested}, imp, m(sUp, 0, false), nil},
		{"up: release", m(sUp, 2, true), input{ev: evRelease}, act, m(sUp, 0, false), nil},
		{"start fails", m(sUp, 0, false), input{ev: evStartFailed, mode: wait}, act, m(sDown, 0, false), nil},
		{"respawn start fails", m(sUp, 1, false), input{ev: evStartFailed, mode: respawn}, act, m(sResting, 1, false), fx{fxRestFailed}},
		{"up: adopt", m(sUp, 0, false), input{ev: evAdopt}, imp, m(sUp, 0, false), nil},
		{"up: adopt group", m(sUp, 0, false), input{ev: evAdoptGroup}, imp, m(sUp, 0, false), nil},

		// term
		{"term: start", m(sTerm, 0, false), input{ev: evStart}, imp, m(sTerm, 0, false), nil},
		{"term: stop again", m(sTerm, 0, false), input{ev: evStop, grace: true}, ign, m(sTerm, 0, false), nil},
		{"stopped", m(sTerm, 0, false), input{ev: evExit, mode: respawn, quick: true, limit: 0}, act, m(sDown, 0, false), fx{fxStopKill, fxAdvance, fxReportStopped}},
		{"stopped, group lingers", m(sTerm, 0, false), input{ev: evExit, mode: respawn, left: true, clean: true}, act, m(sLinger, 0, false), fx{fxWatch, fxAdvance, fxReportStopped}},
		{"did not stop in time", m(sTerm, 0, false), input{ev: evDeadline}, act, m(sKill, 0, false), fx{fxWarnLate, fxKill}},
		{"term: gone", m(sTerm, 0, false), input{ev: evGone}, imp, m(sTerm, 0, false), nil},
		{"term: rested", m(sTerm, 0, false), input{ev: evRested}, imp, m(sTerm, 0, false), nil},
		{"term: release", m(sTerm, 1, true), input{ev: evRelease}, act, m(sTerm, 0, false), nil},
		{"term: start failed", m(sTerm, 0, false), input{ev: evStartFailed}, imp, m(sTerm, 0, false), nil},
		{"term: adopt", m(sTerm, 0, false), input{ev: evAdopt}, imp, m(sTerm, 0, false), nil},
		{"term: adopt group", m(sTerm, 0, false), input{ev: evAdoptGroup}, imp, m(sTerm, 0, false), nil},

		// kill
		{"kill: start", m(sKill, 0, false), input{ev: evStart}, imp, m(sKill, 0, false), nil},
		{"kill: stop again", m(sKill, 0, false), input{ev: evStop}, ign, m(sKill, 0, false), nil},
		{"killed", m(sKill, 0, false), input{ev: evExit, mode: once}, act, m(sDown, 0, false), fx{fxAdvance, fxReportStopped}},
		{"kill: deadline", m(sKill, 0, false), input{ev: evDeadline}, imp, m(sKill, 0, false), nil},
		{"kill: gone", m(sKill, 0, false), input{ev: evGone}, imp, m(sKill, 0, false), nil},
		{"kill: rested", m(sKill, 0, false), input{ev: evRested}, imp, m(sKill, 0, false), nil},
		{"kill: release", m(sKill, 1, true), input{ev: evRelease}, act, m(sKill, 0, false), nil},
		{"kill: start failed", m(sKill, 0, false), input{ev: evStartFailed}, imp, m(sKill, 0, false), nil},
		{"kill: adopt", m(sKill, 0, false), input{ev: evAdopt}, imp, m(sKill, 0, false), nil},
		{"kill: adopt group", m(sKill, 0, false), input{ev: evAdoptGroup}, imp, m(sKill, 0, false), nil},

		// background
		{"background: start", m(sBackground, 0, true), input{ev: evStart}, imp, m(sBackground, 0, true), nil},
		{"stop a background group", m(sBackground, 0, true), input{ev: evStop, grace: true}, act, m(sLinger, 0, true), fx{fxTerm, fxArmKill}},
		{"stop a background group without a grace", m(sBackground, 0, true), input{ev: evStop}, act, m(sLinger, 0, true), fx{fxKill}},
		{"background: exit", m(sBackground, 0, true), input{ev: evExit}, imp, m(sBackground, 0, true), nil},
		{"background: deadline", m(sBackground, 0, true), input{ev: evDeadline}, imp, m(sBackground, 0, true), nil},
		{"background run ends", m(sBackground, 3, true), input{ev: evGone, mode: respawn, limit: 5}, act, m(sDown, 0, true), fx{fxGroupEnded, fxAdvance}},
		{"background run ends quickly", m(sBackground, 3, true), input{ev: evGone, mode: respawn, quick: true, limit: 5}, act, m(sDown, 4, true), fx{fxGroupEnded, fxAdvance}},
		{"background run ends too rapidly", m(sBackground, 5, true), input{ev: evGone, mode: respawn, quick: true, limit: 5}, act, m(sResting, 6, true), fx{fxGroupEnded, fxThrottle, fxAdvance}},
		{"adopted group of another mode ends", m(sBackground, 0, false), input{ev: evGone, mode: once, quick: true}, act, m(sDown, 0, false), fx{fxAdvance}},
		{"background: rested", m(sBackground, 0, true), input{ev: evRested}, imp, m(sBackground, 0, true), nil},
		{"background: release", m(sBackground, 2, true), input{ev: evRelease}, act, m(sBackground, 0, false), nil},
		{"background: start failed", m(sBackground, 0, true), input{ev: evStartFailed}, imp, m(sBackground, 0, true), nil},
		{"background: adopt", m(sBackground, 0, true), input{ev: evAdopt}, imp, m(sBackground, 0, true), nil},
		{"background: adopt group", m(sBackground, 0, true), input{ev: evAdoptGroup}, imp, m(sBackground, 0, true), nil},

		// linger
		{"linger: start", m(sLinger, 0, false), input{ev: evStart}, imp, m(sLinger, 0, false), nil},
		{"linger: stop again", m(sLinger, 0, false), input{ev: evStop, grace: true}, ign, m(sLinger, 0, false), nil},
		{"linger: exit", m(sLinger, 0, false), input{ev: evExit}, imp, m(sLinger, 0, false), nil},
		{"lingering group killed", m(sLinger, 0, false), input{ev: evDeadline}, act, m(sDown, 0, false), fx{fxKill, fxAdvance}},
		{"lingering group gone", m(sLinger, 0, true), input{ev: evGone, mode: respawn, quick: true}, act, m(sDown, 0, true), fx{fxStopKill, fxAdvance}},
		{"linger: rested", m(sLinger, 0, false), input{ev: evRested}, imp, m(sLinger, 0, false), nil},
		{"linger: release", m(sLinger, 1, true), input{ev: evRelease}, act, m(sLinger, 0, false), nil},
		{"linger: start failed", m(sLinger, 0, false), input{ev: evStartFailed}, imp, m(sLinger, 0, false), nil},
		{"linger: adopt", m(sLinger, 0, false), input{ev: evAdopt}, imp, m(sLinger, 0, false), nil},
		{"linger: adopt group", m(sLinger, 0, false), input{ev: evAdoptGroup}, imp, m(sLinger, 0, false), nil},

		// resting
		{"resting: start", m(sResting, 6, true), input{ev: evStart}, imp, m(sResting, 6, true), nil},
		{"resting: stop", m(sResting, 6, true), input{ev: evStop, grace: true}, ign, m(sResting, 6, true), nil},
		{"resting: exit", m(sResting, 6, true), input{ev: evExit}, imp, m(sResting, 6, true), nil},
		{"resting: deadline", m(sResting, 6, true), input{ev: evDeadline}, ign, m(sResting, 6, true), nil},
		{"resting: gone", m(sResting, 6, true), input{ev: evGone}, imp, m(sResting, 6, true), nil},
		{"rest over", m(sResting, 6, true), input{ev: evRested, mode: respawn}, act, m(sDown, 0, true), fx{fxAdvance}},
		{"rest ended early", m(sResting, 6, true), input{ev: evRelease, mode: respawn}, act, m(sDown, 0, false), fx{fxStopRest}},
		{"resting: start failed", m(sResting, 6, true), input{ev: evStartFailed}, imp, m(sResting, 6, true), nil},
		{"resting: adopt", m(sResting, 6, true), input{ev: evAdopt}, imp, m(sResting, 6, true), nil},
		{"resting: adopt group", m(sResting, 6, true), input{ev: evAdoptGroup}, imp, m(sResting, 6, true), nil},
	}
	var seen [nStates][nEvents]bool
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, ev := c.from.state, c.in.ev
			seen[s][ev] = true
			if k := table[s][ev].kind; k != c.kind {
				t.Errorf("%v × %v is %s, want %s", s, ev, kindName(k), kindName(c.kind))
			}
			if k := table[s][ev].kind; k == cellAct && table[s][ev].do == nil {
				t.Errorf("%v × %v is an action without a function", s, ev)
			}
			to, fx := step(c.from, c.in)
			if to != c.to {
				t.Errorf("%v × %v: machine %+v, want %+v", s, ev, to, c.to)
			}
			if !slices.Equal(fx, c.fx) {
				t.Errorf("%v × %v: effects %v, want %v", s, ev, fx, c.fx)
			}
		})
	}
	for s := range nStates {
		for ev := range nEvents {
			if !seen[s][ev] {
				t.Errorf("no case for %v × %v (%s)", s, ev, kindName(table[s][ev].kind))
			}
		}
	}
}

func kindName(k cellKind) string {
	switch k {
	case cellAct:
		return "an action"
	case cellIgnored:
		return "ignored"
	case cellImpossible:
		return "impossible"
	}
	return fmt.Sprintf("cell kind %d", k)
}

// The names of states, events and effects are complete: a constant added
// without its name would print as an empty string in logs and tests.
func TestProcessTableNames(t *testing.T) {
	for s := range nStates {
		if s.String() == "" {
			t.Errorf("state %d has no name", s)
		}
	}
	for ev := range nEvents {
		if ev.String() == "" {
			t.Errorf("event %d has no name", ev)
		}
	}
	for f := range nEffects {
		if f.String() == "" {
			t.Errorf("effect %d has no name", f)
		}
	}
}

// An impossible event is logged as the bug it is, and changes nothing.
func TestImpossibleTransitionReported(t *testing.T) {
	fx := &effects{}
	e := &Engine{log: zap.New(&logCore{fx: fx}), lingering: map[*proc]bool{}}
	p := &proc{g: &group{name: "g"}, entry: &cltab.Entry{Group: "g", Tag: "a", Mode: cltab.ModeOnce}}
	p.m = machine{state: sDown, rapid: 2, again: true}
	e.step(p, input{ev: evExit, left: true})
	if want := (machine{state: sDown, rapid: 2, again: true}); p.m != want {
		t.Errorf("machine %+v after an impossible event, want %+v", p.m, want)
	}
	if got, want := fx.take(), []string{"error: impossible process transition (a)"}; !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}
