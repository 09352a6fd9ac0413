package cluster

// The simulation's consensus and leader: a model of hashicorp/raft as
// clinit uses it (terms, elections with pre-vote among the voters a
// candidate reaches, a leader that steps down without a quorum for its
// leader lease, entries committed only while a quorum follows the
// leader's term, entries of a deposed leader that the next one may or
// may not commit), the granter of raftnode/lease.go (a leadership check
// after the renewal arrived, the time heard, the election as the origin
// for nodes not heard in the term, Expiry), the planner's glue of
// planloop.go (planOnce around the real plan, one ProposeAll at a time),
// the fencer, and memberlist's view of who is alive.

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
)

var (
	errSimNotLeader = errors.New("not the leader")
	errSimLost      = errors.New("leadership lost before the commit")
	errSimTimeout   = errors.New("no answer in time")
	errSimFence     = errors.New("stomith failed")
)

// simRaft is a daemon's raft node, granter and planner (its term
// survives the daemon, as raft's stable store does).
type simRaft struct {
	term      uint64
	leader    bool
	readyAt   time.Duration        // its barrier is done
	electedAt time.Time            // on its clock
	heard     map[string]time.Time // node -> when its last answered renewal arrived
	lastHeard time.Duration        // a follower: the last heartbeat of a leader
	// campaigned is its last campaign; it campaigns again once timeout
	// has passed since that or since lastHeard. A campaign that failed
	// is not a leader's heartbeat: the candidate grants the next one
	// that asks (raft's pre-vote asks only that no leader be known, and a
	// candidate knows none), or candidates could keep refusing each other.
	campaigned time.Duration
	timeout    time.Duration // its election timeout
	noQuorum   time.Duration // a leader: since when it misses a quorum (0: it has one)
	pending    []*simEntry
	planBusy   bool // a ProposeAll runs
	planQueue  bool
	planTimer  int
	fencing    map[string]*simFence
}

// simEntry is one proposal (a ProposeAll of its commands).
type simEntry struct {
	cmds     []store.Command
	commitAt time.Duration
	done     func([]store.Result, error)
	term     uint64
	// holders: the other voters that took it into their logs (those
	// that followed its term and heard its leader when it was proposed,
	// and took the entry before it: logs match by prefix).
	holders map[*simNode]bool
}

type simFence struct {
	running bool
	retry   time.Time
	backoff time.Duration
}

func (s *sim) majority() int { return s.cfg.voters/2 + 1 }

func (s *sim) electionTimeout() time.Duration {
	return simElectionMin + s.rand(simElectionMax-simElectionMin)
}

// quorumOK: a majority of the voters, the leader included, follow its
// term and hear it now. A leadership check (VerifyLeader) and a commit
// succeed only then.
func (s *sim) quorumOK(l *simNode) bool {
	if !l.raft.leader || !l.running() {
		return false
	}
	k := 0
	for _, v := range s.nodes[:s.cfg.voters] {
		if v.raft.term == l.raft.term && s.reachable(l, v) {
			k++
		}
	}
	return k >= s.majority()
}

// tick is one round of heartbeats and probes.
func (s *sim) tick() {
	for _, n := range s.nodes {
		if n.running() {
			s.probe(n)
		}
	}
	voters := s.nodes[:s.cfg.voters]
	for _, l := range voters {
		if !l.raft.leader || !l.running() {
			continue
		}
		higher := false
		for _, v := range voters {
			if v.raft.term > l.raft.term && s.reachable(l, v) {
				higher = true
			}
		}
		switch {
		case higher:
			s.stepDown(l, "a higher term")
		case s.quorumOK(l):
			l.raft.noQuorum = 0
			s.tryCommit(l)
		case l.raft.noQuorum == 0:
			l.raft.noQuorum = s.now
		case s.now-l.raft.noQuorum >= simLeaderLease:
			s.stepDown(l, "no quorum")
		}
	}
	for _, v := range voters {
		if !v.running() || v.raft.leader {
			continue
		}
		for _, l := range voters {
			if l.raft.leader && l.running() && l.raft.term >= v.raft.term && s.reachable(l, v) {
				v.raft.term, v.raft.lastHeard = l.raft.term, s.now
			}
		}
	}
	for _, v := range voters {
		if v.running() && !v.raft.leader && s.now-max(v.raft.lastHeard, v.raft.campaigned) > v.raft.timeout {
			s.campaign(v)
		}
	}
}

// probe is memberlist's view from n: alive while reachable, suspect,
// then dead.
func (s *sim) probe(n *simNode) {
	for _, m := range s.nodes {
		if m == n {
			continue
		}
		p := n.view[m.name]
		if p == nil {
			p = &simPeer{}
			n.view[m.name] = p
		}
		was := p.state
		switch d := s.now - p.lastReach; {
		case s.reachable(n, m):
			p.seen, p.lastReach, p.state = true, s.now, api.NodeAlive
		case !p.seen:
		case d >= simDead:
			p.state = api.NodeDead
		case d >= simSuspect:
			p.state = api.NodeSuspect
		}
		if p.state != was {
			if p.state == api.NodeAlive {
				p.alive = s.now
			}
			s.kick(n)
		}
	}
}

// campaign: a pre-vote among the voters v reaches that have not heard a
// leader within the shortest election timeout; a majority elects it.
func (s *sim) campaign(v *simNode) {
	v.raft.campaigned, v.raft.timeout = s.now, s.electionTimeout()
	term := v.raft.term
	var grants []*simNode
	for _, w := range s.nodes[:s.cfg.voters] {
		if w != v && s.reachable(v, w) && !w.raft.leader && s.now-w.raft.lastHeard >= simElectionMin {
			grants = append(grants, w)
			term = max(term, w.raft.term)
		}
	}
	if len(grants)+1 < s.majority() {
		return
	}
	term++
	s.logf("%s leads term %d", v.name, term)
	// What earlier leaders proposed and did not commit: the new leader
	// commits what its log holds, a prefix of the previous term's
	// entries; the rest, and entries of older terms (proposed by a
	// deposed leader that had not noticed), are overwritten.
	for _, l := range s.nodes[:s.cfg.voters] {
		if l.raft.leader {
			s.inDoubt = append(s.inDoubt, l.raft.pending...)
			l.raft.pending = nil
		}
	}
	keep := true
	for _, e := range s.inDoubt {
		keep = keep && e.term == s.lastTerm && e.holders[v]
		if keep {
			s.logf("an entry of term %d is committed in term %d", e.term, term)
			s.apply(e.cmds)
		}
		e.done(nil, errSimLost)
	}
	s.inDoubt = nil
	s.lastTerm = term
	for _, w := range grants {
		w.raft.term, w.raft.lastHeard = term, s.now
	}
	r := &v.raft
	r.term, r.leader, r.noQuorum = term, true, 0
	r.readyAt = s.now + s.rand(simBarrierMax)
	r.electedAt = v.nowT()
	r.heard = map[string]time.Time{}
	s.daemonAt(v, r.readyAt, func() { s.kick(v) })
}

// stepDown: a leader learns it has lost its term; what it had not
// committed may yet be, by the next leader.
func (s *sim) stepDown(l *simNode, why string) {
	if !l.raft.leader {
		return
	}
	s.logf("%s steps down from term %d: %s", l.name, l.raft.term, why)
	l.raft.leader = false
	l.raft.lastHeard = s.now
	pending := l.raft.pending
	l.raft.pending = nil
	for _, e := range pending {
		e.done(nil, errSimLost)
		e.done = func([]store.Result, error) {}
	}
	s.inDoubt = append(s.inDoubt, pending...)
}

// raftDown: the daemon dies; its term is on disk.
func (s *sim) raftDown(n *simNode) {
	s.stepDown(n, "its daemon died")
}

// leaderFor is the leader a node's client reaches: the highest term
// among the daemons that say they lead, over a link not cut.
func (s *sim) leaderFor(n *simNode) *simNode {
	var best *simNode
	for _, l := range s.nodes[:s.cfg.voters] {
		if l.up && l.daemon && l.raft.leader && (l == n || !s.links[n.i][l.i].cut) {
			if best == nil || l.raft.term > best.raft.term {
				best = l
			}
		}
	}
	return best
}

// propose is raft.Apply of a batch on l: committed once a quorum follows.
func (s *sim) propose(l *simNode, cmds []store.Command, done func([]store.Result, error)) {
	if !l.raft.leader {
		done(nil, errSimNotLeader)
		return
	}
	e := &simEntry{cmds: cmds, commitAt: s.now + 500*time.Microsecond + 2*s.rand(simNetMax), done: done, term: l.raft.term, holders: map[*simNode]bool{}}
	var prev map[*simNode]bool
	if k := len(l.raft.pending); k > 0 {
		prev = l.raft.pending[k-1].holders
	}
	for _, v := range s.nodes[:s.cfg.voters] {
		if v != l && v.raft.term == l.raft.term && s.reachable(l, v) && (prev == nil || prev[v]) {
			e.holders[v] = true
		}
	}
	l.raft.pending = append(l.raft.pending, e)
	s.at(e.commitAt, func() { s.tryCommit(l) })
}

// tryCommit commits, in order, what the leader's quorum has.
func (s *sim) tryCommit(l *simNode) {
	if !s.quorumOK(l) {
		return
	}
	for len(l.raft.pending) > 0 && l.raft.pending[0].commitAt <= s.now {
		e := l.raft.pending[0]
		l.raft.pending = l.raft.pending[1:]
		e.done(s.apply(e.cmds), nil)
	}
}

func (s *sim) apply(cmds []store.Command) []store.Result {
	var res []store.Result
	for _, c := range cmds {
		s.index++
		r := s.state.Apply(s.index, c)
		s.logf("commit %d: %s %s %s stop=%v epoch=%d: %v (%s)", s.index, c.Op, c.Group, c.Node, c.Stop, c.Epoch, r.Err, c.Why)
		if c.Op == store.OpAssign && r.Err == nil && strings.HasPrefix(c.Why, "failback to ") {
			s.failbacks++
		}
		res = append(res, r)
	}
	for _, l := range s.nodes[:s.cfg.voters] {
		s.kick(l) // onCommitted: the loop decides again
	}
	return res
}

// proposeFrom is Cluster.propose on node n: to the leader it reaches
// (itself, or forwarded), with an answer, an error, or a timeout.
func (s *sim) proposeFrom(n *simNode, cmd store.Command, done func(error)) {
	finished := false
	finish := func(err error) {
		if !finished {
			finished = true
			done(err)
		}
	}
	s.daemonAtLocal(n, n.nowT().Add(simProposeWait), func() { finish(errSimTimeout) })
	l := s.leaderFor(n)
	if l == nil {
		s.daemonAt(n, s.now+10*time.Millisecond, func() { finish(errSimNotLeader) })
		return
	}
	s.send(n, l, func() {
		s.propose(l, []store.Command{cmd}, func(res []store.Result, err error) {
			if err == nil && res[0].Err != nil {
				err = res[0].Err
			}
			s.send(l, n, func() { finish(err) })
		})
	})
}

// grant is granter.answer for one renewal that arrived now: after the
// barrier of the term, a leadership check; then the time heard and the
// grant from the state as of now, by raftnode's own Grants.
func (s *sim) grant(l *simNode, node string, reply func(*raftnode.Grant)) {
	arrived, term := l.nowT(), l.raft.term
	if !l.raft.leader {
		reply(nil)
		return
	}
	s.daemonAt(l, max(s.now, l.raft.readyAt)+2*s.rand(simNetMax), func() {
		if !l.raft.leader || l.raft.term != term || !s.quorumOK(l) {
			reply(nil)
			return
		}
		if arrived.After(l.raft.heard[node]) {
			l.raft.heard[node] = arrived
		}
		f := l.raft.fencing[node]
		withheld := func(string) bool { return f != nil && f.running } // stomith.go's fencer, as raftnode's Config.Fencing
		g := raftnode.Grants(s.state, l.name, term, []string{node}, withheld)[node]
		reply(g)
	})
}

// expiry is raftnode.Node.Expiry on leader l.
func (s *sim) expiry(l *simNode, node string) (time.Time, bool) {
	r := &l.raft
	if !r.leader || s.now < r.readyAt {
		return time.Time{}, false
	}
	from := r.electedAt
	if h := r.heard[node]; h.After(from) {
		from = h
	}
	return from.Add(time.Duration(float64(simLease) * (1 + raftnode.Drift))), true
}

// kick is kickPlanner.
func (s *sim) kick(l *simNode) {
	if !l.voter || !l.raft.leader || l.raft.planQueue {
		return
	}
	l.raft.planQueue = true
	s.daemonAt(l, s.now, func() {
		l.raft.planQueue = false
		if !l.raft.planBusy {
			s.planOnce(l)
		}
	})
}

// planAt is planLoop's timer: a millisecond ahead at the soonest.
func (s *sim) planAt(l *simNode, t time.Time) {
	if soon := l.nowT().Add(time.Millisecond); t.Before(soon) {
		t = soon
	}
	l.raft.planTimer++
	gen := l.raft.planTimer
	s.daemonAtLocal(l, t, func() {
		if l.raft.planTimer == gen && !l.raft.planBusy {
			s.planOnce(l)
		}
	})
}

// planOnce is planloop.go's: the real plan on the committed state, the
// fencings it asks for, and its commands in one ProposeAll.
func (s *sim) planOnce(l *simNode) {
	r := &l.raft
	if !r.leader {
		return
	}
	now := l.nowT()
	if s.now < r.readyAt {
		s.planAt(l, now.Add(100*time.Millisecond))
		return
	}
	members := map[string]planMember{l.name: {state: api.NodeAlive, status: nodeStatus{Node: l.name, CPUs: 2, Load: l.load}, hasStatus: true}}
	for name, p := range l.view {
		if p.seen {
			// Up since memberlist last held it alive (planloop.go's noteUp
			// also counts from the leader's first renewal of it).
			var up time.Time
			if p.state == api.NodeAlive {
				up = l.clock(p.alive)
			}
			members[name] = planMember{state: p.state, status: nodeStatus{Node: name, CPUs: 2, Load: s.byName[name].load}, hasStatus: true, up: up}
		}
	}
	busy := map[string]bool{}
	for x, f := range r.fencing {
		if f.running || now.Before(f.retry) {
			busy[x] = true
		}
	}
	// Failback and the settle as a daemon has them: a group preferring a
	// node goes back to it after the hold, through the graceful move.
	cfg := planConfig{fenceTime: simFenceTime, stomith: s.cfg.stomith, lease: simLease,
		failback: true, failbackHold: FailbackHold(simLease), settle: 2 * simLease, expectCount: s.cfg.nodes}
	out := plan(planInput{now: now, cfg: cfg, state: s.state, hactl: s.hactl,
		members: members, expiry: func(x string) (time.Time, bool) { return s.expiry(l, x) }, fencing: busy})
	// planloop.go checks its leadership before it fences.
	if len(out.fence) > 0 && !s.quorumOK(l) {
		s.planAt(l, now.Add(100*time.Millisecond))
		return
	}
	for _, x := range out.fence {
		s.startFence(l, x)
	}
	if len(out.cmds) == 0 {
		if !out.wake.IsZero() {
			s.planAt(l, out.wake)
		}
		return
	}
	r.planBusy = true
	inc := l.inc
	s.propose(l, out.cmds, func(_ []store.Result, err error) {
		if l.inc != inc {
			return
		}
		l.raft.planBusy = false
		next := l.nowT()
		if err != nil {
			next = next.Add(100 * time.Millisecond)
		}
		s.planAt(l, next)
	})
}

// startFence is stomith.go's: one stomith at a time per node, its exit 0
// committed, a failure retried after a backoff. A stomith that succeeds
// powers the node off.
func (s *sim) startFence(l *simNode, x string) {
	f := l.raft.fencing[x]
	if f == nil {
		f = &simFence{}
		l.raft.fencing[x] = f
	}
	if f.running || l.nowT().Before(f.retry) {
		return
	}
	f.running = true
	s.logf("%s fences %s", l.name, x)
	if !s.quorumOK(l) {
		// Fencing is the leader's, run once (SPEC 7): a deposed leader's
		// fence powers off nodes the cluster still counts on.
		s.chk.fail(fmt.Sprintf("%s fences %s without a quorum that follows it", l.name, x))
	}
	inc := l.inc
	s.at(s.now+s.rand(simStomithMax), func() {
		ok := !s.stomithBroken
		if ok {
			s.machineDown(s.byName[x], "fenced by "+l.name)
		}
		s.inDaemon(l, inc, func() {
			finish := func(err error) {
				f.running = false
				if err != nil {
					s.logf("%s fencing %s failed: %v", l.name, x, err)
					f.backoff = min(max(2*f.backoff, time.Second), simBackoffMax)
					f.retry = l.nowT().Add(f.backoff)
					s.daemonAtLocal(l, f.retry, func() { s.kick(l) })
				} else {
					f.backoff, f.retry = 0, time.Time{}
				}
				s.kick(l)
			}
			if !ok {
				finish(errSimFence)
				return
			}
			s.proposeFrom(l, store.Command{Op: store.OpFenced, Node: x, At: l.nowT().UnixMilli()}, finish)
		})
	})
}
