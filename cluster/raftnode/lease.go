package raftnode

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clinit/clinit/cluster/store"
)

// The lease (HA.md): a node runs an HA group only while the committed
// assignment names it and a renewal it sent at its own time s was
// answered by the leader; it then holds the lease until s + Lease. The
// leader answers only after a leadership check against a quorum that
// began after the renewal arrived (at g, on its clock), and notes g: the
// node's lease ends before g + Lease·(1+Drift) in real time, whatever
// the two clocks read. A new leader does not know its predecessor's g,
// so for a node that has not renewed with it, it counts from its own
// election.
const (
	// DefaultLease is well over an election (up to about four seconds
	// with the timings of node.go), so that a leader's death does not
	// lapse the leases of nodes that renew every RenewEvery: the last
	// renewal answered before the death holds at least 7.5 s more.
	DefaultLease = 8 * time.Second
	// Drift bounds how much faster or slower two machines' monotonic
	// clocks run: 1 % is far beyond what NTP-disciplined or even free
	// running crystals do.
	Drift = 0.01
)

// RenewEvery is how often a node renews a lease: a quarter of it, and at
// least every 500 ms, so that a leader hears a live node often enough to
// tell it from a dead one within a second or two (the planner's fence
// silence), whatever the lease.
func RenewEvery(lease time.Duration) time.Duration {
	return min(lease/4, 500*time.Millisecond)
}

// FenceSilence is how long a leader must not have heard a renewal of a
// node before it may fence it (with memberlist no longer holding it
// alive, cluster/plan.go): three renewals missed, at most half a lease.
// Fencing needs no wait for safety (its exit 0 is the proof); the wait
// only keeps a node that is merely slow from being fenced.
func FenceSilence(lease time.Duration) time.Duration {
	return min(lease/2, 3*RenewEvery(lease))
}

// RenewTimeout is how long a renewal may take before it counts as
// failed and is tried again (against the leader it names, or another
// voter): four renewals' time, at most half the lease.
func RenewTimeout(lease time.Duration) time.Duration {
	return min(lease/2, 4*RenewEvery(lease))
}

// Grant is a leader's answer to a renewal: the node's assignments as of
// the leader's applied index, which a leader reaches (by a barrier)
// before it answers any renewal of its term.
type Grant struct {
	Leader string            `json:"leader"`
	Term   uint64            `json:"term"`
	Index  uint64            `json:"index"`  // the state the grant reflects
	Groups map[string]uint64 `json:"groups"` // group -> epoch, assigned to the node
	// Release: groups the node is asked to stop and then release
	// (an assignment to "" from that epoch), group -> epoch.
	Release map[string]uint64 `json:"release,omitempty"`
	Files   map[string]uint64 `json:"files"` // kind -> committed version
	// Maintenance: an operator asked HA to start, stop and move nothing
	// (the lease still bounds what runs).
	Maintenance bool `json:"maintenance,omitempty"`
	// Forgotten: nodes an operator said are gone for good; the views
	// drop them while they are not up.
	Forgotten map[string]bool `json:"forgotten,omitempty"`
}

// granter answers renewals on the leader, one leadership check for every
// batch of renewals that arrived before it began, and remembers when it
// last heard from each node in its term.
type granter struct {
	n     *Node
	lease time.Duration
	reqs  chan renewal

	readyMu   sync.Mutex // held across ready: one barrier per term
	mu        sync.Mutex
	term      uint64               // the term heard and electedAt belong to; 0: none
	electedAt time.Time            // when this node knew it led term
	heard     map[string]time.Time // node -> when its last answered renewal arrived
	// silent fires onSilent(node) once node has not renewed for
	// FenceSilence: the planner hears of a silence when it begins, with
	// no polling.
	silent   map[string]*time.Timer
	onSilent func(node string)
	fencing  func(node string) bool // Config.Fencing
}

type renewal struct {
	node  string
	at    time.Time // g: when it arrived
	reply chan renewResult
}

type renewResult struct {
	g   Grant
	err error
}

func newGranter(n *Node, lease time.Duration) *granter {
	return &granter{n: n, lease: lease, reqs: make(chan renewal, 256), heard: map[string]time.Time{}, silent: map[string]*time.Timer{}}
}

// renew queues a renewal that arrived at g and waits for its answer.
func (gr *granter) renew(node string, g time.Time) (Grant, error) {
	r := renewal{node: node, at: g, reply: make(chan renewResult, 1)}
	select {
	case gr.reqs <- r:
	case <-gr.n.closed:
		return Grant{}, errors.New("raft node closed")
	}
	select {
	case res := <-r.reply:
		return res.g, res.err
	case <-gr.n.closed:
		return Grant{}, errors.New("raft node closed")
	}
}

// run is the one goroutine that checks leadership and answers renewals.
func (gr *granter) run() {
	for {
		var batch []renewal
		select {
		case r := <-gr.reqs:
			batch = append(batch, r)
		case <-gr.n.closed:
			return
		}
	drain:
		for {
			select {
			case r := <-gr.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		gr.answer(batch)
	}
}

func (gr *granter) answer(batch []renewal) {
	fail := func(err error) {
		for _, r := range batch {
			r.reply <- renewResult{err: err}
		}
	}
	term, err := gr.ready()
	if err != nil {
		fail(err)
		return
	}
	// The check starts after every renewal of the batch arrived.
	if err := gr.n.raft.VerifyLeader().Error(); err != nil {
		fail(ErrNotLeader)
		return
	}
	if gr.n.raft.CurrentTerm() != term {
		fail(ErrNotLeader) // led another term meanwhile: its barrier first
		return
	}
	leader := gr.n.cfg.Node
	gr.mu.Lock()
	for _, r := range batch {
		if r.at.After(gr.heard[r.node]) {
			gr.heard[r.node] = r.at
			gr.armSilence(r.node, r.at)
		}
	}
	gr.mu.Unlock()
	var grants []Grant
	gr.n.fsm.read(func(s *store.State) {
		// One pass over the assignments for the whole batch, not one
		// per renewal: a hundred nodes renew twice a second each.
		nodes := make([]string, len(batch))
		for i, r := range batch {
			nodes[i] = r.node
		}
		byNode := Grants(s, leader, term, nodes, gr.fencing)
		for _, r := range batch {
			grants = append(grants, *byNode[r.node])
		}
	})
	for i, r := range batch {
		r.reply <- renewResult{g: grants[i]}
	}
}

// Grants is what leader, in term, grants each of nodes from the
// committed state s: the groups assigned to it (Groups) and those it is
// to stop (Release), each with its epoch, as of s.Index. A node whose
// fencing runs now (withheld, nil for none) is granted no group to
// run, and no assignment made before its node was fenced is granted at
// all: its copy is gone, or the fence's success says so (HA.md I2).
func Grants(s *store.State, leader string, term uint64, nodes []string, withheld func(node string) bool) map[string]*Grant {
	files := map[string]uint64{}
	for k, f := range s.Files {
		files[k] = f.Version
	}
	var forgotten map[string]bool
	for n := range s.Forgotten {
		if forgotten == nil {
			forgotten = map[string]bool{}
		}
		forgotten[n] = true
	}
	byNode := make(map[string]*Grant, len(nodes))
	held := map[string]bool{}
	for _, n := range nodes {
		if byNode[n] == nil {
			byNode[n] = &Grant{Leader: leader, Term: term, Index: s.Index, Groups: map[string]uint64{}, Release: map[string]uint64{}, Files: files, Maintenance: s.Maintenance, Forgotten: forgotten}
			held[n] = withheld != nil && withheld(n)
		}
	}
	for grp, a := range s.Assign {
		g := byNode[a.Node]
		switch {
		case g == nil, s.FencedSince(a), held[a.Node] && !a.Stop:
		case a.Stop:
			g.Release[grp] = a.Epoch
		default:
			g.Groups[grp] = a.Epoch
		}
	}
	return byNode
}

// ready returns the term this node leads, once its state machine has
// applied everything committed before: a grant of a new leader whose
// state lagged could name a group that a committed entry moved away.
// The first call of a term resets what was heard: a predecessor may
// have granted leases this node never saw.
func (gr *granter) ready() (uint64, error) {
	gr.readyMu.Lock()
	defer gr.readyMu.Unlock()
	if !gr.n.IsLeader() {
		return 0, ErrNotLeader
	}
	term := gr.n.raft.CurrentTerm()
	gr.mu.Lock()
	same := gr.term == term
	gr.mu.Unlock()
	if same {
		return term, nil
	}
	elected := time.Now()
	if err := gr.n.raft.Barrier(applyTimeout).Error(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	if gr.n.raft.CurrentTerm() != term {
		return 0, ErrNotLeader
	}
	gr.mu.Lock()
	gr.term, gr.electedAt, gr.heard = term, elected, map[string]time.Time{}
	gr.stopSilence()
	gr.mu.Unlock()
	return term, nil
}

// armSilence (gr.mu held) restarts node's silence timer from at, when
// its renewal arrived.
func (gr *granter) armSilence(node string, at time.Time) {
	if gr.onSilent == nil {
		return
	}
	select {
	case <-gr.n.closed:
		return
	default:
	}
	d := time.Until(at.Add(FenceSilence(gr.lease)))
	if t, ok := gr.silent[node]; ok {
		t.Reset(d)
		return
	}
	gr.silent[node] = time.AfterFunc(d, func() { gr.onSilent(node) })
}

// stopSilence (gr.mu held) stops every silence timer.
func (gr *granter) stopSilence() {
	for node, t := range gr.silent {
		t.Stop()
		delete(gr.silent, node)
	}
}

// Expiry is when, on the leader's clock, the lease of node has surely
// ended in real time: the last renewal this leader answered, or its own
// election for a node that has not renewed with it, plus
// Lease·(1+Drift). ok is false when this node does not lead a term it
// has made ready: it then knows nothing about anybody's lease.
func (n *Node) Expiry(node string) (t time.Time, ok bool) {
	gr := n.grant
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.term == 0 || !n.IsLeader() || n.raft.CurrentTerm() != gr.term {
		return time.Time{}, false
	}
	from := gr.electedAt
	if h := gr.heard[node]; h.After(from) {
		from = h
	}
	return from.Add(time.Duration(float64(gr.lease) * (1 + Drift))), true
}

// Ready makes this leader's term ready for lease bookkeeping (its
// barrier done) and reports whether it is: the planner calls it before
// it reads Expiry.
func (n *Node) Ready() error {
	_, err := n.grant.ready()
	return err
}
