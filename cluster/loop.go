package cluster

import (
	"context"
	"time"

	"github.com/clinit/clinit/internal/coalesce"
)

// The loop: Cluster.run is the one goroutine that owns the view, the
// copies of the replicated files, the HA state and hastat. Others hand
// it functions: call waits for one to run, enqueue (memberlist's
// delegates) never blocks. Bursts of events are flushed together.

func (c *Cluster) call(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case c.reqs <- func() { f(); close(ran) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

// enqueue hands f to the loop from a memberlist delegate. It never
// blocks memberlist: when the loop is that far behind, the event is
// dropped and the loop resyncs the membership from memberlist instead;
// dropped statuses and files come back with the next push/pull.
func (c *Cluster) enqueue(f func()) {
	select {
	case c.events <- f:
	default:
		c.overflow.Store(true)
	}
}

// run is the loop that owns the view, the replicas and hastat.
func (c *Cluster) run() {
	defer close(c.done)
	defer func() {
		if c.summaryTimer != nil {
			c.summaryTimer.Stop()
		}
		for ch := range c.watchers {
			c.dropWatcher(ch)
		}
	}()
	loadTick := time.NewTicker(loadEvery)
	defer loadTick.Stop()
	defer c.flushes.Stop()
	defer c.hastat.Stop()
	defer c.pushPull.Stop()
	defer c.selfSend.Stop()
	c.flushes.Mark()
	for {
		if c.flushes.Poll() || !c.flushes.Pending() {
			c.hastat.Poll() // after the HA rules saw the last change
		}
		c.pushPull.Poll()
		c.selfSend.Poll()
		c.noteHandoffs()
		select {
		case <-c.flushes.C():
		case <-c.hastat.C():
		case <-c.pushPull.C():
		case <-c.selfSend.C():
		case <-c.stop:
			return
		case f := <-c.events:
			f()
		case f := <-c.reqs:
			f()
		case ev := <-c.notes:
			c.emit(ev)
		case <-c.statusCh:
			// This node's own change is answered at once: a failed
			// test is ruled out in the same status that shows it.
			c.publishLocal()
			c.flushes.Expedite()
		case <-loadTick.C:
			c.refreshLoad()
		case <-c.ha.timer.C:
			c.flushes.Mark()
		}
		for n := len(c.events); n > 0; n-- {
			(<-c.events)()
		}
		if c.overflow.Swap(false) {
			c.log.Warn("cluster events arrived faster than handled; resyncing the membership")
			c.resync()
		}
	}
}

// newCoalescers makes the coalescers of what events change, on clock.
// A burst of events (a hundred members' statuses, a thousand groups
// placed) is flushed once per flushGap, not once per event: each flush
// runs the HA rules over every group, and marks hastat to be written.
func (c *Cluster) newCoalescers(clock coalesce.Clock) {
	c.flushes = coalesce.New(clock, coalesce.Config{Gap: c.flushGap, Flush: c.flush})
	c.hastat = coalesce.New(clock, coalesce.Config{Gap: c.hastatGap, Flush: c.writeHastat})
	c.pushPull = coalesce.New(clock, coalesce.Config{Gap: func() time.Duration { return localGap }, Flush: c.rebuildLocal})
	c.selfSend = coalesce.New(clock, coalesce.Config{Gap: c.selfGap, Flush: c.sendSelf})
}

// flushGap is the least time between two flushes: 50 ms, or 5 ms per
// member in bigger clusters. A flush runs the HA rules over every group
// (0.5 ms for 1,000 groups on 100 nodes, 3 ms while they are being
// placed) and rewrites hastat; statuses arrive faster the more members
// there are, and a hundred daemons flushing every 50 ms on one machine
// took more CPU than it had.
func (c *Cluster) flushGap() time.Duration {
	return max(50*time.Millisecond, time.Duration(len(c.view.members))*5*time.Millisecond)
}

// flush runs the HA rules on what the last events changed; hastat
// shows the changes and what the rules did, once per hastatGap.
func (c *Cluster) flush() {
	c.decideHA()
	c.hastat.Mark()
	c.noteSummary()
}

// changed marks what a change of a node's status makes stale: the HA
// rules, hastat (through them) and the push/pull state.
func (c *Cluster) changed() {
	c.flushes.Mark()
	c.pushPull.Mark()
}
