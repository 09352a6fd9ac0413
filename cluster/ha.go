package cluster

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// The levels of the HA lifecycle (SPEC 7): a node claims a group at
// plan, checks it can run it at test, then runs it at its hactl level;
// giving it up is stop.
const (
	LevelPlan = "plan"
	LevelTest = "test"
	LevelStop = cltab.LevelStop
)

// haConfig is what the placement rules need from the cltab.
type haConfig struct {
	quorum    int           // members needed, self included; 0: HA is off
	fenceTime time.Duration // a lost node has stopped its groups by then
	stomith   bool          // a fencing command is configured
	nodes     int           // :::nodes:, 0 when not set
	// detectMax is the longest a node cut off from the others takes to
	// see them dead (DetectBound); the caller sets it from the cluster's
	// size. Without stomith, a dead node's groups wait it plus fenceTime.
	detectMax time.Duration
	// Fixed rules, fields so that tests and the simulation can set them.
	planHold    time.Duration // a claim is held this long before test
	claimDelay  time.Duration // the k-th candidate waits k of these
	testBackoff time.Duration // a failed test rules a node out this long
	failBackoff time.Duration // a failed level rules it out this long
}

// Defaults of the HA rules.
const (
	DefaultFenceTime = cltab.DefaultFenceTime
	// planHold must outlast twice the gossip delay, or two nodes whose
	// views differ for a moment both move on before seeing the other's
	// claim: the simulation found double runs in 19 of 200 runs at 300 ms,
	// and at 600 ms only with a partition that began during the claim.
	planHold     = 600 * time.Millisecond
	claimDelay   = time.Second
	testBackoff  = time.Minute
	QuorumGrace  = time.Second     // a quorum lost this long is lost
	quorumStable = 2 * time.Second // a quorum held this long may claim
	failBackoff  = 5 * time.Minute
)

// safeWait is how long after a node was seen dead its groups may start
// elsewhere without fencing: by then, were it alive behind a cut, it has
// seen the others dead, counted the loss of quorum, and stopped them.
func (h haConfig) safeWait() time.Duration { return h.detectMax + QuorumGrace + h.fenceTime }

// haConfigOf reads the HA settings of a cltab. Without :::quorum: or
// :::nodes: a node cannot know it is in the majority, so HA stays off.
func haConfigOf(t *cltab.Tab) haConfig {
	h := haConfig{
		fenceTime:   DefaultFenceTime,
		planHold:    planHold,
		claimDelay:  claimDelay,
		testBackoff: testBackoff,
		failBackoff: failBackoff,
	}
	if t == nil {
		return h
	}
	h.fenceTime = t.Duration("fencetime", DefaultFenceTime)
	_, h.stomith = t.Setting("stomith")
	h.nodes = t.Int("nodes", 0)
	if q := t.Int("quorum", 0); q > 0 {
		h.quorum = q
	} else if n := t.Int("nodes", 0); n > 0 {
		h.quorum = n/2 + 1
	}
	return h
}

// haMember is one member as the rules see it.
type haMember struct {
	state     string    // api.NodeAlive, ...
	since     time.Time // when it entered that state (deaths: when seen)
	heard     time.Time // when anything last came from it (zero: unknown)
	status    nodeStatus
	hasStatus bool
}

// silentSince is when a dead member was last known alive: its death, or
// a packet from it after that. A node held dead by others may never have
// heard of its death (a short cut, the news lost), still run its groups
// and still talk to them; the safe wait counts from the last it was heard.
func (m haMember) silentSince() time.Time {
	if m.heard.After(m.since) {
		return m.heard
	}
	return m.since
}

// haInput is everything a decision depends on.
type haInput struct {
	self    string
	now     time.Time
	cfg     haConfig
	hactl   []*cltab.HAGroup
	members map[string]haMember
}

// haMemory is what a node remembers between decisions. decide updates
// it; nothing else does, but the caller records fencing results.
type haMemory struct {
	unheld  map[string]time.Time // group -> since when it runs nowhere
	bad     map[string]time.Time // group -> this node is ruled out until
	fenced  map[string]time.Time // dead node -> the death (its since) fenced
	pending map[string]string    // group -> level told, not yet seen
	probed  map[string]time.Time // dead node -> its silentSince when found unreachable
	known   map[string]bool      // groups seen in the hactl, to stop one removed from it
	// quorum held (or lost) continuously since, zero when not
	quorateSince, unquorateSince time.Time
	// wasQuorate: quorum was held once; lostQuorum: and lost since, so a
	// quorum regained must settle before claims.
	wasQuorate, lostQuorum bool
}

func newHAMemory() *haMemory {
	return &haMemory{unheld: map[string]time.Time{}, bad: map[string]time.Time{}, fenced: map[string]time.Time{}, pending: map[string]string{}, probed: map[string]time.Time{}, known: map[string]bool{}}
}

// haAction is what a decision asks for: tell a local group to go to a
// level, or fence a dead node.
type haAction struct {
	Group, Level string // a tell
	Fence        string // a node to fence
	Probe        string // a dead node to try to reach before taking its groups
	Why          string
}

func (a haAction) String() string {
	if a.Fence != "" {
		return "fence " + a.Fence + ": " + a.Why
	}
	return a.Group + " -> " + a.Level + ": " + a.Why
}

// haDecision is the outcome: actions, why each group runs nowhere (for
// hastat), and when to decide again if nothing else happens first.
type haDecision struct {
	actions []haAction
	why     map[string]string
	wake    time.Time
}

// phase orders holders in a collision: running beats testing beats
// planning.
func phase(level string) int {
	switch level {
	case LevelPlan:
		return 1
	case LevelTest:
		return 2
	}
	return 3
}

// holds reports whether a status shows group g held: at a level that is
// not stop, or still stopping.
func holds(s nodeStatus, g string) (groupState, bool) {
	for _, gs := range s.Groups {
		if gs.Group == g {
			return gs, gs.held()
		}
	}
	return groupState{}, false
}

// held: at a level that is not stop, or still stopping.
func (gs groupState) held() bool { return gs.Level != LevelStop || gs.State == api.StateStopping }

// ruledOut reports whether a node has ruled itself out for g.
func ruledOut(s nodeStatus, g string, now time.Time) bool {
	until, ok := s.Bad[g]
	return ok && now.UnixMilli() < until
}

// preferIndex is a node's place in a group's preferred list; unlisted
// nodes come after every listed one.
func preferIndex(h *cltab.HAGroup, node string) int {
	for i, n := range h.Prefer {
		if n == node {
			return i
		}
	}
	return len(h.Prefer)
}

// stableHash orders nodes for a group the same way on every node.
// It is FNV-1a of group, a zero byte and node, without allocating.
func stableHash(group, node string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(group); i++ {
		h = (h ^ uint64(group[i])) * prime
	}
	h *= prime // ^ 0
	for i := 0; i < len(node); i++ {
		h = (h ^ uint64(node[i])) * prime
	}
	return h
}

// claimBefore reports whether node a's claim on g beats node b's when
// both hold it: a later phase wins, then the stable hash. Both must
// agree on who backs off, so only what both see alike counts: the
// phases each gossips. Load is left out (two nodes may see different
// loads), and so is the preferred list: two nodes may hold different
// versions of the hactl (one edited during a partition reaches the other
// side only with a later push/pull), and each would then win in its own
// eyes. The preferred list already decides who claims first.
func claimBefore(h *cltab.HAGroup, a, b string, pa, pb int) bool {
	if pa != pb {
		return pa > pb
	}
	return stableHash(h.Group, a) < stableHash(h.Group, b)
}

// loadLevel is a status's load per CPU in levels: 0 below 1, then one
// level more at every doubling (1 up to 2, 2 up to 4, 3 up to 8...). A
// node ranks after another only when its level is higher. Load averages
// read at different moments always differ a little; compared as they
// are, every node of a mass placement would rank first the one that read
// the lowest, and send it every group. Equal levels leave the order to
// the stable hash, which spreads groups evenly. Doubling levels, rather
// than whole steps, because a node gossips its status when its level
// changes: where a load climbs or falls by tens, as it does on a machine
// running many daemons, whole steps would have every node gossip its
// status every few seconds for a distinction (40 or 41 runnable per CPU)
// that placement has no use for.
func loadLevel(s nodeStatus) int {
	per := s.Load / float64(max(s.CPUs, 1))
	if !(per >= 1) { // also NaN
		return 0
	}
	return 1 + int(min(math.Log2(per), 62))
}

// rankKey is a candidate's place in the order in which candidates start
// a group (SPEC 7): preferred nodes in order, then the lowest load per
// CPU (in loadLevels), then the stable hash.
type rankKey struct {
	prefer, level int
	hash          uint64
}

// candidate is a member that may start groups, with its load level.
type candidate struct {
	node   string
	level  int
	status *nodeStatus
}

func keyOf(h *cltab.HAGroup, c candidate) rankKey {
	return rankKey{preferIndex(h, c.node), c.level, stableHash(h.Group, c.node)}
}

func (a rankKey) before(b rankKey) bool {
	switch {
	case a.prefer != b.prefer:
		return a.prefer < b.prefer
	case a.level != b.level:
		return a.level < b.level
	}
	return a.hash < b.hash
}

// placeAmong returns where self ranks among the candidates to start g
// (-1 when it is none of them) and the one that ranks first, in one pass:
// every node ranks every group running nowhere at each decision, and a
// sort of the candidates of 1,000 groups on 100 nodes took 20 ms.
func placeAmong(h *cltab.HAGroup, cands []candidate, self string) (pos int, first string) {
	pos = -1
	var firstKey, selfKey rankKey
	for _, c := range cands {
		if c.node == self {
			pos, selfKey = 0, keyOf(h, c)
		}
	}
	for _, c := range cands {
		k := keyOf(h, c)
		if first == "" || k.before(firstKey) {
			first, firstKey = c.node, k
		}
		if pos >= 0 && c.node != self && k.before(selfKey) {
			pos++
		}
	}
	return pos, first
}

// decide applies the HA rules for this node. It is a function of its
// input and the node's memory, which it updates, and nothing else.
func decide(in haInput, mem *haMemory) haDecision {
	d := haDecision{why: map[string]string{}}
	wake := func(t time.Time) {
		if d.wake.IsZero() || t.Before(d.wake) {
			d.wake = t
		}
	}
	for g, until := range mem.bad {
		if !in.now.Before(until) {
			delete(mem.bad, g)
		} else {
			wake(until)
		}
	}
	// A member that announced it is leaving no longer counts: it will be
	// gone in a moment, and claiming on its vote would be undone at once.
	alive := 0
	learning := false // a live member's status is not known: it may hold any group
	for name, m := range in.members {
		if (m.state == api.NodeAlive || m.state == api.NodeSuspect) && (name == in.self || !m.status.Leaving) {
			alive++
		}
		if (m.state == api.NodeAlive || m.state == api.NodeSuspect) && name != in.self && !m.hasStatus {
			learning = true
		}
	}
	quorate := in.cfg.quorum > 0 && alive >= in.cfg.quorum
	// A membership blip (a healed partition's stale death notices can
	// mark a peer dead for a moment) must not stop a running group, nor a
	// quorum just regained start one: a loss counts after QuorumGrace,
	// and claims wait until quorum has held for quorumStable.
	if quorate {
		mem.unquorateSince = time.Time{}
		if mem.quorateSince.IsZero() {
			mem.quorateSince = in.now
		}
		mem.wasQuorate = true
	} else {
		mem.quorateSince = time.Time{}
		if mem.unquorateSince.IsZero() {
			mem.unquorateSince = in.now
		}
		mem.lostQuorum = mem.wasQuorate
	}
	lostQuorum := !quorate && !in.now.Before(mem.unquorateSince.Add(QuorumGrace))
	if !quorate && !lostQuorum {
		wake(mem.unquorateSince.Add(QuorumGrace))
	}
	// A node that just started has never held quorum: it learns every
	// status at its join (and waits while one is unknown), so it need not
	// settle; one that lost quorum and regained it does.
	settled := quorate && (!mem.lostQuorum || !in.now.Before(mem.quorateSince.Add(quorumStable)))
	if quorate && !settled && mem.lostQuorum {
		wake(mem.quorateSince.Add(quorumStable))
	}
	self := in.members[in.self].status
	selfGroups := make(map[string]groupState, len(self.Groups))
	for _, gs := range self.Groups {
		selfGroups[gs.Group] = gs
	}
	// selfHeld is holds(self, g), by the index.
	selfHeld := func(g string) (groupState, bool) {
		gs, ok := selfGroups[g]
		return gs, ok && gs.held()
	}
	fenceAsked := map[string]bool{}

	tell := func(g, level, why string) {
		if gs, _ := selfHeld(g); mem.pending[g] == level || (gs.Level == level && level != "") {
			return // told already, or there already
		}
		d.actions = append(d.actions, haAction{Group: g, Level: level, Why: why})
	}
	ruleOut := func(g string, until time.Time) {
		mem.bad[g] = until
		wake(until)
	}

	// A group that left the hactl runs nowhere (SPEC 7), like one at stop.
	listed := map[string]bool{}
	for _, h := range in.hactl {
		listed[h.Group] = true
		mem.known[h.Group] = true
	}
	for g := range mem.known {
		if listed[g] {
			continue
		}
		if _, held := holds(self, g); held {
			tell(g, LevelStop, "no longer in the hactl")
		} else {
			delete(mem.known, g)
		}
	}

	// Who else holds each group, and each member's load level, once per
	// decision: a decision looks at every group, and a scan of every
	// member's groups for each would cost groups x members map lookups
	// (7 ms for 1,000 groups on 100 nodes, at every flush).
	type held struct {
		node string
		gs   groupState
	}
	heldBy := make(map[string][]held, len(in.hactl))
	var pool []candidate // live members with a status, not leaving
	for name, m := range in.members {
		if !m.hasStatus {
			continue
		}
		if m.state == api.NodeAlive && !m.status.Leaving {
			pool = append(pool, candidate{name, loadLevel(m.status), &m.status})
		}
		if name == in.self {
			continue
		}
		for _, gs := range m.status.Groups {
			if gs.held() {
				heldBy[gs.Group] = append(heldBy[gs.Group], held{name, gs})
			}
		}
	}

	var cands []candidate // reused for each group
	for _, h := range in.hactl {
		g := h.Group
		mine, selfHolds := selfHeld(g)
		if p, ok := mem.pending[g]; ok && mine.Level == p {
			delete(mem.pending, g)
		}

		// Who holds it: live nodes, and dead ones not yet fenced.
		type holder struct {
			node     string
			phase    int
			stopping bool // giving it up: it beats no claim, but is waited for
		}
		var holders []holder
		var unfenced []string
		for _, o := range heldBy[g] {
			name, gs, m := o.node, o.gs, in.members[o.node]
			switch m.state {
			case api.NodeAlive, api.NodeSuspect:
				holders = append(holders, holder{name, phase(gs.Level), gs.Level == LevelStop})
			case api.NodeDead:
				if !mem.fenced[name].Equal(m.since) {
					// Without stomith: a node alive behind a cut sees the
					// others dead within detectMax, and has stopped by
					// itself fenceTime later. Even then it is tried once
					// more: a cut may have healed, or only this side may
					// have lost it; one that answers is not dead.
					safe := m.silentSince().Add(in.cfg.safeWait())
					switch {
					case !in.cfg.stomith && !in.now.Before(safe) && mem.probed[name].Equal(m.silentSince()):
						mem.fenced[name] = m.since
					default:
						unfenced = append(unfenced, name)
						if !in.cfg.stomith && in.now.Before(safe) {
							wake(safe)
						}
					}
				}
			}
		}
		sort.Slice(holders, func(i, j int) bool { return holders[i].node < holders[j].node })
		sort.Strings(unfenced)

		switch {
		case h.Level == LevelStop:
			delete(mem.unheld, g)
			d.why[g] = "stopped in hactl"
			if selfHolds {
				tell(g, LevelStop, "hactl says stop")
			}
			continue
		case in.cfg.quorum == 0:
			delete(mem.unheld, g)
			d.why[g] = "no quorum: set :::nodes: (or :::quorum:) in the cltab"
			if selfHolds {
				tell(g, LevelStop, "HA is off")
			}
			continue
		case !quorate:
			delete(mem.unheld, g)
			d.why[g] = fmt.Sprintf("no quorum: %d of %d members", alive, in.cfg.quorum)
			if selfHolds && lostQuorum {
				tell(g, LevelStop, "lost quorum")
			}
			continue
		}

		if selfHolds {
			d.why[g] = ""
			beaten, stopping := "", ""
			for _, o := range holders {
				if o.stopping {
					stopping = o.node
				} else if claimBefore(h, o.node, in.self, o.phase, phase(mine.Level)) {
					beaten = o.node
					break
				}
			}
			// Going further than a claim while another node still stops
			// the group could overlap with its services.
			waitStop := stopping != "" && (mine.Level == LevelPlan || mine.Level == LevelTest) && mine.State != api.StateFailed
			switch {
			case beaten != "":
				tell(g, LevelStop, "backing off: "+beaten+" holds it too and ranks first")
			case mine.State == api.StateStopping || mem.pending[g] != "":
				// wait for the level in progress
			case mine.Level == LevelPlan && mine.State == api.StateFailed:
				ruleOut(g, in.now.Add(in.cfg.testBackoff))
				tell(g, LevelStop, "plan failed")
			case waitStop:
				d.why[g] = "waiting for " + stopping + " to stop it"
			case mine.Level == LevelPlan:
				ready := time.UnixMilli(mine.Since).Add(in.cfg.planHold)
				if in.now.Before(ready) {
					wake(ready)
					break
				}
				if mine.State != api.StateDone && mine.State != api.StatePassed {
					break // the plan level still runs; its end is a status change
				}
				tell(g, LevelTest, "claim held, no better claimant")
			case mine.Level == LevelTest && mine.State == api.StateFailed:
				ruleOut(g, in.now.Add(in.cfg.testBackoff))
				tell(g, LevelStop, "test failed: ruled out for "+in.cfg.testBackoff.String())
			case mine.Level == LevelTest && (mine.State == api.StatePassed || mine.State == api.StateDone):
				tell(g, h.Level, "test passed")
			case mine.Level == LevelTest:
				// testing
			case mine.State == api.StateFailed || mine.Throttled:
				ruleOut(g, in.now.Add(in.cfg.failBackoff))
				tell(g, LevelStop, "level "+mine.Level+" failed: ruled out for "+in.cfg.failBackoff.String())
			case mine.Level != h.Level:
				tell(g, h.Level, "hactl level changed")
			}
			delete(mem.unheld, g)
			continue
		}

		if len(holders) > 0 {
			delete(mem.unheld, g)
			d.why[g] = ""
			continue
		}

		// Runs nowhere. Candidates: live quorate-looking members that
		// have not ruled themselves out and are not leaving.
		cands = cands[:0]
		for _, c := range pool {
			if ruledOut(*c.status, g, in.now) || (c.node == in.self && mem.bad[g].After(in.now)) {
				continue
			}
			cands = append(cands, c)
		}
		pos, first := placeAmong(h, cands, in.self)
		if len(cands) == 0 || len(unfenced) > 0 || !settled || learning {
			// Not claimable yet: the claim delays count from when it is,
			// or every candidate would claim at once then.
			delete(mem.unheld, g)
		} else if _, ok := mem.unheld[g]; !ok {
			mem.unheld[g] = in.now
		}
		switch {
		case len(cands) == 0:
			d.why[g] = "no eligible node"
			continue
		case len(unfenced) > 0:
			d.why[g] = "fencing " + unfenced[0] + " pending"
			if pos == 0 {
				for _, n := range unfenced {
					if fenceAsked[n] {
						continue
					}
					if in.cfg.stomith {
						fenceAsked[n] = true
						d.actions = append(d.actions, haAction{Fence: n, Why: "it held " + g + " when it died"})
					} else if !in.now.Before(in.members[n].silentSince().Add(in.cfg.safeWait())) {
						fenceAsked[n] = true
						d.actions = append(d.actions, haAction{Probe: n, Why: "it held " + g + " when it died; safe wait over"})
					}
				}
			}
			continue
		case pos < 0:
			d.why[g] = "waiting for " + first + " to claim it"
			continue
		}
		start := mem.unheld[g].Add(time.Duration(pos) * in.cfg.claimDelay)
		if in.now.Before(start) {
			d.why[g] = "waiting for " + first + " to claim it"
			wake(start)
			continue
		}
		if !settled {
			d.why[g] = "quorum just reached: settling"
			continue
		}
		d.why[g] = "claimed by " + in.self
		tell(g, LevelPlan, fmt.Sprintf("runs nowhere; this node ranks %d of %d", pos+1, len(cands)))
	}
	if learning {
		// Nothing starts or moves on until every live member's status is
		// known; giving a group up needs no such knowledge.
		kept := d.actions[:0]
		for _, a := range d.actions {
			if a.Fence == "" && a.Probe == "" && a.Level != LevelStop {
				d.why[a.Group] = "learning the cluster"
				continue
			}
			kept = append(kept, a)
		}
		d.actions = kept
	}
	for _, a := range d.actions {
		if a.Fence == "" && a.Probe == "" {
			mem.pending[a.Group] = a.Level
		}
	}
	return d
}
