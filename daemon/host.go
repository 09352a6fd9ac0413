package daemon

import (
	"syscall"
	"time"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/coalesce"
	"github.com/clinit/clinit/internal/reaper"
)

// starter is how the engine starts, signals and looks at its children.
// Production uses the spawner (children through the reaper, signals and
// process groups of the kernel); the engine's transcript tests put a fake
// in its place. Called by the engine loop only.
type starter interface {
	// spawn starts ent's command at level; onExit is called once, from
	// any goroutine, with how it ended.
	spawn(ent *cltab.Entry, level, exitFile, outFifo string, onExit func(*reaper.Exit)) (pid int, ticks uint64, err error)
	// readOutput starts reading the output of the children spawned since
	// it was last called: the engine calls it once it is done with a
	// batch of events.
	readOutput()
	// kill signals process group pgid.
	kill(pgid int, sig syscall.Signal) error
	// groupAlive reports whether process group pgid has live members.
	groupAlive(pgid int) bool
	// orphans delivers a value after members of children's process
	// groups that were not the children themselves have been reaped: a
	// lingering process group may be empty now. stop ends the deliveries.
	orphans() (c <-chan struct{}, stop func())
}

// clock is the engine's time: the wall clock in production, a fake one
// in the transcript tests, where timers fire only when the script says.
type clock interface {
	Now() time.Time
	// AfterFunc calls f, on a goroutine of its own, once d has passed.
	AfterFunc(d time.Duration, f func()) timer
}

// timer is a pending AfterFunc.
type timer interface {
	// Stop cancels the call; false if it has been made already.
	Stop() bool
}

func (s *spawner) kill(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) }

func (s *spawner) groupAlive(pgid int) bool { return groupAlive(pgid) }

func (s *spawner) orphans() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	reaper.NotifyOrphans(c)
	return c, func() { reaper.StopOrphans(c) }
}

// engineClock is the engine's clock as its coalescers keep time.
type engineClock struct{ e *Engine }

func (c engineClock) Now() time.Time { return c.e.clock.Now() }

func (c engineClock) AfterFunc(d time.Duration, f func()) coalesce.Timer {
	return c.e.clock.AfterFunc(d, f)
}

// wallClock is the clock of production.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) AfterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }
