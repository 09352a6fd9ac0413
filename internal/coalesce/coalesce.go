// Package coalesce merges bursts of changes into few runs of the work
// they call for (a rewrite, a gossip, a reread): a Coalescer is told
// that something changed, and runs its flush when it is due, not once
// per change.
//
// A Coalescer belongs to one goroutine, its owner's loop: its methods
// are called from that goroutine only, and Flush runs there, inside
// Poll or FlushNow. Its timer only signals C, which the loop selects on
// and answers with Poll. (serf's coalesce.go does the same for member
// events, with a goroutine of its own.)
package coalesce

import "time"

// Clock is what a Coalescer keeps time with: the wall clock, or a fake
// one in tests.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f, on a goroutine of its own, once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop cancels the call; false if it has been made already.
	Stop() bool
}

// Wall is the clock of production.
var Wall Clock = wall{}

type wall struct{}

func (wall) Now() time.Time { return time.Now() }

func (wall) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Config says when a flush is due, once something is marked:
//   - Gap has passed since the last flush. The first change after a
//     quiet time is flushed at once, the next ones together a Gap after
//     it: a steady stream of changes is flushed once per Gap, never put
//     off further.
//   - With Quiet, the marks have paused for Quiet (editors write in
//     bursts), or Quantum has passed since the first mark, so that even
//     a stream without pauses is flushed in the end.
type Config struct {
	// Gap is the least time between two flushes, asked at each Poll (it
	// may grow with the cluster); nil: none.
	Gap func() time.Duration
	// Quiet is how long the marks must pause before a flush; 0: no
	// pause is waited for.
	Quiet time.Duration
	// Quantum bounds the wait for Quiet, from the first mark; 0: no
	// bound.
	Quantum time.Duration
	// Flush does the work; it may Mark again, for a later flush.
	Flush func()
}

// Coalescer runs Config.Flush when it is due, after marks.
type Coalescer struct {
	cfg   Config
	clock Clock
	c     chan struct{}

	dirty    bool
	first    time.Time // the first mark since the last flush
	last     time.Time // the last mark
	flushed  time.Time // the end of the last flush; zero: none yet, or expedited
	timer    Timer
	armedFor time.Time // when timer fires
	stopped  bool
}

// New returns a Coalescer with nothing marked.
func New(clock Clock, cfg Config) *Coalescer {
	return &Coalescer{cfg: cfg, clock: clock, c: make(chan struct{}, 1)}
}

// C receives when a flush may have come due: the owner answers it with
// Poll.
func (co *Coalescer) C() <-chan struct{} { return co.c }

// Mark records a change to flush. It runs nothing: the owner calls
// Poll before it waits again.
func (co *Coalescer) Mark() {
	if co.stopped {
		return
	}
	now := co.clock.Now()
	if !co.dirty {
		co.dirty, co.first = true, now
	}
	co.last = now
}

// Pending reports whether a mark waits for its flush.
func (co *Coalescer) Pending() bool { return co.dirty }

// Expedite forgets the last flush: the next mark is flushed at once, as
// after a quiet time (a change of this node's own is answered at once).
func (co *Coalescer) Expedite() { co.flushed = time.Time{} }

// Poll runs the flush if it is due, else makes C receive when it will
// be. It reports whether it ran the flush.
func (co *Coalescer) Poll() bool {
	if co.stopped || !co.dirty {
		return false
	}
	now := co.clock.Now()
	if due := co.due(); due.After(now) {
		co.arm(now, due)
		return false
	}
	co.run()
	return true
}

// FlushNow runs the flush at once, marked or not; the next one waits
// the gap from it.
func (co *Coalescer) FlushNow() {
	if !co.stopped {
		co.run()
	}
}

func (co *Coalescer) run() {
	co.dirty = false
	co.cfg.Flush()
	co.flushed = co.clock.Now()
	if co.dirty { // marked again by the flush
		co.arm(co.flushed, co.due())
	}
}

// Stop drops what is marked and cancels the timer: nothing is flushed
// after it.
func (co *Coalescer) Stop() {
	co.stopped, co.dirty = true, false
	if co.timer != nil {
		co.timer.Stop()
		co.timer = nil
	}
}

// due is when the marked flush may run.
func (co *Coalescer) due() time.Time {
	at := co.first
	if co.cfg.Quiet > 0 {
		at = co.last.Add(co.cfg.Quiet)
		if co.cfg.Quantum > 0 {
			if bound := co.first.Add(co.cfg.Quantum); bound.Before(at) {
				at = bound
			}
		}
	}
	if co.cfg.Gap != nil && !co.flushed.IsZero() {
		if next := co.flushed.Add(co.cfg.Gap()); next.After(at) {
			at = next
		}
	}
	return at
}

// arm makes C receive at due. A timer still to fire, no later than
// due, is kept: if it fires early, Poll arms it again. One whose time
// has come has fired, or its signal is on its way.
func (co *Coalescer) arm(now, due time.Time) {
	if co.timer != nil {
		if co.armedFor.After(now) && !co.armedFor.After(due) {
			return
		}
		co.timer.Stop()
	}
	co.armedFor = due
	co.timer = co.clock.AfterFunc(due.Sub(now), co.fire)
}

// fire runs on the timer's goroutine: it only signals C.
func (co *Coalescer) fire() {
	select {
	case co.c <- struct{}{}:
	default:
	}
}
