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
	simStormMin   = 8 * time.Second
	simStormMax   = 25 * time.Second
	simFaultEvery = 2 * time.Second // on average, during a storm
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

// impaired counts the nodes down, or with a dead or frozen daemon.
func (s *sim) impaired() int {
	k := 0
	for _, n := range s.nodes {
		if !n.running() {
			k++
		}
	}
	return k
}

// fault injects one random fault, healed after a while. Node faults are
// mostly kept to a minority of the voters at a time, so that the rest
// of the cluster has a quorum and moves groups: a storm that stops every
// node only shows that nothing moves.
func (s *sim) fault() {
	n := s.nodes[s.rng.Intn(len(s.nodes))]
	k := s.rng.Intn(9)
	if k == 8 && !s.cfg.stomith {
		k = s.rng.Intn(3)
	}
	if k < 3 && (!n.running() || s.impaired() >= s.cfg.voters-s.majority()) && s.rng.Intn(4) != 0 {
		k = 3 + s.rng.Intn(5) // a network fault instead
	}
	heal := func(what string, fn func()) {
		s.later(500*time.Millisecond+s.rand(15*time.Second), func() {
			s.logf("%s healed: %s", n.name, what)
			fn()
		})
	}
	switch k {
	case 0: // the machine dies, processes and keeper with it
		s.machineDown(n, "dies")
		heal("restarted", func() { s.machineUp(n) })
	case 1: // the daemon is SIGKILLed, its services left running
		if n.up && n.daemon {
			s.logf("%s daemon killed", n.name)
			s.stopDaemon(n)
			heal("daemon restarted", func() {
				if n.up && !n.daemon {
					s.startDaemon(n)
				}
			})
		}
	case 2: // the daemon is frozen, its processes and keeper are not
		if n.running() {
			s.logf("%s daemon frozen", n.name)
			s.freeze(n)
			heal("thawed", func() { s.thaw(n) })
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
		heal("partition", s.healLinks)
	case 5: // a node's messages delayed far beyond normal
		d := time.Second + s.rand(simSlowMax)
		s.setLinks(n, simLink{slow: d})
		s.logf("%s slow: %v", n.name, d)
		heal("slow", func() { s.setLinks(n, simLink{}) })
	case 6: // a node's messages lost at random
		p := 0.2 + 0.7*s.rng.Float64()
		s.setLinks(n, simLink{loss: p})
		s.logf("%s loses %.0f%%", n.name, 100*p)
		heal("loss", func() { s.setLinks(n, simLink{}) })
	case 7: // a group's test fails on a node
		g := s.hactl[s.rng.Intn(len(s.hactl))].Group
		n.broken[g] = true
		s.logf("%s fails %s's test", n.name, g)
	case 8:
		s.stomithBroken = true
		s.logf("stomith broken")
		heal("stomith", func() { s.stomithBroken = false })
	}
}

// setLinks sets every link to and from n.
func (s *sim) setLinks(n *simNode, l simLink) {
	for j := range s.nodes {
		if j != n.i {
			s.links[n.i][j], s.links[j][n.i] = l, l
		}
	}
}
