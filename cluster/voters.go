package cluster

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/raftnode"
)

// Who votes (SPEC 6 and 7): the voting set the cltab asks for, the raft
// port each voter advertises in memberlist's node metadata, and the
// bootstrap of a new cluster once the expected voters see each other.

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
	Build string `json:"b,omitempty"` // the clinit version it runs (Config.Build)
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

// resolveVoter is a voter's raft address as memberlist last gave it.
func (c *Cluster) resolveVoter(id string) string {
	if p := c.voterByID.Load(); p != nil {
		return (*p)[id]
	}
	return ""
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
