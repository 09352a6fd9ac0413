package cluster

// The simulation's checker, run after every event (HA.md):
//
// I1: at no instant do two nodes run processes of one HA group at a
// level other than stop. A process counts until it has actually exited
// or been killed (by the engine, the keeper, or its machine's death):
// stopping is running, and a frozen or dead daemon's services run on.
//
// I5: while no fault is active (a calm), a quorum of the voters runs
// and an eligible node (running, not ruled out for the group) exists,
// every group of the hactl runs somewhere (its service at its hactl
// level) within bound() of the later of: it went down, and that
// condition began to hold.

import (
	"fmt"
	"time"

	"github.com/clinit/clinit/cluster/raftnode"
)

type simChecker struct {
	doubleFrom    map[string]time.Duration // groups running twice, since
	longestDouble time.Duration
	doubles       int
	downFrom      map[string]time.Duration // groups running nowhere, since
	longestDown   time.Duration
	okFrom        map[string]time.Duration // I5's condition holds, since
	longestOwed   time.Duration            // down while the condition held
	failure       string
}

func (c *simChecker) init() {
	c.doubleFrom, c.downFrom, c.okFrom = map[string]time.Duration{}, map[string]time.Duration{}, map[string]time.Duration{}
}

// bound is I5's: once a calm begins (or the group goes down in one),
//
//	election          2 simElectionMax + 2 ticks + barrier: a leader ready
//	                  (a split vote costs a second election timeout);
//	+ old copy gone   lease·(1+drift) + fencetime after the new leader's
//	                  election or the old owner's last renewal; with
//	                  stomith, lease·(1+drift) (a lapse, or not alive
//	                  and silent the fence silence) + the stomith + its backoff
//	                  (at most 30 s, stomith.go), for a fence that failed
//	                  in the storm;
//	+ a report        a release or a failure report lost in the storm:
//	                  its 10 s timeout and the retry a second later;
//	+ a renewal       lease: the new owner hears its grant at its next
//	                  renewal (RenewEvery), or after a lost one
//	                  (RenewTimeout + RenewEvery/4 + RenewEvery);
//	+ the lifecycle   a level stopping (stoptimeout), the release entry,
//	                  plan, test, start, and 50 ms of messages and commits.
func (s *sim) bound() time.Duration {
	election := 2*simElectionMax + 2*simTick + simBarrierMax
	gone := time.Duration(float64(simLease)*(1+raftnode.Drift)) + simFenceTime
	if s.cfg.stomith {
		gone = time.Duration(float64(simLease)*(1+raftnode.Drift)) + simStomithMax + simBackoffMax + simTick
	}
	report := simProposeWait + time.Second
	lifecycle := simStopTimeout + simStopMax + simPlanMax + simTestMax + simStartMax + 50*time.Millisecond
	return election + gone + report + simLease + lifecycle
}

// check is run after every event.
func (s *sim) check() {
	c := &s.chk
	nowMs := simBase.Add(s.now).UnixMilli()
	quorate := 0
	for _, v := range s.nodes[:s.cfg.voters] {
		if v.running() {
			quorate++
		}
	}
	for _, h := range s.hactl {
		g := h.Group
		runners, running := 0, false
		var who []string
		for _, n := range s.nodes {
			here := false
			for _, p := range n.procs {
				if p.alive && p.group == g && p.level != LevelStop {
					here = true
					running = running || (p.kind == "service" && p.level == h.Level)
				}
			}
			if here {
				runners++
				who = append(who, n.name)
			}
		}
		// I1
		if runners > 1 {
			if _, ok := c.doubleFrom[g]; !ok {
				c.doubleFrom[g] = s.now
				c.doubles++
				s.logf("I1 VIOLATED: %s runs on %v", g, who)
			}
		} else if from, ok := c.doubleFrom[g]; ok {
			c.longestDouble = max(c.longestDouble, s.now-from)
			delete(c.doubleFrom, g)
			c.fail(fmt.Sprintf("I1: %s ran on two nodes for %v from %.3fs", g, s.now-from, from.Seconds()))
		}
		// I5
		if running {
			if from, ok := c.downFrom[g]; ok {
				c.longestDown = max(c.longestDown, s.now-from)
				delete(c.downFrom, g)
			}
		} else if _, ok := c.downFrom[g]; !ok {
			c.downFrom[g] = s.now
		}
		eligible := false
		for _, n := range s.nodes {
			eligible = eligible || (n.running() && !s.state.RuledOut(g, n.name, nowMs))
		}
		if !(s.calm && quorate >= s.majority() && eligible) {
			delete(c.okFrom, g)
			continue
		}
		if _, ok := c.okFrom[g]; !ok {
			c.okFrom[g] = s.now
		}
		if !running {
			owed := s.now - max(c.downFrom[g], c.okFrom[g])
			c.longestOwed = max(c.longestOwed, owed)
			if owed > s.bound() {
				c.fail(fmt.Sprintf("I5: %s has run nowhere for %v while a quorum and an eligible node could talk (bound %v)", g, owed, s.bound()))
			}
		}
	}
}

func (c *simChecker) fail(msg string) {
	if c.failure == "" {
		c.failure = msg
	}
}

// finish closes what is still open at the end of a run.
func (s *sim) finish() {
	c := &s.chk
	for g, from := range c.doubleFrom {
		c.longestDouble = max(c.longestDouble, s.now-from)
		c.fail(fmt.Sprintf("I1: %s runs on two nodes at the end, since %.3fs", g, from.Seconds()))
	}
	for _, from := range c.downFrom {
		c.longestDown = max(c.longestDown, s.now-from)
	}
}
