// Package raftnode runs hashicorp/raft for the HA layer (SPEC 7): the
// voters' raft instance with its log (hashicorp/raft-wal) and snapshots
// in the state directory, one TLS port shared by raft and a small RPC
// protocol (edits forwarded to the leader, lease renewals, reads of the
// state by nodes that do not vote), and the bootstrap of a new cluster
// from the voters memberlist has seen.
//
// The state machine is cluster/store; this package only carries it.
package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.uber.org/zap"

	"github.com/clinit/clinit/cluster/store"
)

// Timing of raft. hashicorp/raft's defaults (1 s, 1 s, 0.5 s) lost the
// leader under 20 % packet loss: a lost segment waits for TCP's
// retransmission, 200 ms and more, and a leader that has not reached a
// quorum within its leader lease steps down. The heartbeat and election
// timeouts are a quarter of the lease (Heartbeat): with the default
// lease twice raft's defaults, as Consul scales them, and an election
// settles within about half a lease of a leader's loss, which the
// leases of the nodes outlast (lease.go). The leader lease stays half
// the heartbeat timeout: a deposed leader steps down before a quorum may
// elect another.
const (
	HeartbeatTimeout   = DefaultLease / 4 // Heartbeat(DefaultLease)
	LeaderLeaseTimeout = HeartbeatTimeout / 2
	CommitTimeout      = 20 * time.Millisecond
	applyTimeout       = 5 * time.Second
)

// Heartbeat is raft's heartbeat and election timeout for a lease: a
// quarter of it, never under 250 ms.
func Heartbeat(lease time.Duration) time.Duration {
	return max(lease/4, 250*time.Millisecond)
}

// Config is what a voter needs.
type Config struct {
	Node      string // the raft server ID: the node's name
	Dir       string // where raft keeps its log and snapshots
	Bind      string // HOST:PORT of the raft port
	Advertise string // HOST:PORT others reach it at; "" is Bind
	Key       []byte // the cluster key; nil: plain TCP
	Log       *zap.Logger
	// Lease is how long a renewal holds (lease.go); 0 is DefaultLease.
	Lease time.Duration
	// OnSilent, when not nil, is called (from a timer's goroutine) when,
	// on the leader, a node that renewed has not renewed for
	// FenceSilence(Lease).
	OnSilent func(node string)
	// Fencing, when not nil, reports whether this leader is fencing
	// node now: a renewal of it is then answered with no group. Its
	// fencing may have powered it off and it may be back, renewing
	// before the fencing's commit frees its groups for another node.
	Fencing func(node string) bool
	// Resolve gives a voter's current raft address by its ID (from
	// memberlist's metadata), so a voter whose port changed across a
	// restart is still reached; nil or "" uses the configured address.
	Resolve func(id string) string
}

// Node is a voter: raft, its port and the RPC server on it.
type Node struct {
	cfg   Config
	log   *zap.Logger
	raft  *raft.Raft
	fsm   *fsm
	mux   *mux
	dial  *Dialer
	fwd   *Client // to the leader, for proposals of this node's
	wal   *wal.WAL
	meta  *metadb.BoltMetaDB
	snaps *raft.FileSnapshotStore
	trans *raft.NetworkTransport
	grant *granter
	state stateCache

	closeOnce sync.Once
	closed    chan struct{}
}

// Open starts a voter. A node with raft state in Dir rejoins its
// cluster; a new one waits for Bootstrap.
func Open(cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	log := cfg.Log.Named("raft")
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft directory: %w", err)
	}
	d, err := newDialer(cfg.Key)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("raft port %s: %w", cfg.Bind, err)
	}
	adv := ln.Addr()
	if cfg.Advertise != "" {
		a := cfg.Advertise
		if h, p, err := net.SplitHostPort(a); err == nil && p == "0" {
			// The port the listener got.
			a = net.JoinHostPort(h, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		}
		if adv, err = net.ResolveTCPAddr("tcp", a); err != nil {
			ln.Close()
			return nil, fmt.Errorf("raft advertise %s: %w", cfg.Advertise, err)
		}
	}
	n := &Node{cfg: cfg, log: log, fsm: newFSM(), dial: d, closed: make(chan struct{})}
	n.fwd = NewClient(d, func() []string {
		if _, addr := n.Leader(); addr != "" {
			return []string{addr}
		}
		return nil
	})
	n.mux = newMux(ln, adv, d.tls)
	n.mux.onRPC = n.serveRPC
	n.mux.onReject = func(remote string, err error) {
		log.Warn("raft port: connection refused", zap.String("remote", remote), zap.Error(err))
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: zapWriter{log}})

	fail := func(err error) (*Node, error) {
		n.Close()
		return nil, err
	}
	// Segments of 1 MiB: the log holds small commands and is compacted
	// by snapshots, and a voter should not reserve raft-wal's 64 MiB.
	walDir := filepath.Join(cfg.Dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return fail(fmt.Errorf("raft log: %w", err))
	}
	// The WAL's Close leaves its meta database open (and locked): it is
	// ours to close.
	n.meta = &metadb.BoltMetaDB{}
	if n.wal, err = wal.Open(walDir, wal.WithMetaStore(n.meta), wal.WithSegmentSize(1<<20), wal.WithLogger(hl)); err != nil {
		return fail(fmt.Errorf("raft log: %w", err))
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl); err != nil {
		return fail(fmt.Errorf("raft snapshots: %w", err))
	}
	tc := &raft.NetworkTransportConfig{
		Stream:  streamLayer{n.mux, d},
		MaxPool: 3,
		Timeout: 2 * time.Second,
		Logger:  hl,
	}
	if cfg.Resolve != nil {
		tc.ServerAddressProvider = resolver(cfg.Resolve)
	}
	n.trans = raft.NewNetworkTransportWithConfig(tc)
	go n.mux.serve()

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Node)
	hb := Heartbeat(cfg.Lease)
	rc.HeartbeatTimeout = hb
	rc.ElectionTimeout = hb
	rc.LeaderLeaseTimeout = hb / 2
	rc.CommitTimeout = CommitTimeout
	rc.SnapshotThreshold = 1024
	rc.TrailingLogs = 1024
	rc.Logger = hl
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.wal, n.wal, n.snaps, n.trans); err != nil {
		return fail(fmt.Errorf("raft: %w", err))
	}
	n.grant = newGranter(n, cfg.Lease)
	n.grant.onSilent = cfg.OnSilent
	n.grant.fencing = cfg.Fencing
	go n.grant.run()
	return n, nil
}

// Addr is the address others reach this node's raft port at.
func (n *Node) Addr() string { return n.mux.advertise.String() }

// Server is one voter of a bootstrap configuration.
type Server struct{ ID, Addr string }

// Bootstrap starts a new cluster with these voters. Every voter calls
// it with the same list (memberlist's view of the expected voters, in
// name order); a node that already has raft state ignores it, so a
// restart never bootstraps again.
func (n *Node) Bootstrap(servers []Server) error {
	var conf raft.Configuration
	for _, s := range servers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Addr)})
	}
	err := n.raft.BootstrapCluster(conf).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return nil
	}
	return err
}

// Bootstrapped reports whether this node has raft state: it is or was
// part of a configuration.
func (n *Node) Bootstrapped() bool {
	return n.raft.LastIndex() > 0
}

// Leader returns the leader's ID and raft address, "" when none is known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node leads now (as far as it knows).
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// VerifyLeader checks with a quorum that this node still leads: a
// leader frozen, then thawed, believes it leads until it hears better.
func (n *Node) VerifyLeader() error { return n.raft.VerifyLeader().Error() }

// Stats is raft's own description of its state, for hastat and metrics.
func (n *Node) Stats() map[string]string { return n.raft.Stats() }

// State returns a copy of the state as applied here, and a channel that
// is closed at its next change.
func (n *Node) State() (*store.State, <-chan struct{}) { return n.fsm.watch() }

// apply proposes a command on the leader and waits for its result.
func (n *Node) apply(c store.Command) (store.Result, error) {
	if c.Op == store.OpBatch {
		return store.Result{Err: errBatch}, nil
	}
	f := n.raft.Apply(c.Encode(), applyTimeout)
	if err := f.Error(); err != nil {
		return store.Result{}, err
	}
	r, _ := f.Response().(store.Result)
	return r, nil
}

// errBatch refuses a batch proposed as a command: batches are made
// here, of commands that may go in one.
var errBatch = errors.New("a batch is not a command to propose")

// Propose commits a command, here when this node leads, or through the
// leader. The error is a transport or leadership failure; the result's
// Err, a refusal by the state machine (a stale base, a stale epoch).
func (n *Node) Propose(ctx context.Context, c store.Command) (store.Result, error) {
	if n.IsLeader() {
		return n.apply(c)
	}
	return n.fwd.Propose(ctx, c)
}

// Close stops raft and the port. The log stays for the next start.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.closed)
		n.fwd.Close()
		if n.grant != nil {
			n.grant.mu.Lock()
			n.grant.stopSilence()
			n.grant.mu.Unlock()
		}
		if n.raft != nil {
			if err := n.raft.Shutdown().Error(); err != nil {
				n.log.Warn("raft shutdown", zap.Error(err))
			}
		}
		if n.trans != nil {
			n.trans.Close()
		}
		n.mux.close()
		if n.wal != nil {
			n.wal.Close()
		}
		if n.meta != nil {
			n.meta.Close()
		}
	})
	return nil
}

// resolver is raft's view of Config.Resolve.
type resolver func(id string) string

func (r resolver) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if a := r(string(id)); a != "" {
		return raft.ServerAddress(a), nil
	}
	return "", fmt.Errorf("no raft address known for %s", id)
}

// zapWriter carries hclog's lines into zap.
type zapWriter struct{ log *zap.Logger }

func (w zapWriter) Write(p []byte) (int, error) {
	w.log.Warn(string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// ProposeAll commits commands on the leader, pipelined: every command
// is handed to raft before the first is waited for, so a thousand
// assignments take a few round trips, not a thousand.
func (n *Node) ProposeAll(cmds []store.Command) ([]store.Result, error) {
	res, errs := n.proposeAll(cmds)
	if res == nil {
		return nil, ErrNotLeader
	}
	var first error
	for i, err := range errs {
		if err != nil {
			res[i].Err = err
			if first == nil {
				first = err
			}
		}
	}
	return res, first
}

// proposeAll is ProposeAll with raft's errors (not committed) apart from
// the state machine's refusals (res[i].Err); nil when not the leader.
func (n *Node) proposeAll(cmds []store.Command) (res []store.Result, errs []error) {
	if !n.IsLeader() {
		return nil, nil
	}
	res, errs = make([]store.Result, len(cmds)), make([]error, len(cmds))
	if len(cmds) > 1 && !slices.ContainsFunc(cmds, func(c store.Command) bool { return !store.Batchable(c) }) {
		// One entry for all: for a thousand assignments, one write and
		// one replication instead of a thousand (which took a leader 12 s
		// to commit, on a 2-core machine shared with 29 other daemons).
		f := n.raft.Apply(store.Command{Op: store.OpBatch, Batch: cmds}.Encode(), applyTimeout)
		err := f.Error()
		got, _ := f.Response().([]store.Result)
		for i := range cmds {
			switch {
			case err != nil:
				errs[i] = err
			case len(got) != len(cmds):
				errs[i] = fmt.Errorf("batch of %d commands answered with %d results", len(cmds), len(got))
			default:
				res[i] = got[i]
			}
		}
		return res, errs
	}
	fs := make([]raft.ApplyFuture, len(cmds))
	for i, c := range cmds {
		if c.Op == store.OpBatch {
			res[i].Err = errBatch
			continue
		}
		fs[i] = n.raft.Apply(c.Encode(), applyTimeout)
	}
	for i, f := range fs {
		if f == nil {
			continue // refused above
		}
		if errs[i] = f.Error(); errs[i] == nil {
			res[i], _ = f.Response().(store.Result)
		}
	}
	return res, errs
}

// ProposeFrom commits commands from any node: on the leader at once,
// elsewhere in one round trip to it through a connection kept for the
// purpose. Each result's Err is a refusal or a failure to commit.
func (n *Node) ProposeFrom(ctx context.Context, cmds []store.Command) ([]store.Result, error) {
	if n.IsLeader() {
		res, _ := n.ProposeAll(cmds)
		return res, nil
	}
	return n.fwd.ProposeAll(ctx, cmds)
}

// Snapshot takes a snapshot of the state now (tests, and an operator's
// compaction).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// TransferLeadership hands leadership to another voter, waiting for it
// at most an election's length.
func (n *Node) TransferLeadership() {
	f := n.raft.LeadershipTransfer()
	done := make(chan struct{})
	go func() { f.Error(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * Heartbeat(n.cfg.Lease)):
	}
}
