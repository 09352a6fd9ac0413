package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
	"github.com/clinit/clinit/internal/atomicfile"
)

// ErrClosed is returned by requests made after Close.
var ErrClosed = errors.New("cluster layer stopped")

// Kinds of the replicated files.
const (
	KindCltab = "cltab"
	KindHactl = "hactl"
)

// How often the load is read.
const loadEvery = 10 * time.Second

// Cluster is this node's membership of the cluster.
type Cluster struct {
	cfg    Config
	log    *zap.Logger
	ml     *memberlist.Memberlist                // nil on a single node; set before run starts
	mlRef  atomic.Pointer[memberlist.Memberlist] // ml, for memberlist's own goroutines during Create
	queue  *memberlist.TransmitLimitedQueue
	secure bool   // a key is set
	meta   []byte // this node's memberlist metadata (nodeMeta)

	// Consensus (consensus.go): the raft voter (nil when this node does
	// not vote), the clients to the leader, the voters' raft addresses.
	voters      voters
	rn          *raftnode.Node
	rc          *raftnode.Client // edits and state reads
	leaseClient *raftnode.Client // renewals, never behind an edit
	voterList   atomic.Pointer[[]string]
	voterByID   atomic.Pointer[map[string]string]
	planKick    chan struct{}
	probe       *prober              // pings of silent nodes (probe.go)
	renewKick   chan struct{}        // a renewal now, please
	gate        atomic.Pointer[gate] // MayStart's; written by the loop
	fence       *fencer
	// renewSince: since when each member has renewed with this leader
	// without a lapse, for the failback hold. planLoop's only.
	renewSince map[string]time.Time
	keeper     keeperState

	events   chan func() // from memberlist's delegates; never blocks them
	overflow atomic.Bool // an event was dropped: resync from memberlist
	reqs     chan func()
	statusCh chan struct{} // a new engine status is in latest
	latest   atomic.Pointer[api.Status]
	local    atomic.Pointer[[]byte] // the push/pull state, ready for memberlist
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	leaving  atomic.Bool

	// Owned by run.
	view         *view
	self         nodeStatus
	files        []*fileCopy
	committed    *store.State // the newest committed state known here
	bootstrapped bool         // this voter has raft state
	fetching     bool         // a state read from the leader runs
	hactl        *cltab.Hactl
	hastatText   string        // what hastat holds
	hastatBuf    []byte        // the next text, built in place
	seen         *seenStatuses // status messages handled lately
	// dirtyHastat: the view changed since hastat was written, at
	// hastatAt.
	dirtyHastat bool
	hastatAt    time.Time
	dirtyView   bool // hastat must be rewritten
	dirtyLocal  bool // the push/pull state must be rebuilt
	localAt     time.Time
	ha          *haState
	watchers    map[chan api.Event]bool
	watching    atomic.Int32   // len(watchers), for Emit
	notes       chan api.Event // events from outside the loop (Emit)
	// This node's status gossip: when last sent, and a newer one waits
	// for selfTimer.
	selfSent    time.Time
	selfPending bool
	selfTimer   *time.Timer
	// The last summary handed to OnSummary, and the timer of its lease's
	// end (summary.go).
	summary      Summary
	summarized   bool
	summaryTimer *time.Timer

	// Counters for metrics, read from any goroutine.
	transitions, fenceOK, fenceFailed atomic.Uint64
}

// Counters returns how many state changes this node's groups made and
// how many fencing runs succeeded and failed.
func (c *Cluster) Counters() (transitions, fenceOK, fenceFailed uint64) {
	return c.transitions.Load(), c.fenceOK.Load(), c.fenceFailed.Load()
}

// Start joins the cluster (or runs as a single node when the config asks
// for no cluster), and starts the loop that owns the view.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if msg := cltab.BadName("node", cfg.Node); msg != "" {
		return nil, fmt.Errorf("%s: give this node a good --node", msg)
	}
	c := &Cluster{
		cfg:      cfg,
		log:      cfg.Log.Named("cluster"),
		secure:   cfg.Key != nil,
		events:   make(chan func(), 4096),
		reqs:     make(chan func()),
		statusCh: make(chan struct{}, 1),
		selfTimer: func() *time.Timer {
			t := time.NewTimer(time.Hour)
			t.Stop()
			return t
		}(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		view:     newView(cfg.Node),
		seen:     newSeenStatuses(),
		hactl:    &cltab.Hactl{},
		ha:       newHAState(cfg.Tab),
		watchers: map[chan api.Event]bool{},
		notes:    make(chan api.Event, noteBuffer),
	}
	c.planKick = make(chan struct{}, 1)
	c.renewKick = make(chan struct{}, 1)
	c.fence = newFencer()
	c.probe = newProber()
	c.self = nodeStatus{Node: cfg.Node, CPUs: numCPU(), Load: loadAvg()}
	c.bump()
	saved := loadVersions(cfg.StateDir)
	var edited []*fileCopy
	for _, f := range cfg.Files {
		r := &fileCopy{File: f}
		if v, ok := saved[f.Kind]; ok {
			r.version, r.text = v.Version, v.Text
		}
		data, err := os.ReadFile(f.Path)
		switch {
		case errors.Is(err, os.ErrNotExist) && r.version > 0:
			// A committed copy removed while the daemon was down is put
			// back: removing a file is no edit.
			if err := atomicfile.Write(f.Path, []byte(r.text), 0o644); err != nil {
				return nil, fmt.Errorf("restoring %s: %w", f.Path, err)
			}
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("cannot read %s: %w", f.Kind, err)
		case string(data) != r.text && len(data) > 0:
			edited = append(edited, r)
		}
		c.files = append(c.files, r)
	}
	c.parseHactl()
	c.rebuildLocal()
	// Closed for HA groups until a lease opens it: a daemon restarted on
	// its state starts none of them on its own.
	c.updateGate()

	var err error
	if c.voters, _, err = votersOf(cfg.Tab); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if cfg.Clustered() {
		installMetrics()
		mc, err := cfg.memberlistConfig()
		if err != nil {
			return nil, err
		}
		d := &delegate{c}
		mc.Delegate, mc.Events, mc.Alive = d, d, d
		mc.LogOutput = logWriter{c.log.Named("memberlist")}
		c.queue = &memberlist.TransmitLimitedQueue{
			NumNodes: func() int {
				if m := c.mlRef.Load(); m != nil {
					return m.NumMembers()
				}
				return 1
			},
			RetransmitMult: mc.RetransmitMult,
		}
		tr, err := c.transport(mc)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		if err := c.startRaft(mc, tr); err != nil {
			tr.Shutdown()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		mc.Transport = tr
		ml, err := memberlist.Create(mc)
		if err != nil {
			tr.Shutdown()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.ml = ml
		c.mlRef.Store(ml)
		c.log.Info("cluster member", zap.String("node", cfg.Node), zap.String("addr", c.Addr()), zap.Bool("encrypted", c.secure))
		if !c.secure {
			c.log.Warn("no key: gossip and raft are not encrypted (loopback or --insecure only)")
		}
	}
	go c.run()
	if c.ml != nil {
		go c.join()
	}
	if c.rn != nil {
		go c.followCommits()
		go c.planLoop()
	}
	if c.leaseClient != nil {
		go c.renew()
	}
	for _, r := range edited {
		go c.proposeEditedWhileDown(r)
	}
	return c, nil
}

// Addr is the HOST:PORT others reach this node at ("" on a single node).
func (c *Cluster) Addr() string {
	if c.ml == nil {
		return ""
	}
	n := c.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Done is closed when the loop has stopped.
func (c *Cluster) Done() <-chan struct{} { return c.done }

// SetStatus hands the engine's latest status to the cluster. It never
// blocks: only the newest status matters.
func (c *Cluster) SetStatus(st api.Status) {
	c.latest.Store(&st)
	select {
	case c.statusCh <- struct{}{}:
	default:
	}
}

// FileChanged reports that this node's copy of a replicated file changed
// on disk. A valid new content becomes the next version, replicated to
// every member; an invalid one is refused (its errors are returned) and
// not replicated. Content equal to the current version is no change. The
// file is read by the loop, the only writer of versions from elsewhere,
// so an edit is never judged on content that replication has replaced.
func (c *Cluster) FileChanged(ctx context.Context, kind string) error {
	if c.fileCopy(kind) == nil {
		return fmt.Errorf("not a replicated file: %s", kind)
	}
	_, err := c.proposeFile(ctx, kind, readCopy)
	if errors.Is(err, ErrNotReplicated) {
		// A local file, as on a single node: its hactl is what it shows.
		if kind == KindHactl {
			return c.call(ctx, func() {
				c.parseHactl()
				c.dirtyView = true
			})
		}
		return nil
	}
	return err
}

// EditHactl sets one group's line of the committed hactl (clinit --ha)
// and returns once it is committed, with its version. A nil prefer
// keeps the preferred nodes.
func (c *Cluster) EditHactl(ctx context.Context, group, level string, prefer []string) (uint64, error) {
	if c.fileCopy(KindHactl) == nil {
		return 0, errors.New("no hactl is configured")
	}
	// From the copy as it is when the base is taken (proposeFile).
	return c.proposeFile(ctx, KindHactl, func(r *fileCopy) ([]byte, error) {
		if r.Path == "" {
			return nil, errors.New("no hactl is configured")
		}
		return cltab.SetHactl([]byte(r.text), group, level, prefer), nil
	})
}

// Hastat returns the collated view.
func (c *Cluster) Hastat(ctx context.Context) (api.Hastat, error) {
	if c.rn == nil && c.rc != nil {
		// A node that does not vote reads the committed state when the
		// files change; what operators asked since (a ban, a standby) is
		// read now.
		if st, err := c.rc.State(ctx); err == nil {
			c.call(ctx, func() { c.onCommitted(st) })
		}
	}
	var h api.Hastat
	err := c.call(ctx, func() { h = c.hastatNow() })
	if c.ml != nil {
		g := GossipStats()
		h.Gossip = &g
	}
	return h, err
}

// Leave tells the others this node is going (they mark it left, not
// dead, and need not wait for failure detection), then closes.
func (c *Cluster) Leave(timeout time.Duration) {
	c.leaving.Store(true)
	if c.ml != nil {
		// The last status (every group stopped) goes out first.
		c.flushStatus()
		if err := c.ml.Leave(timeout); err != nil {
			c.log.Warn("leaving the cluster", zap.Error(err))
		}
	}
	c.Close()
}

// flushStatus pushes the newest status, marked as leaving, to every
// member directly: a node about to leave is not remembered running its
// groups, and the others record it as left, not dead.
func (c *Cluster) flushStatus() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.call(ctx, func() {
		c.publishLocal()
		c.self.Leaving = true
		c.bump()
		msg := encode(msgStatus, c.self)
		for _, n := range c.ml.Members() {
			if n.Name != c.cfg.Node {
				c.ml.SendReliable(n, msg)
			}
		}
	})
}

// Close stops the loop and memberlist, without a goodbye.
func (c *Cluster) Close() {
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		if c.rn != nil {
			if c.rn.IsLeader() {
				// A graceful stop hands leadership on: the others need
				// not wait an election timeout and a lease.
				c.rn.TransferLeadership()
			}
			c.rn.Close()
		}
		if c.rc != nil {
			c.rc.Close()
			c.leaseClient.Close()
		}
		if c.ml != nil {
			c.ml.Shutdown()
		}
		if c.cfg.Keeper != nil {
			c.cfg.Keeper.Close()
		}
		c.log.Info("cluster layer stopped")
	})
}

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
	c.dirtyView = true
	// A burst of events (a hundred members' statuses, a thousand groups
	// placed) is flushed once per flushGap, not once per event: each
	// flush runs the HA rules over every group and may write hastat.
	var lastFlush time.Time
	flushT := time.NewTimer(time.Hour)
	flushT.Stop()
	defer flushT.Stop()
	armed := false
	for {
		if c.dirtyView || c.ha.dirty || c.dirtyLocal || c.dirtyHastat {
			if wait := c.flushGap() - time.Since(lastFlush); wait <= 0 {
				c.flush()
				lastFlush = time.Now()
			} else if !armed {
				flushT.Reset(wait)
				armed = true
			}
		}
		select {
		case <-flushT.C:
			armed = false
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
			lastFlush = time.Time{}
		case <-loadTick.C:
			c.refreshLoad()
		case <-c.ha.timer.C:
			c.ha.dirty = true
		case <-c.selfTimer.C:
			if c.selfPending {
				c.publishSelfNow()
			}
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

// flushGap is the least time between two flushes: 50 ms, or 5 ms per
// member in bigger clusters. A flush runs the HA rules over every group
// (0.5 ms for 1,000 groups on 100 nodes, 3 ms while they are being
// placed) and rewrites hastat; statuses arrive faster the more members
// there are, and a hundred daemons flushing every 50 ms on one machine
// took more CPU than it had.
func (c *Cluster) flushGap() time.Duration {
	return max(50*time.Millisecond, time.Duration(len(c.view.members))*5*time.Millisecond)
}

// flush writes what the last events changed: the push/pull state and
// hastat.
func (c *Cluster) flush() {
	if c.dirtyView || c.ha.dirty {
		c.decideHA()
	}
	if c.dirtyLocal && time.Since(c.localAt) >= localGap {
		c.dirtyLocal = false
		c.localAt = time.Now()
		c.rebuildLocal()
	}
	if c.dirtyView {
		c.dirtyView = false
		c.dirtyHastat = true
	}
	if c.dirtyHastat && time.Since(c.hastatAt) >= c.hastatGap() {
		c.dirtyHastat = false
		c.hastatAt = time.Now()
		c.writeHastat()
	}
	c.noteSummary()
}

// hastatGap is the least time between two writes of hastat: that of the
// flushes, which this node's own changes skip (they are answered at
// once), while the file need not follow each of them.
func (c *Cluster) hastatGap() time.Duration { return c.flushGap() }

func (c *Cluster) writeHastat() {
	if c.cfg.Hastat == "" {
		return
	}
	text := c.view.hastatText(c.hastatBuf[:0], c.hactl)
	c.hastatBuf = text
	if string(text) == c.hastatText {
		return
	}
	if err := atomicfile.WriteStatus(c.cfg.Hastat, text, 0o644); err != nil {
		c.log.Error("writing hastat", zap.String("path", c.cfg.Hastat), zap.Error(err))
		return
	}
	c.hastatText = string(text)
}

// localGap is the least time between two rebuilds of the push/pull
// state: it is read at each push/pull (every 15 s or more), while every
// status received changes it (a hundred nodes placing their groups: a
// hundred a second, each rebuild encoding every status).
const localGap = time.Second

// rebuildLocal prepares what LocalState hands memberlist.
func (c *Cluster) rebuildLocal() {
	pp := pushPull{Node: c.cfg.Node, Statuses: make([]nodeStatus, 0, len(c.view.statuses))}
	for _, s := range c.view.statuses {
		if s.Node == c.cfg.Node {
			s = c.self
		}
		pp.Statuses = append(pp.Statuses, s)
	}
	b, _ := json.Marshal(pp)
	c.local.Store(&b)
}

// bump gives this node's status its next version.
func (c *Cluster) bump() {
	c.self.Version = max(c.self.Version+1, uint64(time.Now().UnixNano()))
	c.applyStatus(c.self)
	c.dirtyView, c.dirtyLocal = true, true
}

// publishLocal takes the engine's newest status and, when its groups
// changed, gossips it.
func (c *Cluster) publishLocal() {
	st := c.latest.Load()
	if st == nil {
		return
	}
	gs := groupsOf(*st, time.Now())
	if sameGroups(gs, c.self.Groups) {
		return
	}
	old := map[string]groupState{}
	for _, g := range c.self.Groups {
		old[g.Group] = g
	}
	for _, g := range gs {
		if o, ok := old[g.Group]; !ok || o.Level != g.Level || o.State != g.State {
			c.transitions.Add(1)
		}
	}
	c.self.Groups = gs
	c.bump()
	c.publishSelf()
}

// selfGap is the least time between two gossips of this node's status:
// a burst of changes (many groups placed at once) goes out as the
// newest status once per selfGap, not once per change; an isolated
// change goes out at once. It grows with the cluster: every node must
// receive every status, and a node receives some 30 UDP packets a
// second, so statuses that change faster than that can carry are
// delayed for seconds instead (the 30-node placement bench: claims made
// before the claims ahead were seen).
func (c *Cluster) selfGap() time.Duration {
	return max(100*time.Millisecond, time.Duration(len(c.view.members))*15*time.Millisecond)
}

// publishSelf gossips this node's status, at once or at the end of the
// current selfGap.
func (c *Cluster) publishSelf() {
	if wait := c.selfGap() - time.Since(c.selfSent); wait > 0 {
		if !c.selfPending {
			c.selfPending = true
			c.selfTimer.Reset(wait)
		}
		return
	}
	c.publishSelfNow()
}

// publishSelfNow gossips this node's status at once.
func (c *Cluster) publishSelfNow() {
	c.selfPending = false
	c.selfSent = time.Now()
	c.broadcast(c.self.Node, encode(msgStatus, c.self))
}

// directLimit: in a cluster this small, a node also sends its own status
// to every member by TCP. Gossip alone transmits a message a few times by
// UDP (4 times on 2 or 3 nodes) and, under load, all of them can be lost:
// the status would then wait for the next push/pull, up to 15 s.
const directLimit = 16

// broadcast gossips a status: by UDP when it fits, else by TCP to all.
func (c *Cluster) broadcast(node string, msg []byte) {
	if c.ml == nil {
		return
	}
	if len(msg) > maxGossip || (node == c.cfg.Node && c.ml.NumMembers() <= directLimit) {
		c.sendAll(msg)
	}
	if len(msg) <= maxGossip {
		c.queue.QueueBroadcast(&broadcast{node: node, msg: msg})
	}
}

// sendAll sends msg to every other live member over TCP, without
// blocking the loop. The addresses come from the view, not from
// memberlist's node records, which it rewrites while it runs.
func (c *Cluster) sendAll(msg []byte) {
	for name := range c.view.members {
		if name == c.cfg.Node {
			continue
		}
		if n := c.member(name); n != nil {
			c.sendNode(n, msg)
		}
	}
}

func (c *Cluster) refreshLoad() {
	cpus, load := numCPU(), loadAvg()
	if cpus == c.self.CPUs && load == c.self.Load {
		return
	}
	// Broadcast when its load level changes, for every node to rank
	// nodes alike; a smaller change travels with the next status change
	// and with every push/pull.
	was := loadLevel(c.self)
	c.self.CPUs, c.self.Load = cpus, load
	c.bump()
	if loadLevel(c.self) != was {
		c.publishSelf()
	}
}

// resync rebuilds the membership from memberlist after dropped events:
// a member it no longer lists is gone.
func (c *Cluster) resync() {
	listed := map[string]bool{}
	for _, n := range c.ml.Members() {
		listed[n.Name] = true
		var meta nodeMeta
		if len(n.Meta) > 0 && json.Unmarshal(n.Meta, &meta) != nil {
			meta = nodeMeta{}
		}
		c.onMember(n.Name, true, n.Address(), meta)
	}
	for name, m := range c.view.members {
		if !listed[name] && c.view.up(name) {
			c.onMember(name, false, m.addr, m.meta)
		}
	}
}

// onMember handles a membership event: a node is there, or gone. A gone
// node whose last status said it was leaving has left; any other died.
func (c *Cluster) onMember(name string, alive bool, addr string, meta nodeMeta) {
	state := api.NodeAlive
	if !alive {
		state = api.NodeDead
		if s, ok := c.view.statuses[name]; ok && s.Leaving {
			state = api.NodeLeft
		}
	}
	if c.view.setState(name, state, addr, &meta, time.Now()) {
		c.dirtyView = true
		c.refreshVoters()
		c.emit(api.Event{Kind: api.EventMember, Time: time.Now().UTC(), Node: name, NodeState: state})
		if alive && name != c.cfg.Node && c.ml != nil {
			// A member that joins (or comes back) learns every status by
			// its push/pull, but the others learn its own only when it
			// changes: re-announce ours, and it will do likewise.
			c.publishSelf()
		}
		c.log.Info("member", zap.String("node", name), zap.String("state", state), zap.String("addr", addr))
	}
}

// tellers is how many members reach out to one member in its stead: to
// tell one that joins or comes back the versions of the replicated
// files, or to try one held dead again (join.go).
const tellers = 3

// amongTellers reports whether this node is one of the tellers of member
// name: the live members (other than name) that rank first by the stable
// hash of (name, member), alike on every node that sees the same
// membership. On 100 nodes, all of them doing it was 99 TCP connections
// for each member that came back, and as many push/pulls a second with
// each member held dead; a member that a teller misses has the next
// push/pull.
func (c *Cluster) amongTellers(name string) bool {
	mine := stableHash(name, c.cfg.Node)
	before := 0
	for n := range c.view.members {
		if n != name && n != c.cfg.Node && c.view.up(n) && stableHash(name, n) < mine {
			if before++; before >= tellers {
				return false
			}
		}
	}
	return true
}

// onMessage handles a user message or broadcast from another node.
func (c *Cluster) onMessage(b []byte) {
	digest, seen := c.seen.digest(b)
	if seen {
		return // a copy of a status handled already
	}
	kind, body, err := decode(b)
	if err != nil {
		// Its copies are dropped unread: a deflate bomb costs one
		// inflation, not one per copy.
		c.seen.add(digest)
		c.log.Warn("malformed message", zap.Error(err))
		return
	}
	switch kind {
	case msgStatus:
		var s nodeStatus
		if err := json.Unmarshal(body, &s); err != nil || s.Node == "" {
			c.log.Warn("malformed status message", zap.Error(err))
			return
		}
		c.seen.add(digest)
		if !c.goodStatus(s) {
			return
		}
		if c.onStatus(s) {
			c.broadcast(s.Node, b) // spread it: memberlist only sends our own queue
		}
	case msgCommit:
		c.kickRenewal()
	default:
		c.log.Warn("unknown message kind", zap.Int("kind", int(kind)))
	}
}

// onStatus applies a node's status and reports whether it was news.
func (c *Cluster) onStatus(s nodeStatus) bool {
	if s.Node == c.cfg.Node {
		// Our own status from before a restart, with a later clock: step
		// over it so ours wins again. The same version is our current
		// status coming back to us (every receiver spreads a status it
		// had not seen): stepping over that would make a new status of
		// every echo, and each node would gossip its own without end.
		if s.Version > c.self.Version {
			c.self.Version = s.Version
			c.bump()
			c.publishSelf()
		}
		return false
	}
	if !c.applyStatus(s) {
		return false
	}
	c.dirtyView, c.dirtyLocal = true, true
	if m := c.view.members[s.Node]; s.Leaving && m != nil && m.state == api.NodeDead {
		// Its goodbye came after memberlist reported it gone.
		c.onMember(s.Node, false, m.addr, m.meta)
	}
	return true
}

// onPushPull merges another node's full state.
func (c *Cluster) onPushPull(b []byte) {
	var pp pushPull
	if err := json.Unmarshal(b, &pp); err != nil {
		c.log.Warn("malformed state from a member", zap.Error(err))
		return
	}
	for _, s := range pp.Statuses {
		if s.Node != "" && c.goodStatus(s) {
			c.onStatus(s)
		}
	}
}

func (c *Cluster) parseHactl() {
	r := c.fileCopy(KindHactl)
	if r == nil {
		return
	}
	text := r.text
	if r.version == 0 {
		// Never committed: the local copy, as on a single node.
		if data, err := os.ReadFile(r.Path); err == nil {
			text = string(data)
		}
	}
	if h, err := cltab.ParseHactl(r.Path, []byte(text)); err == nil {
		c.hactl = h
	}
}
