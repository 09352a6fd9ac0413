// Package cluster joins clinit daemons into one cluster (SPEC 6 and 7):
// membership and failure detection (hashicorp/memberlist), the gossip of
// each node's status, the collated hastat, the replication of the cltab
// and the hactl through raft, and HA: the leader's planner, each node's
// lease, its keeper and its gate. One goroutine, Cluster.run (loop.go),
// owns the cluster view; memberlist's delegates only hand it copies of
// what arrived.
package cluster

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
	"github.com/clinit/clinit/internal/coalesce"
)

// ErrClosed is returned by requests made after Close.
var ErrClosed = errors.New("cluster layer stopped")

// Kinds of the replicated files.
const (
	KindCltab = "cltab"
	KindHactl = "hactl"
)

// Cluster is this node's membership of the cluster.
type Cluster struct {
	cfg    Config
	log    *zap.Logger
	ml     *memberlist.Memberlist                // nil on a single node; set before run starts
	mlRef  atomic.Pointer[memberlist.Memberlist] // ml, for memberlist's own goroutines during Create
	queue  *memberlist.TransmitLimitedQueue
	secure bool   // a key is set
	meta   []byte // this node's memberlist metadata (nodeMeta)

	// Consensus (consensus.go, voters.go): the raft voter (nil when this
	// node does not vote), the clients to the leader, the voters' raft
	// addresses.
	voters      voters
	rn          *raftnode.Node
	rc          *raftnode.Client // edits and state reads
	leaseClient *raftnode.Client // renewals, never behind an edit
	voterList   atomic.Pointer[[]string]
	voterByID   atomic.Pointer[map[string]string]
	// The leader's (planloop.go, probe.go, stomith.go).
	planKick chan struct{}
	probe    *prober // pings of silent nodes
	fence    *fencer
	// renewSince: since when each member has renewed with this leader
	// without a lapse, for the failback hold. planLoop's only.
	renewSince map[string]time.Time
	// This node's lease (lease.go, gate.go, keeper.go).
	renewKick chan struct{}        // a renewal now, please
	gate      atomic.Pointer[gate] // MayStart's; written by the loop
	keeper    keeperState

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
	committed    *store.State  // the newest committed state known here
	learned      chan struct{} // closed, and replaced, when the lease or a file's version moves
	bootstrapped bool          // this voter has raft state
	fetching     bool          // a state read from the leader runs
	hactl        *cltab.Hactl
	hastatText   string        // what hastat holds
	hastatBuf    []byte        // the next text, built in place
	seen         *seenStatuses // status messages handled lately
	// What the last events changed is redone at most once per gap of
	// each (loop.go): the HA rules (flushes), the hastat file, the
	// push/pull state (pushPull) and this node's status gossip (selfSend).
	flushes  *coalesce.Coalescer
	hastat   *coalesce.Coalescer
	pushPull *coalesce.Coalescer
	selfSend *coalesce.Coalescer
	ha       *haState
	handoffs []chan struct{} // closed once a handoff is done (handoff.go)
	watchers map[chan api.Event]bool
	watching atomic.Int32   // len(watchers), for Emit
	notes    chan api.Event // events from outside the loop (Emit)
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
		stop:     make(chan struct{}),
		learned:  make(chan struct{}),
		done:     make(chan struct{}),
		view:     newView(cfg.Node),
		seen:     newSeenStatuses(),
		hactl:    &cltab.Hactl{},
		ha:       newHAState(cfg.Tab),
		watchers: map[chan api.Event]bool{},
		notes:    make(chan api.Event, noteBuffer),
	}
	c.planKick = make(chan struct{}, 1)
	c.newCoalescers(coalesce.Wall)
	c.renewKick = make(chan struct{}, 1)
	c.fence = newFencer()
	c.probe = newProber()
	c.self = nodeStatus{Node: cfg.Node, CPUs: numCPU(), Load: loadAvg()}
	c.bump()
	edited, err := c.openFiles()
	if err != nil {
		return nil, err
	}
	c.parseHactl()
	c.rebuildLocal()
	// Closed for HA groups until a lease opens it: a daemon restarted on
	// its state starts none of them on its own.
	c.updateGate()

	if c.voters, _, err = votersOf(cfg.Tab); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if cfg.Clustered() {
		if err := c.startMemberlist(); err != nil {
			return nil, err
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

// Done is closed when the loop has stopped.
func (c *Cluster) Done() <-chan struct{} { return c.done }

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
