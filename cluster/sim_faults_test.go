package cluster

// The simulation's faults: storms of random faults, each followed by a
// calm in which every fault is healed (a dead machine may stay dead) and
// which lasts longer than the liveness bound, so that I5 is checked after
// every storm.

import (
	"fmt"
	"time"
)

const (
	simStormMin   = 5 * time.Second
	simStormMax   = 15 * time.Second
	simFaultEvery = time.Second // on average, during a storm
)

// schedule queues the storms and calms of a run and returns its length.
// The run starts calm: the first placement is checked against the
// bound too.
func (s *sim) schedule() time.Duration {
	s.calm = true
	t := s.bound() + time.Second
	for i := 0; i < s.cfg.storms; i++ {
		s.at(t, s.stormStart)
		storm := simStormMin + s.rand(simStormMax-simStormMin)
		for f := t + s.rand(2*simFaultEvery); f < t+storm; f += s.rand(2 * simFaultEvery) {
			s.at(f, s.fault)
		}
		t += storm
		s.at(t, s.calmStart)
		t += s.bound() + 2*time.Second
	}
	return t
}

func (s *sim) stormStart() {
	s.calm = false
	s.logf("storm")
	// A machine fenced or dead since the last storm comes back, or not.
	for _, n := range s.nodes {
		if !n.up && s.rng.Intn(2) == 0 {
			s.machineUp(n)
		}
	}
}

// calmStart heals every fault: links, frozen and dead daemons, broken
// tests and stomith; a dead machine comes back, or stays dead.
func (s *sim) calmStart() {
	s.faultGen++
	s.healLinks()
	s.stomithBroken = false
	for _, n := range s.nodes {
		n.broken = map[string]bool{}
		switch {
		case !n.up:
			if s.rng.Intn(2) == 0 {
				s.machineUp(n)
			}
		case !n.daemon:
			s.startDaemon(n)
		case n.frozen:
			s.thaw(n)
		}
	}
	s.calm = true
	s.logf("calm")
}

func (s *sim) healLinks() {
	for i := range s.links {
		for j := range s.links[i] {
			s.links[i][j] = simLink{}
		}
	}
}

// later runs fn after d unless the storm has ended by then (the calm
// heals everything itself).
func (s *sim) later(d time.Duration, fn func()) {
	gen := s.faultGen
	s.at(s.now+d, func() {
		if s.faultGen == gen {
			fn()
		}
	})
}

// fault injects one random fault.
func (s *sim) fault() {
	n := s.nodes[s.rng.Intn(len(s.nodes))]
	switch k := s.rng.Intn(11); k {
	case 0: // the machine dies, processes and keeper with it
		s.machineDown(n, "dies")
		s.later(time.Second+s.rand(15*time.Second), func() { s.machineUp(n) })
	case 1: // the daemon is SIGKILLed, its services left running
		if n.up && n.daemon {
			s.logf("%s daemon killed", n.name)
			s.stopDaemon(n)
			s.later(500*time.Millisecond+s.rand(10*time.Second), func() {
				if n.up && !n.daemon {
					s.startDaemon(n)
				}
			})
		}
	case 2: // the daemon is frozen, its processes and keeper are not
		if n.running() {
			s.logf("%s daemon frozen", n.name)
			s.freeze(n)
			s.later(500*time.Millisecond+s.rand(15*time.Second), func() {
				s.logf("%s daemon thawed", n.name)
				s.thaw(n)
			})
		}
	case 3, 4: // a partition: 1|rest, 2|rest, ...; both ways, or one
		side, k := map[int]bool{}, 1+s.rng.Intn(len(s.nodes)/2)
		for len(side) < k {
			side[s.rng.Intn(len(s.nodes))] = true
		}
		dir := s.rng.Intn(3) // 0: both ways, 1: out of side only, 2: into side only
		for i := range s.nodes {
			for j := range s.nodes {
				if side[i] && !side[j] && dir != 2 {
					s.links[i][j].cut = true
				}
				if !side[i] && side[j] && dir != 1 {
					s.links[i][j].cut = true
				}
			}
		}
		s.logf("partition %s (direction %d)", fmt.Sprint(side), dir)
	case 5: // a node's messages delayed far beyond normal
		d := time.Second + s.rand(simSlowMax)
		for j := range s.nodes {
			s.links[n.i][j].slow, s.links[j][n.i].slow = d, d
		}
		s.logf("%s slow: %v", n.name, d)
	case 6: // a node's messages lost at random
		p := 0.2 + 0.7*s.rng.Float64()
		for j := range s.nodes {
			s.links[n.i][j].loss, s.links[j][n.i].loss = p, p
		}
		s.logf("%s loses %.0f%%", n.name, 100*p)
	case 7:
		s.logf("links healed")
		s.healLinks()
	case 8: // a group's test fails on a node
		g := s.hactl[s.rng.Intn(len(s.hactl))].Group
		n.broken[g] = true
		s.logf("%s fails %s's test", n.name, g)
	case 9:
		if s.cfg.stomith {
			s.stomithBroken = !s.stomithBroken
			s.logf("stomith broken: %v", s.stomithBroken)
		}
	case 10: // something down comes back
		switch {
		case !n.up:
			s.machineUp(n)
		case !n.daemon:
			s.startDaemon(n)
		case n.frozen:
			s.thaw(n)
		}
	}
}
