package cluster

// A deterministic simulation of the HA rules (issue 5): dozens of nodes
// in one process, each deciding with decide() on its own view of the
// cluster, over a fake clock advanced in fixed steps, with random kills,
// restarts, partitions, heals, graceful leaves, hactl edits and failing
// tests from a seeded math/rand. After every step it checks the two
// invariants of SPEC 7: (a) never two nodes running one group, and (b)
// no group left down longer than sim.bound while a quorate eligible node
// exists; and (c) stickiness: a group that runs is never given up to
// another claim (with (a) holding, such a claim can only be an out of
// date status).
//
// The nodes run the real decide() and the revival tracking of harun.go;
// what Cluster.decideHA does around them (telling the engine, fencing,
// probing, publishing Bad) is mirrored in sim.decide.
//
// Reproduce a failure with the seed it prints:
//
//	go test -run TestHASim ./cluster/ -sim.seed=N
//
// (or CLINIT_SIM_SEED=N). A soak over seeds 1 to N: -sim.runs=N (or
// CLINIT_SIM_RUNS=N).

import (
	"flag"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

var (
	simSeedFlag = flag.Int64("sim.seed", 0, "run only the HA simulation with this seed (0: the fixed and random seeds)")
	simRunsFlag = flag.Int64("sim.runs", 0, "run the HA simulation with seeds 1 to this (a soak)")
)

// The model's timings, in milliseconds of the fake clock.
const (
	simStep = 50 // the clock advances this much per step

	// Gossip: a status or hactl version reaches each node that can be
	// reached, this long after it was made. Messages to a node that
	// cannot be reached are lost; only push/pull (simPushPull, as
	// memberlist's PushPullInterval) and joins bring the rest.
	simGossipMin = 100
	simGossipMax = 250
	simPushPull  = 15000

	// Membership: a node that cannot be reached any more (killed or on
	// the other side of a partition) is seen dead this long after, on
	// both sides; one that can be reached again is seen alive within
	// simReviveMax. A restarted node joins after simJoin, through a
	// push/pull with one node it reaches.
	simDetect    = 2000
	simReviveMax = 500
	simJoin      = 200

	// Fencing: :::fencetime:, and the time a stomith takes to kill a node.
	// Without stomith, a dead node's groups wait the safe wait, then a
	// probe of it (a push/pull) that fails after simProbeTimeout (as
	// memberlist's TCPTimeout) when it cannot be reached.
	simFenceTime    = 3000
	simFenceDelay   = 500
	simProbeTimeout = 2000

	// The HA rules (haConfig). A claim is held longer than a partition
	// takes to be noticed (simDetect) after the claim's gossip was lost
	// (simGossipMax), and a step: a claimant cut off from the majority
	// then sees it lost the quorum before it goes further, and the other
	// side, which never saw the claim, may claim too. The default
	// planHold, 300ms, is shorter than that, and even than twice the
	// longest gossip delay: two nodes that rank themselves first (their
	// views differ for a moment) claim 100ms apart, and the first moves
	// on before the second's claim reaches it; or two claim on the two
	// sides of a fresh partition. Either way both start the group. Run
	// with CLINIT_SIM_PLANHOLD=300 (both happen) or 600 (the second only)
	// to see it.
	simPlanHold    = simDetect + simGossipMax + simStep
	simClaimDelay  = 500
	simTestBackoff = 20000
	simFailBackoff = 30000

	// The engine: a tell takes effect at the next step; a test runs
	// simTest, a level starts in simStart, stopping a level's services
	// takes simStop, stopping a running plan or test entry simTestStop.
	// The plan level of group g1 runs an entry for simLongPlan, longer
	// than the hold; the test of g2 takes simLongTest.
	simTest     = 200
	simStart    = 200
	simStop     = 300
	simTestStop = 100
	simLongPlan = simPlanHold + 400
	simLongTest = 1000

	// Caps on the failures injected, per group, so that an eligible node
	// exists and the liveness bound is finite.
	simMaxTestFails  = 3
	simMaxLevelFails = 1

	// Random events come in storms of simStorm, one every simEventEvery
	// on average, separated by calms of simCalm, longer than the liveness
	// bound, so that it is checked after each storm.
	simStorm      = 10000
	simCalm       = 40000
	simEventEvery = 400

	// A node's load average is read every simLoadEvery: its base load
	// plus simLoadPerGroup for each group it runs.
	simLoadEvery    = 10000
	simLoadPerGroup = 0.5
)

// bound is how long a group may stay down after the later of: it went
// down, a quorate eligible node exists, the last random event. After the
// last event, in turn: the views converge (a death is seen after
// simDetect, a revival within simReviveMax, a join after simJoin,
// statuses within simGossipMax); a dead holder's groups wait the safe
// wait (detectMax + QuorumGrace + fenceTime after its death was seen)
// and a probe that fails after simProbeTimeout, or a stomith of
// simFenceDelay and its gossip; a quorum regained settles quorumStable;
// the best candidate claims at once, but candidates that do not claim
// (each ranks another first, for a gossip delay) cost up to a claim
// delay, counted twice; each failing candidate (at most simMaxTestFails
// plus simMaxLevelFails of them) costs a cycle, and the last, successful
// attempt less than one. A cycle, from a claim to the next candidate's:
// the tell, the plan hold (or the long plan of g1), the tell to test,
// the test (the long one of g2), the level's start (a level that fails),
// the stop, the gossip of the result, and a decision step at each.
// With the model's timings it is about 38 s; the longest downtimes seen
// are 5-15 s.
func (s *sim) bound() int64 {
	hold := max(s.cfg.planHold.Milliseconds(), simLongPlan)
	cycle := simStep + hold + simStep + simLongTest + simStep + simStart + simStep + simStop + simGossipMax + 3*simStep
	dead := max(s.cfg.safeWait().Milliseconds()+simProbeTimeout, simFenceDelay+simGossipMax)
	return simDetect + simGossipMax + simReviveMax + simJoin + dead + quorumStable.Milliseconds() +
		2*simClaimDelay + (simMaxTestFails+simMaxLevelFails+1)*cycle
}

var simBase = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func simTime(ms int64) time.Time { return simBase.Add(time.Duration(ms) * time.Millisecond) }
func simMs(t time.Time) int64    { return t.Sub(simBase).Milliseconds() }

// simGroup is one group in a node's simulated engine.
type simGroup struct {
	level, state string
	since        int64
	svc          bool   // the services of a level (not plan, test or stop) are up
	svcLevel     string // ... of this level
	busy         bool   // a plan or test entry runs
	until        int64  // when STOPPING, STARTING or CHECKING ends
	throttled    bool
}

// simHactl is one version of the replicated hactl.
type simHactl struct {
	version int
	origin  string
	groups  []*cltab.HAGroup
}

func (h *simHactl) newer(o *simHactl) bool {
	return h.version > o.version || (h.version == o.version && h.origin > o.origin)
}

func (h *simHactl) group(g string) *cltab.HAGroup {
	for _, x := range h.groups {
		if x.Group == g {
			return x
		}
	}
	return nil
}

type simFence struct {
	at    int64
	death time.Time
}

type simTell struct {
	at           int64
	group, level string
}

// simNode is one node: its engine, its view, its HA memory.
type simNode struct {
	name   string
	up     bool
	joined bool // up and known to the cluster
	joinAt int64
	side   int // partition side
	cpus   int
	base   float64 // load without its groups
	load   float64
	nextLd int64 // when the load is read next

	leaving bool // handing its groups over before it leaves
	eng     map[string]*simGroup
	tells   []simTell
	status  nodeStatus

	members  map[string]*member // its view: state and since (member.changed)
	statuses map[string]nodeStatus
	hactl    *simHactl

	mem     *haMemory
	rev     revivals
	dirty   bool
	wake    int64
	fencing map[string]simFence
	probing map[string]simFence // probes of dead nodes, as Cluster.probeDead
	nextPP  int64
	inc     int // incarnation: one more at each restart
}

type simMsg struct {
	at       int64
	from, to int
	status   *nodeStatus
	hactl    *simHactl
}

// simPull is a push/pull that Cluster.pullState asked for.
type simPull struct {
	at       int64
	from, to int
	inc      int // of the asking node: a restart forgets it
}

type simParams struct {
	nodes, groups int
	stomith       bool
	dur           int64 // ms
	seed          int64
}

type sim struct {
	t   testing.TB
	p   simParams
	rnd *rand.Rand
	now int64
	cfg haConfig

	nodes  []*simNode
	groups []string
	msgs   []simMsg
	pulls  []simPull
	ver    uint64 // status versions: one counter, so they only grow

	// Pairs (viewer, viewed): whether the viewed node can be reached,
	// since when, and the revival delay drawn for that change.
	reach   [][]bool
	changed [][]int64
	revive  [][]int64

	testFail  map[[2]int]bool // (node, group) -> its test fails
	levelFail map[[2]int]int  // (node, group) -> 1: level FAILED, 2: throttled

	lastEvent int64
	// A partition heals only after both sides saw it (simDetect): one
	// that heals sooner is message loss that nobody notices, and claims
	// lost in it go unseen (CLINIT_SIM_SHORT_PARTITIONS=1 allows it).
	partitionAt     int64
	shortPartitions bool
	downSince       []int64 // per group; -1: up
	owedSince       []int64 // per group; -1: not owed
	log             []string
	tellCount       int
	claims          int
	backoffs        int
	fences          int
	probes          int
	decisions       int
	maxDown         int64
}

func newSim(t testing.TB, p simParams) *sim {
	s := &sim{t: t, p: p, rnd: rand.New(rand.NewSource(p.seed)),
		testFail: map[[2]int]bool{}, levelFail: map[[2]int]int{}}
	s.cfg = haConfig{
		quorum:      p.nodes/2 + 1,
		fenceTime:   simFenceTime * time.Millisecond,
		stomith:     p.stomith,
		planHold:    simPlanHold * time.Millisecond,
		claimDelay:  simClaimDelay * time.Millisecond,
		testBackoff: simTestBackoff * time.Millisecond,
		failBackoff: simFailBackoff * time.Millisecond,
		detectMax:   simDetect * time.Millisecond, // a cut-off node sees the others dead after simDetect
	}
	s.shortPartitions = os.Getenv("CLINIT_SIM_SHORT_PARTITIONS") != ""
	if v, _ := strconv.Atoi(os.Getenv("CLINIT_SIM_PLANHOLD")); v > 0 {
		s.cfg.planHold = time.Duration(v) * time.Millisecond
	}
	hactl := &simHactl{version: 1, origin: "init"}
	for g := range p.groups {
		name := "g" + strconv.Itoa(g)
		s.groups = append(s.groups, name)
		hactl.groups = append(hactl.groups, &cltab.HAGroup{Group: name, Level: "run"})
	}
	cpus := []int{1, 2, 4, 8}
	for i := range p.nodes {
		n := &simNode{name: fmt.Sprintf("node%02d", i), up: true, joined: true, cpus: cpus[s.rnd.Intn(len(cpus))]}
		n.base = float64(s.rnd.Intn(n.cpus*150)) / 100
		n.load = n.base
		n.nextLd = int64(s.rnd.Intn(simLoadEvery))
		n.reset()
		n.hactl = hactl
		n.nextPP = int64(s.rnd.Intn(simPushPull))
		s.nodes = append(s.nodes, n)
	}
	s.reach = make([][]bool, p.nodes)
	s.changed = make([][]int64, p.nodes)
	s.revive = make([][]int64, p.nodes)
	for i, n := range s.nodes {
		s.reach[i] = make([]bool, p.nodes)
		s.changed[i] = make([]int64, p.nodes)
		s.revive[i] = make([]int64, p.nodes)
		for j, o := range s.nodes {
			s.reach[i][j] = true
			n.members[o.name] = &member{state: api.NodeAlive, changed: simTime(0)}
		}
	}
	for _, n := range s.nodes {
		s.publish(n)
	}
	for _, n := range s.nodes { // a converged start
		for _, o := range s.nodes {
			n.statuses[o.name] = o.status
		}
	}
	s.msgs = nil
	s.downSince = make([]int64, p.groups)
	s.owedSince = make([]int64, p.groups)
	for g := range s.downSince {
		s.owedSince[g] = -1
	}
	return s
}

// reset gives a node the state of a fresh start: nothing running, no
// memory, a view of itself only.
func (n *simNode) reset() {
	n.inc++
	n.leaving = false
	n.eng = map[string]*simGroup{}
	n.tells = nil
	n.members = map[string]*member{n.name: {state: api.NodeAlive}}
	n.statuses = map[string]nodeStatus{}
	n.mem = newHAMemory()
	n.rev = newRevivals()
	n.dirty = true
	n.wake = 0
	n.fencing = map[string]simFence{}
	n.probing = map[string]simFence{}
	n.status = nodeStatus{Node: n.name, CPUs: n.cpus, Load: n.load}
}

func (s *sim) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf("%7.2fs ", float64(s.now)/1000)+fmt.Sprintf(format, args...))
	if len(s.log) > 400 {
		s.log = s.log[len(s.log)-300:]
	}
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d (reproduce: go test -run 'TestHASim/seed=%d/stomith=%v' ./cluster/ -sim.seed=%d), %d nodes, stomith %v, plan hold %v, at %.2fs: ",
		s.p.seed, s.p.seed, s.p.stomith, s.p.seed, s.p.nodes, s.p.stomith, s.cfg.planHold, float64(s.now)/1000)
	fmt.Fprintf(&b, format, args...)
	b.WriteString("\n--- last events:\n")
	from := max(0, len(s.log)-120)
	b.WriteString(strings.Join(s.log[from:], "\n"))
	b.WriteString("\n--- nodes:\n")
	for _, n := range s.nodes {
		b.WriteString(s.describe(n))
	}
	s.t.Fatal(b.String())
}

func (s *sim) describe(n *simNode) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s up=%v joined=%v side=%d leaving=%v load=%.2f/%d:", n.name, n.up, n.joined, n.side, n.leaving, n.load, n.cpus)
	for _, g := range s.groups {
		if e := n.eng[g]; e != nil {
			fmt.Fprintf(&b, " %s=%s/%s svc=%v", g, e.level, e.state, e.svc)
		}
	}
	if len(n.mem.bad) > 0 {
		fmt.Fprintf(&b, " bad=%v", n.mem.bad)
	}
	alive := 0
	for _, m := range n.members {
		if m.state == api.NodeAlive {
			alive++
		}
	}
	fmt.Fprintf(&b, " sees %d alive\n", alive)
	return b.String()
}

// present reports whether node i is up and part of the cluster.
func (s *sim) present(i int) bool { return s.nodes[i].up && s.nodes[i].joined }

// connected reports whether i and j can reach each other.
func (s *sim) connected(i, j int) bool {
	return s.present(i) && s.present(j) && s.nodes[i].side == s.nodes[j].side
}

func (s *sim) index(name string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(name, "node"))
	return i
}

func (s *sim) gossipDelay() int64 {
	return simGossipMin + int64(s.rnd.Intn(simGossipMax-simGossipMin+1))
}

// publish rebuilds node n's status from its engine, and when it changed
// gives it a new version and gossips it.
func (s *sim) publish(n *simNode) {
	st := nodeStatus{Node: n.name, CPUs: n.cpus, Load: n.load, Leaving: n.leaving}
	names := make([]string, 0, len(n.eng))
	for g := range n.eng {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		e := n.eng[g]
		st.Groups = append(st.Groups, groupState{Group: g, Level: e.level, State: e.state, Since: simTime(e.since).UnixMilli(), Throttled: e.throttled})
	}
	if len(n.mem.bad) > 0 {
		st.Bad = map[string]int64{}
		for g, until := range n.mem.bad {
			st.Bad[g] = until.UnixMilli()
		}
	}
	if n.status.Version != 0 && sameGroups(st.Groups, n.status.Groups) && st.CPUs == n.status.CPUs && st.Load == n.status.Load &&
		st.Leaving == n.status.Leaving && maps.Equal(st.Bad, n.status.Bad) {
		return
	}
	s.ver++
	st.Version = s.ver
	n.status = st
	n.statuses[n.name] = st
	n.dirty = true
	s.broadcast(n, &st, nil)
}

func (s *sim) broadcast(n *simNode, st *nodeStatus, h *simHactl) {
	i := s.index(n.name)
	for j := range s.nodes {
		if j != i && s.connected(i, j) {
			s.msgs = append(s.msgs, simMsg{at: s.now + s.gossipDelay(), from: i, to: j, status: st, hactl: h})
		}
	}
}

// receive applies a status or hactl version that reached node n.
func (s *sim) receive(n *simNode, st *nodeStatus, h *simHactl) {
	if st != nil {
		if old, ok := n.statuses[st.Node]; (!ok || old.Version < st.Version) && st.Node != n.name {
			n.statuses[st.Node] = *st
			n.dirty = true
			if m := n.members[st.Node]; st.Leaving && m != nil && m.state == api.NodeDead {
				m.state, m.changed = api.NodeLeft, simTime(s.now) // as Cluster.onStatus
			}
		}
	}
	if h != nil && h.newer(n.hactl) {
		n.hactl = h
		n.dirty = true
	}
}

// pushPull merges the full states of two nodes, both ways.
func (s *sim) pushPull(a, b *simNode) {
	sa, sb := a.statuses, b.statuses
	ha, hb := a.hactl, b.hactl
	for _, st := range sb {
		s.receive(a, &st, nil)
	}
	for _, st := range sa {
		s.receive(b, &st, nil)
	}
	s.receive(a, nil, hb)
	s.receive(b, nil, ha)
}

// tell queues a tell to node n's engine; it takes effect at the next step.
func (s *sim) tell(n *simNode, g, level string) {
	s.tellCount++
	n.tells = append(n.tells, simTell{at: s.now + simStep, group: g, level: level})
}

// engineTell is the engine's tell (SPEC 3), simulated.
func (s *sim) engineTell(n *simNode, g, level string) {
	e := n.eng[g]
	if e == nil {
		e = &simGroup{level: cltab.LevelStop, state: api.StateDone}
		n.eng[g] = e
	}
	e.level, e.throttled = level, false
	switch {
	case e.state == api.StateStopping:
		e.since = s.now // a stop under way finishes, then the level starts
	case e.svc && e.svcLevel != level:
		e.state, e.since, e.until = api.StateStopping, s.now, s.now+simStop
	case e.busy:
		e.state, e.since, e.until = api.StateStopping, s.now, s.now+simTestStop
	default:
		s.startLevel(n, g, e)
	}
}

func (s *sim) startLevel(n *simNode, g string, e *simGroup) {
	e.since = s.now
	switch e.level {
	case cltab.LevelStop:
		e.state = api.StateDone
	case LevelPlan:
		e.state = api.StateDone
		if g == "g1" {
			e.busy, e.state, e.until = true, api.StateStarting, s.now+simLongPlan
		}
	case LevelTest:
		e.busy, e.state, e.until = true, api.StateChecking, s.now+simTest
		if g == "g2" {
			e.until = s.now + simLongTest
		}
	default:
		if e.svc && e.svcLevel == e.level {
			e.state = api.StateDone
			return
		}
		e.svc, e.svcLevel = true, e.level
		e.state, e.until = api.StateStarting, s.now+simStart
	}
}

// progress moves node n's engine on to now.
func (s *sim) progress(n *simNode) {
	for len(n.tells) > 0 && n.tells[0].at <= s.now {
		t := n.tells[0]
		n.tells = n.tells[1:]
		s.engineTell(n, t.group, t.level)
	}
	i := s.index(n.name)
	for _, g := range s.groups {
		e := n.eng[g]
		if e == nil || e.until > s.now {
			continue
		}
		gi := s.groupIndex(g)
		switch e.state {
		case api.StateStopping:
			e.svc, e.busy = false, false
			s.startLevel(n, g, e)
		case api.StateChecking:
			e.busy, e.since = false, s.now
			e.state = api.StatePassed
			if s.testFail[[2]int{i, gi}] {
				e.state = api.StateFailed
			}
		case api.StateStarting:
			e.since = s.now
			if e.level == LevelPlan {
				e.busy, e.state = false, api.StateDone
				break
			}
			switch s.levelFail[[2]int{i, gi}] {
			case 1:
				e.state = api.StateFailed
			case 2:
				e.state, e.throttled = api.StateDone, true
			default:
				e.state = api.StateDone
			}
		}
	}
	s.publish(n)
}

func (s *sim) groupIndex(g string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(g, "g"))
	return i
}

// decide is what Cluster.decideHA does for node n.
func (s *sim) decide(n *simNode) {
	n.dirty = false
	s.decisions++
	now := simTime(s.now)
	back, pull, revivalWake := n.rev.track(n.name, n.members, n.statuses, now, revivalWait)
	if back {
		s.ver++ // re-announce
		n.status.Version = s.ver
		n.statuses[n.name] = n.status
		st := n.status
		s.broadcast(n, &st, nil)
	}
	for _, name := range pull { // a push/pull with it, over TCP
		s.pulls = append(s.pulls, simPull{at: s.now + simGossipMin, from: s.index(n.name), to: s.index(name), inc: n.inc})
	}
	if n.leaving { // Handoff: give every HA group up
		for _, h := range n.hactl.groups {
			if e := n.eng[h.Group]; e != nil && e.level != cltab.LevelStop {
				s.tell(n, h.Group, cltab.LevelStop)
			}
		}
		return
	}
	in := haInput{self: n.name, now: now, cfg: s.cfg, hactl: n.hactl.groups, members: map[string]haMember{}}
	for name, m := range n.members {
		st, ok := n.statuses[name]
		in.members[name] = haMember{state: m.state, since: m.changed, status: st, hasStatus: ok && !n.rev.unknown(name)}
	}
	d := decide(in, n.mem)
	for _, a := range d.actions {
		switch {
		case a.Fence != "":
			if _, ok := n.fencing[a.Fence]; !ok {
				n.fencing[a.Fence] = simFence{at: s.now + simFenceDelay, death: in.members[a.Fence].since}
				s.logf("%s fences %s: %s", n.name, a.Fence, a.Why)
			}
		case a.Probe != "":
			if _, ok := n.probing[a.Probe]; !ok {
				at := s.now + simProbeTimeout
				if s.connected(s.index(n.name), s.index(a.Probe)) {
					at = s.now + simGossipMin
				}
				n.probing[a.Probe] = simFence{at: at, death: in.members[a.Probe].since}
				s.logf("%s probes %s: %s", n.name, a.Probe, a.Why)
				s.probes++
			}
		default:
			s.logf("%s: %s", n.name, a)
			if a.Level == LevelPlan {
				s.claims++
			}
			if strings.HasPrefix(a.Why, "backing off") {
				s.backoffs++
				// (c) Stickiness: with (a) holding, a group that runs
				// here is never beaten by a real claim, only by a
				// status that is out of date.
				if e := n.eng[a.Group]; e != nil && e.svc && e.state == api.StateDone {
					s.fail("%s gives up %s, which runs here at %s: %s", n.name, a.Group, e.level, a.Why)
				}
			}
			s.tell(n, a.Group, a.Level)
		}
	}
	n.wake = 0
	if !d.wake.IsZero() && !d.wake.After(in.now) {
		s.fail("%s: decide asks to be woken at %v, not after now (%v): a hot loop in Cluster.run", n.name, simMs(d.wake), s.now)
	}
	if !revivalWake.IsZero() && (d.wake.IsZero() || revivalWake.Before(d.wake)) {
		d.wake = revivalWake
	}
	if !d.wake.IsZero() {
		n.wake = simMs(d.wake)
		if d.wake.Sub(simBase)%(time.Millisecond) != 0 {
			n.wake++
		}
	}
	s.publish(n) // its Bad
}

// step advances the clock by one step.
func (s *sim) step() {
	s.now += simStep
	s.events()

	// Messages due.
	keep := s.msgs[:0]
	var due []simMsg
	for _, m := range s.msgs {
		if m.at <= s.now {
			due = append(due, m)
		} else {
			keep = append(keep, m)
		}
	}
	s.msgs = keep
	for _, m := range due {
		if s.connected(m.from, m.to) {
			s.receive(s.nodes[m.to], m.status, m.hactl)
		}
	}

	// Push/pulls asked for by nodes that saw others come back.
	var pulls []simPull
	for _, p := range s.pulls {
		n, o := s.nodes[p.from], s.nodes[p.to]
		switch {
		case p.at > s.now:
			pulls = append(pulls, p)
		case n.inc == p.inc && s.connected(p.from, p.to):
			s.pushPull(n, o)
			n.rev.pulled(o.name)
			n.dirty = true
		}
	}
	s.pulls = pulls

	// Joins and membership.
	for i, n := range s.nodes {
		if n.up && !n.joined && s.now >= n.joinAt {
			s.join(i)
		}
	}
	for i, n := range s.nodes {
		if !s.present(i) {
			continue
		}
		for j, o := range s.nodes {
			if i == j {
				continue
			}
			r := s.connected(i, j)
			if r != s.reach[i][j] {
				s.reach[i][j], s.changed[i][j] = r, s.now
				s.revive[i][j] = int64(s.rnd.Intn(simReviveMax + 1))
			}
			m := n.members[o.name]
			switch {
			case r && (m == nil || m.state != api.NodeAlive) && s.now >= s.changed[i][j]+s.revive[i][j]:
				n.members[o.name] = &member{state: api.NodeAlive, changed: simTime(s.now)}
				n.dirty = true
				st := n.status // Cluster.onMember re-announces it, as it is
				s.broadcast(n, &st, nil)
			case !r && m != nil && m.state == api.NodeAlive && s.now >= s.changed[i][j]+simDetect:
				m.state, m.changed = api.NodeDead, simTime(s.now)
				if st, ok := n.statuses[o.name]; ok && st.Leaving {
					m.state = api.NodeLeft
				}
				n.dirty = true
			}
		}
	}

	// Push/pull with a random member.
	for i, n := range s.nodes {
		if !s.present(i) || s.now < n.nextPP {
			continue
		}
		n.nextPP = s.now + simPushPull
		var peers []int
		for j, o := range s.nodes {
			if j != i && s.connected(i, j) && n.members[o.name] != nil && n.members[o.name].state == api.NodeAlive {
				peers = append(peers, j)
			}
		}
		if len(peers) > 0 {
			s.pushPull(n, s.nodes[peers[s.rnd.Intn(len(peers))]])
		}
	}

	// Engines, load, fences, leaves.
	for _, n := range s.nodes {
		if n.up {
			s.progress(n)
		}
		if n.up && s.now >= n.nextLd {
			n.nextLd = s.now + simLoadEvery
			l := n.base
			for _, e := range n.eng {
				if e.svc {
					l += simLoadPerGroup
				}
			}
			n.load = float64(int(l*100)) / 100
			s.publish(n)
		}
	}
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		for _, x := range sortedKeys(n.fencing) {
			f := n.fencing[x]
			if f.at > s.now {
				continue
			}
			delete(n.fencing, x)
			if t := s.nodes[s.index(x)]; t.up {
				s.logf("stomith kills %s (asked by %s)", x, n.name)
				s.kill(t)
			}
			s.fences++
			n.mem.fenced[x] = f.death
			n.dirty = true
		}
	}
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		for _, x := range sortedKeys(n.probing) {
			p := n.probing[x]
			if p.at > s.now {
				continue
			}
			delete(n.probing, x)
			if o := s.nodes[s.index(x)]; s.connected(s.index(n.name), s.index(x)) {
				s.pushPull(n, o) // it answers: not dead; decide again in a second
				if n.wake == 0 || n.wake > s.now+1000 {
					n.wake = s.now + 1000
				}
				continue
			}
			n.mem.probed[x] = p.death
			n.dirty = true
		}
	}
	for i, n := range s.nodes {
		if n.up && n.leaving && s.handedOff(n) {
			s.leave(i)
		}
	}

	// Decisions, as Cluster.run makes them: on a change, or on the timer.
	for i, n := range s.nodes {
		if s.present(i) && (n.dirty || (n.wake != 0 && s.now >= n.wake)) {
			s.decide(n)
		}
	}
	s.check()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// handedOff reports whether a leaving node holds no HA group any more.
func (s *sim) handedOff(n *simNode) bool {
	for _, g := range s.groups {
		if e := n.eng[g]; e != nil && (e.level != cltab.LevelStop || e.state == api.StateStopping) {
			return false
		}
	}
	return true
}

// join makes restarted node i part of the cluster, through a push/pull
// with a node it reaches.
func (s *sim) join(i int) {
	n := s.nodes[i]
	var seeds []int
	for j, o := range s.nodes {
		if j != i && o.up && o.joined && o.side == n.side {
			seeds = append(seeds, j)
		}
	}
	if len(seeds) == 0 {
		return // tried again at the next step
	}
	n.joined = true
	seed := s.nodes[seeds[s.rnd.Intn(len(seeds))]]
	for j, o := range s.nodes {
		if j == i {
			continue
		}
		r := s.connected(i, j)
		s.reach[i][j], s.changed[i][j], s.revive[i][j] = r, s.now, 0
		switch m := seed.members[o.name]; {
		case r:
			n.members[o.name] = &member{state: api.NodeAlive, changed: simTime(s.now)}
		case m != nil:
			n.members[o.name] = &member{state: m.state, changed: simTime(s.now)}
		}
	}
	seed.members[n.name] = &member{state: api.NodeAlive, changed: simTime(s.now)}
	s.reach[s.index(seed.name)][i], s.changed[s.index(seed.name)][i] = true, s.now
	seed.dirty = true
	s.pushPull(n, seed)
	n.status.Version = 0 // publish anew, to everyone it reaches
	s.publish(n)
	s.logf("%s joins through %s", n.name, seed.name)
}

// leave ends a graceful shutdown: the last status goes to every node it
// reaches, which see it left at once.
func (s *sim) leave(i int) {
	n := s.nodes[i]
	s.logf("%s leaves", n.name)
	for j, o := range s.nodes {
		if j != i && s.connected(i, j) {
			s.receive(o, &n.status, nil)
			o.members[n.name] = &member{state: api.NodeLeft, changed: simTime(s.now)}
			s.reach[j][i], s.changed[j][i] = false, s.now
			o.dirty = true
		}
	}
	s.down(n)
}

func (s *sim) kill(n *simNode) {
	s.down(n)
}

// down stops node n and everything on it.
func (s *sim) down(n *simNode) {
	n.up, n.joined = false, false
	n.reset()
}

// events injects random events: storms separated by calms.
func (s *sim) events() {
	cycle := int64(simStorm + simCalm)
	phase := (s.now - simCalm/4) % cycle
	if s.now < simCalm/4 || phase >= simStorm || s.rnd.Intn(simEventEvery/simStep) != 0 {
		return
	}
	s.lastEvent = s.now
	n := len(s.nodes)
	var up, down []int
	for i, x := range s.nodes {
		if x.up {
			up = append(up, i)
		} else {
			down = append(down, i)
		}
	}
	pick := func(xs []int) *simNode { return s.nodes[xs[s.rnd.Intn(len(xs))]] }
	partitioned := false
	for _, x := range s.nodes {
		partitioned = partitioned || x.side != 0
	}
	switch r := s.rnd.Intn(20); {
	case r < 4 && len(down) < n/3 && len(up) > 0:
		x := pick(up)
		if runs := s.runners(); len(runs) > 0 && s.rnd.Intn(2) == 0 {
			x = pick(runs)
		}
		s.logf("EVENT kill %s", x.name)
		s.kill(x)
	case r < 8 && len(down) > 0:
		x := pick(down)
		x.up, x.joined, x.joinAt = true, false, s.now+simJoin
		x.reset()
		s.logf("EVENT restart %s", x.name)
	case r < 9 && !partitioned:
		var k int
		switch s.rnd.Intn(3) {
		case 0:
			k = 1 + s.rnd.Intn(3)
		case 1:
			k = n / 2
		default:
			k = 1 + s.rnd.Intn(n/2)
		}
		perm := s.rnd.Perm(n)
		if runs := s.runners(); len(runs) > 0 && s.rnd.Intn(2) == 0 {
			r := runs[s.rnd.Intn(len(runs))] // cut a node that runs a group off
			perm = append([]int{r}, slices.DeleteFunc(perm, func(i int) bool { return i == r })...)
		}
		var names []string
		for _, i := range perm[:k] {
			s.nodes[i].side = 1
			names = append(names, s.nodes[i].name)
		}
		sort.Strings(names)
		s.partitionAt = s.now
		s.logf("EVENT partition %v from the rest", names)
	case r < 11 && partitioned && (s.now-s.partitionAt > simDetect || s.shortPartitions):
		for _, x := range s.nodes {
			x.side = 0
		}
		s.logf("EVENT heal")
	case r < 12 && len(up) > 0:
		x := pick(up)
		if x.joined && !x.leaving {
			x.leaving = true
			s.logf("EVENT %s shuts down gracefully", x.name)
			x.dirty = true
			s.publish(x)
		}
	case r < 15:
		var cands []int
		for i := range s.nodes {
			if s.present(i) {
				cands = append(cands, i)
			}
		}
		if len(cands) == 0 {
			return
		}
		x := pick(cands)
		g := s.groups[s.rnd.Intn(len(s.groups))]
		old := x.hactl.group(g)
		line := &cltab.HAGroup{Group: g, Level: old.Level, Prefer: old.Prefer}
		if s.rnd.Intn(3) == 0 {
			line.Prefer = nil
			for range s.rnd.Intn(3) {
				line.Prefer = append(line.Prefer, s.nodes[s.rnd.Intn(n)].name)
			}
			line.Prefer = slices.Compact(line.Prefer)
		} else {
			line.Level = []string{"run", "run2", cltab.LevelStop}[s.rnd.Intn(3)]
		}
		h := &simHactl{version: x.hactl.version + 1, origin: x.name}
		for _, o := range x.hactl.groups {
			if o.Group == g {
				o = line
			}
			h.groups = append(h.groups, o)
		}
		s.logf("EVENT hactl on %s: %s %s %v", x.name, g, line.Level, line.Prefer)
		x.hactl = h
		x.dirty = true
		s.broadcast(x, nil, h)
	case r < 18:
		i, g := s.rnd.Intn(n), s.rnd.Intn(len(s.groups))
		k := [2]int{i, g}
		if s.testFail[k] {
			delete(s.testFail, k)
			s.logf("EVENT test of %s passes on %s", s.groups[g], s.nodes[i].name)
		} else if s.count(s.testFail, g) < simMaxTestFails {
			s.testFail[k] = true
			s.logf("EVENT test of %s fails on %s", s.groups[g], s.nodes[i].name)
		}
	case r < 19:
		i, g := s.rnd.Intn(n), s.rnd.Intn(len(s.groups))
		k := [2]int{i, g}
		if s.levelFail[k] != 0 {
			delete(s.levelFail, k)
			s.logf("EVENT level of %s works on %s", s.groups[g], s.nodes[i].name)
		} else if s.countLevel(g) < simMaxLevelFails {
			s.levelFail[k] = 1 + s.rnd.Intn(2)
			s.logf("EVENT level of %s fails (%d) on %s", s.groups[g], s.levelFail[k], s.nodes[i].name)
		}
	default:
		x := s.nodes[s.rnd.Intn(n)]
		x.base = float64(s.rnd.Intn(x.cpus*150)) / 100
		x.nextLd = s.now
		s.logf("EVENT base load of %s %.2f", x.name, x.base)
	}
}

// runners lists the nodes that run a group.
func (s *sim) runners() []int {
	var out []int
	for i, n := range s.nodes {
		for _, e := range n.eng {
			if n.up && e.svc {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

func (s *sim) count(m map[[2]int]bool, g int) int {
	c := 0
	for k, v := range m {
		if v && k[1] == g {
			c++
		}
	}
	return c
}

func (s *sim) countLevel(g int) int {
	c := 0
	for k, v := range s.levelFail {
		if v != 0 && k[1] == g {
			c++
		}
	}
	return c
}

// check verifies the two invariants.
func (s *sim) check() {
	for gi, g := range s.groups {
		// (a) Never two nodes running one group. A node runs a group
		// while the services of one of its levels are up: starting,
		// running, failed, or stopping. A dead node's died with it; a
		// partitioned node's run until it stops them itself.
		var running []string
		for _, n := range s.nodes {
			if e := n.eng[g]; n.up && e != nil && e.svc {
				running = append(running, n.name+" ("+e.level+" "+e.state+")")
			}
		}
		if len(running) > 1 {
			s.fail("group %s runs on %d nodes: %v", g, len(running), running)
		}

		// (b) No group down longer than simBound while a quorate
		// eligible node exists.
		if len(running) > 0 {
			s.downSince[gi] = -1
		} else if s.downSince[gi] < 0 {
			s.downSince[gi] = s.now
		}
		if !s.owed(gi) {
			s.owedSince[gi] = -1
			continue
		}
		if s.owedSince[gi] < 0 {
			s.owedSince[gi] = s.now
		}
		if s.downSince[gi] < 0 {
			continue
		}
		from := max(s.downSince[gi], s.owedSince[gi], s.lastEvent)
		s.maxDown = max(s.maxDown, s.now-from)
		if s.now-from > s.bound() {
			s.fail("group %s down since %.2fs, owed since %.2fs, last event %.2fs: more than the bound %dms",
				g, float64(s.downSince[gi])/1000, float64(s.owedSince[gi])/1000, float64(s.lastEvent)/1000, s.bound())
		}
	}
}

// owed reports whether a quorate eligible node exists for group gi: up,
// in the cluster, not leaving, on a side with a quorum, whose hactl
// copy wants the group somewhere, whose test and level work, and that
// has not ruled itself out.
func (s *sim) owed(gi int) bool {
	g := s.groups[gi]
	sides := map[int]int{}
	for i, n := range s.nodes {
		if s.present(i) {
			sides[n.side]++
		}
	}
	for i, n := range s.nodes {
		if !s.present(i) || n.leaving || sides[n.side] < s.cfg.quorum {
			continue
		}
		if h := n.hactl.group(g); h == nil || h.Level == cltab.LevelStop {
			continue
		}
		k := [2]int{i, gi}
		if s.testFail[k] || s.levelFail[k] != 0 {
			continue
		}
		if until, ok := n.mem.bad[g]; ok && until.After(simTime(s.now)) {
			continue
		}
		return true
	}
	return false
}

func (s *sim) run() {
	for s.now < s.p.dur {
		s.step()
	}
}

// simSeeds returns the seeds to run: the fixed one and two random ones;
// or only the one asked for (-sim.seed, CLINIT_SIM_SEED); or, for a
// soak, seeds 1 to -sim.runs (CLINIT_SIM_RUNS).
func simSeeds(t *testing.T) []int64 {
	flagOrEnv := func(f *int64, env string) int64 {
		if *f != 0 {
			return *f
		}
		if v := os.Getenv(env); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", env, err)
			}
			return n
		}
		return 0
	}
	if seed := flagOrEnv(simSeedFlag, "CLINIT_SIM_SEED"); seed != 0 {
		return []int64{seed}
	}
	if runs := flagOrEnv(simRunsFlag, "CLINIT_SIM_RUNS"); runs > 0 {
		seeds := make([]int64, runs)
		for i := range seeds {
			seeds[i] = int64(i + 1)
		}
		return seeds
	}
	seeds := []int64{1}
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	for range 2 {
		seeds = append(seeds, r.Int63n(1<<40)+2)
	}
	return seeds
}

// TestHASim runs the simulation of 6 groups on 30 nodes (the fixed seed)
// or 20 to 40 (the others: an even number splits into halves without a
// quorum), without and with stomith, for 110 s of fake time: two storms
// of events, each followed by a calm longer than the liveness bound.
func TestHASim(t *testing.T) {
	for _, seed := range simSeeds(t) {
		nodes := 30
		if seed != 1 {
			nodes = 20 + int(seed%21)
		}
		for _, stomith := range []bool{false, true} {
			p := simParams{nodes: nodes, groups: 6, stomith: stomith, dur: 110_000, seed: seed}
			t.Run(fmt.Sprintf("seed=%d/stomith=%v", seed, stomith), func(t *testing.T) {
				t.Parallel()
				s := newSim(t, p)
				if s.bound() >= simCalm {
					t.Fatalf("the liveness bound %dms is not shorter than a calm (%dms): it would never be checked", s.bound(), simCalm)
				}
				s.run()
				t.Logf("seed %d, %d nodes, stomith %v: %d decisions, %d tells, %d claims, %d back-offs, %d fences, %d probes; longest owed downtime %dms (bound %dms)",
					seed, nodes, stomith, s.decisions, s.tellCount, s.claims, s.backoffs, s.fences, s.probes, s.maxDown, s.bound())
			})
		}
	}
}
