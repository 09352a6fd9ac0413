package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/cluster/store"
	"github.com/clinit/clinit/internal/atomicfile"
)

// The consensus side of the cluster (SPEC 6 and 7): which nodes vote,
// the raft port each advertises in memberlist's node metadata, the
// bootstrap of a new cluster once the expected voters see each other,
// and the replicated files as committed texts.

// MaxVoters is the most voters a cluster has: more make every commit
// slower and buy no safety a sysadmin's cluster needs.
const MaxVoters = 5

// voters is the voting set a cltab asks for: the names of :::servers:,
// or, without it, any :::nodes: members up to MaxVoters (then every
// node votes). expect is how many voters bootstrap. ok is false when
// the cltab names no voters: HA and replication are off.
type voters struct {
	names  []string // nil: whoever comes, up to expect
	expect int
}

func votersOf(t *cltab.Tab) (voters, bool, error) {
	if t == nil {
		return voters{}, false, nil
	}
	if v, ok := t.Setting("servers"); ok {
		names := cltab.SplitNames(v)
		sort.Strings(names)
		if len(names) == 0 || len(names) > MaxVoters {
			return voters{}, false, fmt.Errorf(":::servers: names %d voters; want 1 to %d", len(names), MaxVoters)
		}
		return voters{names: names, expect: len(names)}, true, nil
	}
	n := t.Int("nodes", 0)
	if n == 0 {
		return voters{}, false, nil
	}
	if n > MaxVoters {
		return voters{}, false, fmt.Errorf(":::nodes:%d is more than %d voters: name 3 or 5 of them with :::servers:", n, MaxVoters)
	}
	return voters{expect: n}, true, nil
}

// votes reports whether node is one of the voters.
func (v voters) votes(node string) bool {
	if v.names == nil {
		return v.expect > 0
	}
	for _, n := range v.names {
		if n == node {
			return true
		}
	}
	return false
}

// nodeMeta is what a node advertises in memberlist's node metadata.
type nodeMeta struct {
	Raft  string `json:"r,omitempty"` // HOST:PORT of its raft port, voters only
	Voter bool   `json:"v,omitempty"`
}

// raftAddrs derives the raft port's bind and advertised addresses from
// memberlist's: the same hosts, the next port (an ephemeral one when
// memberlist's is), unless given. Port "0" in the advertised address is
// the port the listener gets.
func raftAddrs(cfg Config, mlAdvertise string) (bind, adv string, err error) {
	bind = cfg.RaftBind
	if bind == "" {
		host, port, err := splitHostPort(cfg.Bind)
		if err != nil {
			return "", "", err
		}
		if port != 0 {
			port++
		}
		bind = net.JoinHostPort(host, strconv.Itoa(port))
	}
	if cfg.RaftAdvertise != "" {
		return bind, cfg.RaftAdvertise, nil
	}
	_, bp, err := net.SplitHostPort(bind)
	if err != nil {
		return "", "", fmt.Errorf("raft bind %s: %w", bind, err)
	}
	mh, _, err := net.SplitHostPort(mlAdvertise)
	if err != nil {
		return "", "", err
	}
	return bind, net.JoinHostPort(mh, bp), nil
}

// bootstrapServers returns the voters to bootstrap with, once every
// expected voter is alive in memberlist with its raft address; nil
// until then. Every voter computes the same list from the same view.
func (c *Cluster) bootstrapServers() []raftnode.Server {
	var out []raftnode.Server
	for name, m := range c.view.members {
		if !c.view.up(name) || !m.meta.Voter || m.meta.Raft == "" {
			continue
		}
		if c.voters.names != nil && !c.voters.votes(name) {
			continue
		}
		out = append(out, raftnode.Server{ID: name, Addr: m.meta.Raft})
	}
	if len(out) != c.voters.expect {
		if len(out) > c.voters.expect {
			c.log.Error("more voters than the cltab expects: not bootstrapping; name the voters with :::servers:", zap.Int("seen", len(out)), zap.Int("expected", c.voters.expect))
		}
		return nil
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// voterAddrs are the raft addresses of the voters memberlist knows,
// where a client looks for the leader.
func (c *Cluster) voterAddrs() []string {
	p := c.voterList.Load()
	if p == nil {
		return nil
	}
	return *p
}

func (c *Cluster) refreshVoters() {
	var addrs []string
	for name, m := range c.view.members {
		if c.view.up(name) && m.meta.Voter && m.meta.Raft != "" {
			addrs = append(addrs, m.meta.Raft)
		}
	}
	sort.Strings(addrs)
	c.voterList.Store(&addrs)
	byID := map[string]string{}
	for name, m := range c.view.members {
		if m.meta.Voter && m.meta.Raft != "" {
			byID[name] = m.meta.Raft
		}
	}
	c.voterByID.Store(&byID)
	if c.rn != nil && !c.bootstrapped {
		if c.rn.Bootstrapped() {
			c.bootstrapped = true
			return
		}
		if servers := c.bootstrapServers(); servers != nil {
			if err := c.rn.Bootstrap(servers); err != nil {
				c.log.Error("raft bootstrap", zap.Error(err))
				return
			}
			c.bootstrapped = true
			ids := make([]string, len(servers))
			for i, s := range servers {
				ids[i] = s.ID
			}
			c.log.Info("raft cluster bootstrapped", zap.Strings("voters", ids))
		}
	}
}

// propose commits a command through the leader, from any node.
func (c *Cluster) propose(ctx context.Context, cmd store.Command) (store.Result, error) {
	if c.rn != nil {
		return c.rn.Propose(ctx, cmd)
	}
	if c.rc == nil {
		return store.Result{}, errors.New("no consensus: the cltab names no voters (:::nodes: or :::servers:)")
	}
	return c.rc.Propose(ctx, cmd)
}

// proposeAll commits commands through the leader in one round trip,
// from any node; each result's Err is a refusal or a failure to commit.
func (c *Cluster) proposeAll(ctx context.Context, cmds []store.Command) ([]store.Result, error) {
	if c.rn != nil {
		return c.rn.ProposeFrom(ctx, cmds)
	}
	if c.rc == nil {
		return nil, errors.New("no consensus: the cltab names no voters (:::nodes: or :::servers:)")
	}
	return c.rc.ProposeAll(ctx, cmds)
}

// onCommitted takes a newer committed state: the replicated files are
// written where they differ, and the HA rules run again.
func (c *Cluster) onCommitted(st *store.State) {
	if c.committed != nil && st.Index <= c.committed.Index {
		return
	}
	prev := c.committed
	c.committed = st
	c.emitAssignments(prev, st)
	c.emitCommitted(prev, st)
	for _, r := range c.files {
		f, ok := st.Files[r.Kind]
		if !ok || f.Version <= r.version {
			// Not newer: an older state can arrive after this node's own
			// commit was recorded (proposeFile), and must not undo it.
			continue
		}
		c.writeCommitted(r, f)
	}
	c.ha.dirty = true
	c.dirtyView = true
}

// emitAssignments tells the watchers of every assignment that changed.
func (c *Cluster) emitAssignments(prev, st *store.State) {
	if len(c.watchers) == 0 {
		return
	}
	var groups []string
	for g, a := range st.Assign {
		if prev == nil || prev.Assign[g] != a {
			groups = append(groups, g)
		}
	}
	sort.Strings(groups)
	now := time.Now().UTC()
	for _, g := range groups {
		a := st.Assign[g]
		c.emit(api.Event{Kind: api.EventAssign, Time: now, Node: c.cfg.Node, Group: g, Assigned: a.Node, Epoch: a.Epoch, Stop: a.Stop, Why: a.Why})
	}
}

// writeCommitted writes a committed version of a file over this node's
// copy. A local edit that was not proposed yet (or was refused) is not
// lost: it is kept aside as PATH.rejected.
func (c *Cluster) writeCommitted(r *fileCopy, f store.File) {
	if err := r.Validate(r.Path, []byte(f.Text)); err != nil {
		c.log.Error("a committed version does not pass validation here: kept the last good one", zap.String("file", r.Kind), zap.Uint64("version", f.Version), zap.Error(err))
		r.version = f.Version
		return
	}
	local, err := os.ReadFile(r.Path)
	if err == nil && string(local) != f.Text && string(local) != r.text {
		c.keepAside(r, local, fmt.Sprintf("version %d was committed meanwhile", f.Version))
	}
	if string(local) != f.Text {
		if err := atomicfile.Write(r.Path, []byte(f.Text), 0o644); err != nil {
			c.log.Error("writing a replicated file", zap.String("path", r.Path), zap.Error(err))
			return
		}
	}
	r.version, r.text = f.Version, f.Text
	c.saveVersions()
	if r.Kind == KindHactl {
		c.parseHactl()
	}
	c.log.Info("replicated", zap.String("file", r.Kind), zap.Uint64("version", f.Version))
	if c.cfg.OnFile != nil {
		go c.cfg.OnFile(r.Kind)
	}
}

func (c *Cluster) keepAside(r *fileCopy, data []byte, why string) {
	aside := r.Path + ".rejected"
	if err := atomicfile.Write(aside, data, 0o600); err != nil {
		c.log.Error("cannot keep a refused edit aside", zap.String("path", aside), zap.Error(err))
		return
	}
	c.log.Warn("local edit not replicated: kept aside", zap.String("file", r.Kind), zap.String("path", aside), zap.String("why", why))
}

// fileCopy is this node's copy of a replicated file.
type fileCopy struct {
	File
	version uint64 // the committed version written here last
	text    string // its text
}

// versionsPath keeps, across restarts, which committed version each
// copy is: an edit made while the daemon was down is then told from a
// version it never saw.
func versionsPath(stateDir string) string { return filepath.Join(stateDir, "cluster-versions.json") }

func (c *Cluster) saveVersions() {
	if c.cfg.StateDir == "" {
		return
	}
	m := map[string]store.File{}
	for _, r := range c.files {
		m[r.Kind] = store.File{Text: r.text, Version: r.version}
	}
	b, _ := json.Marshal(m)
	if err := atomicfile.Write(versionsPath(c.cfg.StateDir), b, 0o600); err != nil {
		c.log.Warn("cannot save the versions of the replicated files", zap.Error(err))
	}
}

func loadVersions(stateDir string) map[string]store.File {
	m := map[string]store.File{}
	if stateDir == "" {
		return m
	}
	b, err := os.ReadFile(versionsPath(stateDir))
	if err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

func (c *Cluster) fileCopy(kind string) *fileCopy {
	for _, r := range c.files {
		if r.Kind == kind {
			return r
		}
	}
	return nil
}

// ErrRefused is what an edit the committed state refused (a stale
// base) is: errors.Is(err, ErrRefused).
var ErrRefused = errors.New("edit refused")

type refusal struct{ msg string }

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == ErrRefused }

// ErrNotReplicated: the cltab names no voters, so an edit stays local.
var ErrNotReplicated = errors.New("not replicated: the cltab names no voters (:::nodes: or :::servers:) or the node runs alone")

// proposeFile proposes the next text of a file, which edit makes from
// this node's copy, based on the committed version of that copy. It
// returns the committed version ("" and 0 when the text is the
// committed one).
//
// edit runs on the loop, with the base taken in the same step: a text
// read (from disk, or from the copy) before a newer version is written
// here, and proposed on that newer version's base, would be committed
// over it and undo it without a word. That happened on three daemons
// whose planner committed often: a file change read the old text, the
// loop then wrote the newer version, and the old text was proposed on
// the newer base.
func (c *Cluster) proposeFile(ctx context.Context, kind string, edit func(r *fileCopy) ([]byte, error)) (uint64, error) {
	var r *fileCopy
	var base uint64
	var same bool
	var data []byte
	var editErr error
	if err := c.call(ctx, func() {
		r = c.fileCopy(kind)
		if r != nil {
			base = r.version
			data, editErr = edit(r)
			same = string(data) == r.text
		}
	}); err != nil {
		return 0, err
	}
	if editErr != nil {
		return 0, editErr
	}
	if r == nil {
		return 0, fmt.Errorf("not a replicated file: %s", kind)
	}
	if same {
		return base, nil
	}
	if err := r.Validate(r.Path, data); err != nil {
		return 0, err
	}
	if c.rn == nil && c.rc == nil {
		return 0, ErrNotReplicated
	}
	res, err := c.propose(ctx, store.Command{Op: store.OpSetFile, Kind: kind, Text: string(data), Base: base})
	if err != nil {
		return 0, fmt.Errorf("%s edit not committed: %w", kind, err)
	}
	if res.Err != nil {
		c.call(ctx, func() { c.keepAside(r, data, res.Err.Error()) })
		return 0, &refusal{fmt.Sprintf("%v; your text is kept in %s.rejected", res.Err, r.Path)}
	}
	c.log.Info("edit committed", zap.String("file", kind), zap.Uint64("version", res.Version))
	// The commit reaches this node's state before long; record it now so
	// that the caller's next read sees it. The copy on disk is written
	// here too, on the loop, unless a newer version came first: written
	// after that one, the older text would be read back as an edit.
	var werr error
	c.call(ctx, func() {
		if r.version < res.Version {
			r.version, r.text = res.Version, string(data)
			if local, err := os.ReadFile(r.Path); err != nil || string(local) != r.text {
				werr = atomicfile.Write(r.Path, data, 0o644)
			}
			c.saveVersions()
			if kind == KindHactl {
				c.parseHactl()
				c.ha.dirty = true
			}
		}
	})
	if werr != nil {
		return res.Version, fmt.Errorf("committed as version %d, but writing the local copy: %w", res.Version, werr)
	}
	return res.Version, nil
}

// readCopy is the edit of a file changed on disk: its text there.
func readCopy(r *fileCopy) ([]byte, error) {
	data, err := os.ReadFile(r.Path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot read %s: %w", r.Kind, err)
	}
	return data, nil
}

// waitCommitted returns once the committed state here has reached index.
func (c *Cluster) fetchState() {
	if c.rc == nil || c.fetching {
		return
	}
	c.fetching = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := c.rc.State(ctx)
		c.enqueue(func() {
			c.fetching = false
			if err != nil {
				c.log.Warn("reading the committed state from the leader", zap.Error(err))
				return
			}
			c.onCommitted(st)
		})
	}()
}

// resolveVoter is a voter's raft address as memberlist last gave it.
func (c *Cluster) resolveVoter(id string) string {
	if p := c.voterByID.Load(); p != nil {
		return (*p)[id]
	}
	return ""
}

// startRaft opens this node's raft voter, when it is one, and the
// clients every node uses to reach the leader; before memberlist
// starts, for the raft port to be in the node's metadata from its first
// packet.
func (c *Cluster) startRaft(mc *memberlist.Config, tr memberlist.Transport) error {
	if c.voters.expect == 0 {
		return nil
	}
	if c.cfg.Transport != nil && c.cfg.RaftBind == "" {
		return nil // an in-memory test network: no raft
	}
	d, err := raftnode.NewDialer(c.cfg.Key)
	if err != nil {
		return err
	}
	c.rc = raftnode.NewClient(d, c.voterAddrs)
	c.leaseClient = raftnode.NewClient(d, c.voterAddrs)
	meta := nodeMeta{}
	if c.voters.votes(c.cfg.Node) {
		ip, port, err := tr.FinalAdvertiseAddr(mc.AdvertiseAddr, mc.AdvertisePort)
		if err != nil {
			return err
		}
		bind, adv, err := raftAddrs(c.cfg, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		// The raft port carries the cluster's decisions: without a key it
		// listens on loopback only, as memberlist does (or --insecure).
		host, p, err := net.SplitHostPort(bind)
		if err != nil {
			return fmt.Errorf("raft bind %s: %w", bind, err)
		}
		bip, err := bindIP(host)
		if err != nil {
			return fmt.Errorf("raft bind %s: %w", bind, err)
		}
		if c.cfg.Key == nil && !c.cfg.Insecure && !bip.IsLoopback() {
			return fmt.Errorf("raft bind %s is not a loopback address and no --keyfile is given: anyone who reaches the port could vote; give a key (clinit --keygen) or --insecure", bind)
		}
		bind = net.JoinHostPort(bip.String(), p)
		if c.rn, err = raftnode.Open(raftnode.Config{Node: c.cfg.Node, Dir: filepath.Join(c.cfg.StateDir, "raft"), Bind: bind, Advertise: adv,
			Key: c.cfg.Key, Log: c.cfg.Log, Lease: c.ha.plan.lease, Resolve: c.resolveVoter,
			OnSilent: c.probeSilent, Fencing: c.fence.isRunning}); err != nil {
			return err
		}
		c.bootstrapped = c.rn.Bootstrapped()
		meta = nodeMeta{Raft: c.rn.Addr(), Voter: true}
		c.log.Info("raft voter", zap.String("addr", c.rn.Addr()), zap.Bool("has state", c.bootstrapped))
	}
	c.meta, _ = json.Marshal(meta)
	return nil
}

// proposeEditedWhileDown proposes a copy edited while the daemon was
// down, once the cluster has a leader; a refusal keeps it aside.
func (c *Cluster) proposeEditedWhileDown(r *fileCopy) {
	if _, err := os.Stat(r.Path); err != nil {
		return
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := c.proposeFile(ctx, r.Kind, readCopy)
		cancel()
		switch {
		case err == nil:
			c.log.Info("edited while the daemon was down: committed", zap.String("file", r.Kind), zap.Uint64("version", v))
			return
		case errors.Is(err, ErrNotReplicated), errors.Is(err, ErrClosed):
			return
		case errors.Is(err, cltab.ErrInvalid) || errors.Is(err, ErrRefused):
			c.log.Error("edited while the daemon was down: not committed", zap.String("file", r.Kind), zap.Error(err))
			return
		}
		select {
		case <-c.stop:
			return
		case <-time.After(time.Second):
		}
	}
}
