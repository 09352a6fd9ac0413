package cluster

// The HA simulation's world (issue 16): nodes with clocks of their own,
// a network with delays, losses and cuts, the daemon's glue around the
// real runNode (effects.go's decideHA, onLease, the gate and the keeper
// calls, mirrored here because they read time.Now), and the lease
// renewals of raftnode (lease.go, renew.go). The raft model, the leader's
// planner glue and fencing are in sim_raft_test.go; the engine and the
// keeper in sim_engine_test.go; the faults in sim_faults_test.go; the
// invariants in sim_check_test.go.
//
// Time is real time since the start (time.Duration); each node reads its
// own clock, which runs at a rate of its own. Everything happens in
// events taken from one queue in time order (ties in the order they were
// queued), drawn from one seeded RNG, so a seed replays exactly.

import (
	"container/heap"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

// simConfig is one scenario.
type simConfig struct {
	name    string
	nodes   int
	voters  int // the first voters nodes vote
	groups  int
	stomith bool
	storms  int // storm and calm cycles per run
}

// The model's timings: the shipped ones where the product has them.
const (
	simLease       = raftnode.DefaultLease
	simFenceTime   = 3 * time.Second
	simStopTimeout = 2 * time.Second // below fencetime, as the README asks
	// Clock rates differ from 1 by up to this: two nodes' rates then
	// differ by at most 2*simDrift/(1-simDrift), 0.9 %, inside the 1 %
	// (raftnode.Drift) the lease argument assumes.
	simDrift = 0.0045
	// The fake engine: each lifecycle level's entry runs up to this.
	simPlanMax  = 300 * time.Millisecond
	simTestMax  = 500 * time.Millisecond
	simStartMax = 300 * time.Millisecond
	simStopMax  = 200 * time.Millisecond // the stop level's release entry
	// Raft, as node.go configures hashicorp/raft: a follower stands after
	// one to two heartbeat timeouts without a leader.
	simTick        = 20 * time.Millisecond // heartbeats, memberlist probes
	simElectionMin = raftnode.HeartbeatTimeout
	simElectionMax = 2 * raftnode.HeartbeatTimeout
	simLeaderLease = raftnode.LeaderLeaseTimeout // a leader without quorum steps down
	simBarrierMax  = 20 * time.Millisecond
	// Memberlist: a member unreachable this long is suspect, then dead.
	simSuspect = 500 * time.Millisecond
	simDead    = 2 * time.Second
	// Fencing: a stomith command takes up to this; a failed one is retried
	// after a backoff that doubles up to stomith.go's 30 s.
	simStomithMax  = time.Second
	simBackoffMax  = 30 * time.Second
	simNetMax      = 3 * time.Millisecond // a normal message's delay
	simSlowMax     = 6 * time.Second      // a delay far beyond normal
	simProposeWait = 10 * time.Second     // effects.go's context for a report
	simTestBackoff = 10 * time.Second
	simFailBackoff = 20 * time.Second
)

// simMaxEvents stops a run that loops (a run takes about 20,000).
const simMaxEvents = 2_000_000

var simBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// simEvent is one thing that happens at a time.
type simEvent struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// simLink is the network from one node to another.
type simLink struct {
	cut  bool
	slow time.Duration // up to this more per message
	loss float64
}

// sim is the world.
type sim struct {
	t      testing.TB
	cfg    simConfig
	seed   int64
	rng    *rand.Rand
	now    time.Duration
	end    time.Duration
	queue  simQueue
	seq    uint64
	nodes  []*simNode
	byName map[string]*simNode
	links  [][]simLink
	hactl  []*cltab.HAGroup
	// The replicated log, applied in order: every voter that applies it
	// holds this state (the model does not replicate it entry by entry).
	state    *store.State
	index    uint64
	inDoubt  []*simEntry // proposed by a leader that lost its term
	lastTerm uint64      // the term last elected

	calm          bool // no fault is active
	stomithBroken bool
	faultGen      int // recoveries of an earlier storm are void
	chk           simChecker
	trace         []string // the last lines, printed on a failure
	events        int
	failbacks     int // failback stops committed (plan.go)
}

// simNode is one machine: its clock, its processes and keeper (which
// outlive the daemon), and its daemon's state (lost when it dies).
type simNode struct {
	s      *sim
	i      int
	name   string
	voter  bool
	rate   float64
	offset time.Duration
	load   float64

	up       bool // the machine runs (its processes and keeper exist)
	daemon   bool // its daemon runs
	frozen   bool // its daemon is SIGSTOPped
	inc      int  // the daemon's incarnation: events of a dead one are dropped
	deferred []func()

	// Outlive the daemon: the processes, the keeper, and the engine's
	// groups (the daemon keeps their levels in its state directory).
	procs  []*simProc
	keeper *simKeeper
	groups map[string]*simGroup
	broken map[string]bool // groups whose test fails here

	// The daemon's.
	mem        *nodeMemory
	lease      raftnode.Lease
	cl         *Cluster // only its gate and HA state: updateGate is the real one
	kept       map[string]bool
	keeperSent time.Time
	timerGen   int
	renewGen   int
	view       map[string]*simPeer
	raft       simRaft
}

// simPeer is what a node's memberlist knows of another.
type simPeer struct {
	seen      bool
	lastReach time.Duration
	state     string
	alive     time.Duration // when it last became alive in this view
}

func newSim(t testing.TB, cfg simConfig, seed int64) *sim {
	s := &sim{t: t, cfg: cfg, seed: seed, rng: rand.New(rand.NewSource(seed)), state: store.New(), byName: map[string]*simNode{}}
	s.chk.init()
	var hactl strings.Builder
	for i := 0; i < cfg.nodes; i++ {
		n := &simNode{s: s, i: i, name: fmt.Sprintf("n%d", i+1), voter: i < cfg.voters,
			rate:   1 + simDrift*(2*s.rng.Float64()-1),
			offset: time.Duration(s.rng.Int63n(int64(100*time.Millisecond))) - 50*time.Millisecond,
			load:   float64(s.rng.Intn(4)) / 2, groups: map[string]*simGroup{}, broken: map[string]bool{}}
		s.nodes = append(s.nodes, n)
		s.byName[n.name] = n
	}
	for g := 0; g < cfg.groups; g++ {
		fmt.Fprintf(&hactl, "g%d start", g+1)
		if g%2 == 0 { // every other group prefers a node
			fmt.Fprintf(&hactl, " %s", s.nodes[s.rng.Intn(cfg.nodes)].name)
		}
		hactl.WriteString("\n")
	}
	h, err := cltab.ParseHactl("sim hactl", []byte(hactl.String()))
	if err != nil {
		t.Fatal(err)
	}
	s.hactl = h.Groups
	s.links = make([][]simLink, cfg.nodes)
	for i := range s.links {
		s.links[i] = make([]simLink, cfg.nodes)
	}
	for _, n := range s.nodes {
		n.up = true
		n.keeper = newSimKeeper()
		s.startDaemon(n)
	}
	s.every(simTick, s.tick)
	return s
}

// at queues fn at real time at (not before now).
func (s *sim) at(at time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.queue, &simEvent{at: max(at, s.now), seq: s.seq, fn: fn})
}

func (s *sim) every(d time.Duration, fn func()) {
	var loop func()
	loop = func() {
		fn()
		s.at(s.now+d, loop)
	}
	s.at(s.now+d, loop)
}

// run takes events until the end or the first violation.
func (s *sim) run(d time.Duration) {
	s.end = d
	for s.queue.Len() > 0 && s.chk.failure == "" {
		e := heap.Pop(&s.queue).(*simEvent)
		if e.at > s.end {
			break
		}
		s.now = e.at
		s.events++
		if s.events > simMaxEvents {
			s.chk.fail(fmt.Sprintf("more than %d events: the model runs away", simMaxEvents))
		}
		e.fn()
		s.check()
	}
}

func (s *sim) rand(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(s.rng.Int63n(int64(max)))
}

func (s *sim) logf(format string, args ...any) {
	line := fmt.Sprintf("%9.3fs ", s.now.Seconds()) + fmt.Sprintf(format, args...)
	if len(s.trace) >= 400 {
		s.trace = s.trace[1:]
	}
	s.trace = append(s.trace, line)
}

// clock is the node's monotonic clock at real time r.
func (n *simNode) clock(r time.Duration) time.Time {
	return simBase.Add(n.offset + time.Duration(float64(r)*n.rate))
}

func (n *simNode) nowT() time.Time { return n.clock(n.s.now) }

// realAt is the first real time at which the node's clock reads t.
func (n *simNode) realAt(t time.Time) time.Duration {
	r := time.Duration(float64(t.Sub(simBase)-n.offset) / n.rate)
	for n.clock(r).Before(t) {
		r++
	}
	return r
}

// running: the daemon runs and is not frozen.
func (n *simNode) running() bool { return n.up && n.daemon && !n.frozen }

// daemonAt runs fn in the node's daemon at real time at: dropped if that
// daemon has died by then, held until it thaws if it is frozen.
func (s *sim) daemonAt(n *simNode, at time.Duration, fn func()) {
	inc := n.inc
	s.at(at, func() { s.inDaemon(n, inc, fn) })
}

func (s *sim) inDaemon(n *simNode, inc int, fn func()) {
	switch {
	case !n.up || !n.daemon || n.inc != inc:
	case n.frozen:
		n.deferred = append(n.deferred, fn)
	default:
		fn()
	}
}

// daemonAtLocal is daemonAt at a time of the node's clock.
func (s *sim) daemonAtLocal(n *simNode, t time.Time, fn func()) {
	s.daemonAt(n, n.realAt(t), fn)
}

// send carries a message from a daemon to another's, which runs deliver
// on arrival. A cut link, a loss or a receiver not there drop it.
func (s *sim) send(from, to *simNode, deliver func()) {
	if !from.up || !from.daemon || !to.up || !to.daemon {
		return
	}
	d := 100*time.Microsecond + s.rand(simNetMax)
	if from != to {
		l := s.links[from.i][to.i]
		if l.cut || (l.loss > 0 && s.rng.Float64() < l.loss) {
			return
		}
		d += s.rand(l.slow)
	}
	s.daemonAt(to, s.now+d, deliver)
}

// reachable: both daemons run and talk both ways in time for raft's
// heartbeats and memberlist's probes.
func (s *sim) reachable(a, b *simNode) bool {
	if !a.running() || !b.running() {
		return false
	}
	if a == b {
		return true
	}
	ab, ba := s.links[a.i][b.i], s.links[b.i][a.i]
	return !ab.cut && !ba.cut && ab.slow < simLeaderLease && ba.slow < simLeaderLease && ab.loss < 0.5 && ba.loss < 0.5
}

// startDaemon starts a node's daemon: it finds its keeper and its
// groups, adopts what still runs, and knows no lease.
func (s *sim) startDaemon(n *simNode) {
	n.daemon, n.frozen = true, false
	n.inc++
	n.deferred = nil
	n.mem = newNodeMemory()
	n.lease = raftnode.Lease{}
	n.cl = &Cluster{ha: &haState{on: true, plan: planConfig{lease: simLease, fenceTime: simFenceTime, stomith: s.cfg.stomith}, mem: n.mem}, hactl: &cltab.Hactl{Groups: s.hactl}}
	n.kept = map[string]bool{}
	for g := range n.keeper.held {
		n.kept[g] = true
	}
	n.keeperSent = time.Time{}
	n.view = map[string]*simPeer{}
	n.raft = simRaft{term: n.raft.term, timeout: s.electionTimeout(), lastHeard: s.now, fencing: map[string]*simFence{}}
	s.logf("%s daemon starts", n.name)
	s.updateGate(n)
	s.restoreEngine(n)
	s.daemonAt(n, s.now, func() { s.renew(n) })
	s.daemonAt(n, s.now, func() { s.decide(n) })
}

// stopDaemon: the daemon dies (SIGKILL); its processes and keeper stay.
func (s *sim) stopDaemon(n *simNode) {
	if n.daemon {
		s.raftDown(n)
	}
	n.daemon, n.frozen = false, false
	n.deferred = nil
}

// machineDown: the machine dies, with its processes and its keeper.
func (s *sim) machineDown(n *simNode, why string) {
	if !n.up {
		return
	}
	s.logf("%s machine down: %s", n.name, why)
	s.stopDaemon(n)
	n.up = false
	for _, p := range n.procs {
		p.alive = false
	}
	n.procs = nil
	n.keeper = newSimKeeper()
}

func (s *sim) machineUp(n *simNode) {
	if n.up {
		return
	}
	n.up = true
	s.startDaemon(n)
}

func (s *sim) freeze(n *simNode) { n.frozen = true }

func (s *sim) thaw(n *simNode) {
	if !n.frozen {
		return
	}
	n.frozen = false
	d := n.deferred
	n.deferred = nil
	for _, fn := range d {
		fn := fn
		s.daemonAt(n, s.now, fn)
	}
}

// resetTimer is the HA loop's one timer (c.ha.timer.Reset): the latest
// reset wins, and it fires a millisecond ahead at the soonest.
func (s *sim) resetTimer(n *simNode, t time.Time) {
	if soon := n.nowT().Add(time.Millisecond); t.Before(soon) {
		t = soon
	}
	n.timerGen++
	gen := n.timerGen
	s.daemonAtLocal(n, t, func() {
		if n.timerGen == gen {
			s.decide(n)
		}
	})
}

// updateGate runs the real Cluster.updateGate on the node's HA state.
func (s *sim) updateGate(n *simNode) {
	n.cl.ha.lease, n.cl.ha.mem = n.lease, n.mem
	n.cl.updateGate()
}

// mayStart is Cluster.MayStart with the node's clock for time.Now.
func (s *sim) mayStart(n *simNode, g, level string) bool {
	gt := n.cl.gate.Load()
	if gt == nil || !gt.isHA(g) || level == LevelStop {
		return true
	}
	until, ok := gt.until[g]
	return ok && n.nowT().Before(until)
}

// decide is Cluster.decideHA: the real runNode on what the engine
// reports, with the lease shortened by the real stopAhead; then the
// tells (each group held by the keeper before it starts), the reports
// proposed one after the other, the keeper's releases, the timer.
func (s *sim) decide(n *simNode) {
	s.kick(n)
	now := n.nowT()
	local := map[string]groupState{}
	for g, gr := range n.groups {
		local[g] = groupState{Group: g, Level: gr.level, State: gr.state}
	}
	lease := n.lease
	if !lease.Until.IsZero() {
		lease.Until = lease.Until.Add(-stopAhead(simLease))
	}
	out := runNode(nodeInput{self: n.name, now: now, cfg: nodeConfig{testBackoff: simTestBackoff, failBackoff: simFailBackoff}, lease: lease, hactl: &cltab.Hactl{Groups: s.hactl}, local: local}, n.mem)
	s.updateGate(n)
	for _, a := range out.tells {
		s.haTell(n, a, slices.Contains(out.hold, a.Group))
	}
	if len(out.cmds) > 0 {
		s.proposeReports(n, out.cmds)
	}
	for _, g := range sortedKeys(n.kept) {
		gr, ok := n.groups[g]
		if (!ok || !gr.status().held()) && n.mem.pending[g] == "" {
			if _, granted := n.lease.Grant.Groups[g]; !granted {
				delete(n.kept, g)
				delete(n.keeper.held, g)
			}
		}
	}
	if !out.wake.IsZero() {
		s.resetTimer(n, out.wake)
	}
}

// proposeReports proposes a node's reports one after the other, as
// decideHA's goroutine does; a failed one is tried again a second later.
func (s *sim) proposeReports(n *simNode, cmds []store.Command) {
	if len(cmds) == 0 {
		return
	}
	cmd := cmds[0]
	s.proposeFrom(n, cmd, func(err error) {
		if err != nil {
			s.logf("%s report %s %s not committed: %v", n.name, cmd.Op, cmd.Group, err)
			delete(n.mem.sent, cmd.Group)
			s.resetTimer(n, n.nowT().Add(time.Second))
		}
		s.proposeReports(n, cmds[1:])
	})
}

// haTell is Cluster.haTell: on a goroutine of its own, so a moment later,
// the keeper's hold first for a group about to start, then the tell.
func (s *sim) haTell(n *simNode, a haAction, hold bool) {
	s.logf("%s tells %s", n.name, a)
	if hold {
		n.kept[a.Group] = true
	}
	s.daemonAt(n, s.now+s.rand(time.Millisecond), func() {
		if hold && !n.keeper.hold(a.Group, n.nowT()) {
			s.logf("%s keeper refuses to hold %s", n.name, a.Group)
			if n.mem.pending[a.Group] == a.Level {
				delete(n.mem.pending, a.Group)
			}
			s.resetTimer(n, n.nowT().Add(time.Second))
			return
		}
		s.engineTell(n, a.Group, a.Level)
	})
}

// renew is one round of raftnode.Renewer.Run: a renewal sent at s, held
// until s + lease when answered within its timeout; the next at
// s + RenewEvery, or soon after a failure.
func (s *sim) renew(n *simNode) {
	n.renewGen++
	gen := n.renewGen
	sent := n.nowT()
	done := false
	finish := func(l *raftnode.Lease) {
		if done || n.renewGen != gen {
			return
		}
		done = true
		next := sent.Add(raftnode.RenewEvery(simLease))
		if l != nil {
			s.onLease(n, *l)
		} else {
			next = n.nowT().Add(raftnode.RenewEvery(simLease) / 4)
		}
		s.daemonAtLocal(n, next, func() { s.renew(n) })
	}
	s.daemonAtLocal(n, sent.Add(raftnode.RenewTimeout(simLease)), func() { finish(nil) })
	to := s.leaderFor(n)
	if to == nil {
		s.daemonAt(n, s.now+10*time.Millisecond, func() { finish(nil) })
		return
	}
	s.send(n, to, func() {
		s.grant(to, n.name, func(g *raftnode.Grant) {
			s.send(to, n, func() {
				if g == nil {
					finish(nil)
					return
				}
				finish(&raftnode.Lease{Until: sent.Add(simLease), Grant: *g})
			})
		})
	})
}

// onLease is Cluster.onLease.
func (s *sim) onLease(n *simNode, l raftnode.Lease) {
	n.lease = l
	s.updateGate(n)
	if l.Until.After(n.keeperSent) { // keeperLease: deadlines only grow
		n.keeperSent = l.Until
		s.keeperLease(n, l.Until)
	}
	s.resetTimer(n, l.Until.Add(-stopAhead(simLease)))
	s.decide(n)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
