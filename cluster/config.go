package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
)

// DefaultPort is memberlist's usual port, used when --bind or a --join
// seed gives no port.
const DefaultPort = 7946

// Failure detection timings: memberlist's LAN defaults (1 s probes,
// suspicion 4 probe intervals x max(1, log10(N)), 200 ms gossip) but
// for the probe timeout. No failover waits for memberlist: a dead
// owner's groups move after its lease (no stomith) or after the leader's
// fence silence and pings (cluster/probe.go); memberlist's word on a
// death only shows in hastat and confirms a fence. Faster probes (every
// 400 ms) flooded memberlist's handler queue with 100 daemons on one
// 2-core machine, and they never all saw each other alive. The probe
// timeout stays 200 ms, a LAN's round trip many times over: the
// leader's pings of a silent node wait that long.
const (
	ProbeInterval           = time.Second
	ProbeTimeout            = 200 * time.Millisecond
	SuspicionMult           = 4 // suspect for 4 probe intervals x max(1, log10(N))
	SuspicionMaxTimeoutMult = 4 // without confirmations, up to 4x that
	GossipInterval          = 200 * time.Millisecond
	PushPullInterval        = 15 * time.Second
	TCPTimeout              = 2 * time.Second
)

// AwarenessMaxMultiplier bounds how far memberlist slows its probes on a
// node that misses acks (a node cut off from the others misses them all):
// its default, 8, would stretch eightfold the time a member takes to
// see a cut-off one dead.
const AwarenessMaxMultiplier = 2

// Config is what a cluster member needs.
type Config struct {
	Node      string   // unique node name
	Build     string   // the clinit version this node runs, shown to the others
	Bind      string   // HOST:PORT to listen on; "" with no Join: single node
	Advertise string   // HOST:PORT others reach this node at; "" derives it
	Join      []string // seeds, HOST:PORT
	Key       []byte   // 16, 24 or 32 bytes; nil: no encryption
	Insecure  bool     // allow a non-loopback bind without a key

	// Transport replaces the network (tests: memberlist.MockNetwork).
	Transport memberlist.NodeAwareTransport

	StateDir string // where the versions of the replicated files are kept
	Hastat   string // the hastat file this node writes; "" writes none
	Files    []File // the replicated files: cltab, hactl
	// OnFile is called, on a goroutine of its own, after a version of a
	// replicated file made elsewhere has been written here.
	OnFile func(kind string)
	// OnSummary is called by the loop whenever the summary (summary.go)
	// changes, and once at the start; it must not block.
	OnSummary func(Summary)
	Log       *zap.Logger

	// The raft port (voters): "" derives it from Bind and Advertise,
	// their port + 1.
	RaftBind, RaftAdvertise string

	// HA: the cltab in use (its settings), and how to tell a local group
	// to go to a level. Without Tell, HA groups are only reported.
	Tab  *cltab.Tab
	Tell func(ctx context.Context, group, level string) error
	// Keeper enforces this node's lease when the daemon cannot; nil only
	// in tests that run no processes.
	Keeper Keeper
	// Run runs a command (the fencing command) to its end and returns
	// its output: an error if it failed, and ctx ending kills it with its
	// process group. The daemon's reaper runs it; nil runs no fencing
	// command, and a fence fails.
	Run func(ctx context.Context, argv []string) ([]byte, error)
}

// Clustered reports whether the config asks for a cluster at all.
func (c Config) Clustered() bool { return c.Bind != "" || len(c.Join) > 0 || c.Transport != nil }

// memberlistConfig builds memberlist's config from ours.
func (c Config) memberlistConfig() (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Node
	mc.ProbeInterval = ProbeInterval
	mc.ProbeTimeout = ProbeTimeout
	mc.SuspicionMult = SuspicionMult
	mc.SuspicionMaxTimeoutMult = SuspicionMaxTimeoutMult
	mc.GossipInterval = GossipInterval
	mc.PushPullInterval = PushPullInterval
	mc.TCPTimeout = TCPTimeout
	mc.AwarenessMaxMultiplier = AwarenessMaxMultiplier
	// memberlist compresses every packet and stream with LZW, and each
	// compression allocates its tables anew. What is big in ours is
	// already deflated (msg.go); its own messages are a few dozen bytes.
	// On 100 daemons of one machine the LZW was an eighth of their CPU
	// and, with the garbage it made, enough to tip failure detection
	// over while groups were being placed. A member that still
	// compresses is understood all the same.
	mc.EnableCompression = false
	if c.Transport != nil {
		mc.Transport = c.Transport
	} else {
		bind := c.Bind
		if bind == "" {
			bind = "0.0.0.0:" + strconv.Itoa(DefaultPort)
		}
		host, port, err := splitHostPort(bind)
		if err != nil {
			return nil, fmt.Errorf("--bind %s: %w", bind, err)
		}
		ip, err := bindIP(host)
		if err != nil {
			return nil, fmt.Errorf("--bind %s: %w", bind, err)
		}
		mc.BindAddr, mc.BindPort = ip.String(), port
		mc.AdvertisePort = port
		if !c.Insecure && c.Key == nil && !ip.IsLoopback() {
			return nil, fmt.Errorf("--bind %s (%s) is not a loopback address and no --keyfile is given: anyone who reaches the port could join; give a key (clinit --keygen) or --insecure", bind, ip)
		}
	}
	if c.Advertise != "" {
		host, port, err := splitHostPort(c.Advertise)
		if err != nil {
			return nil, fmt.Errorf("--advertise %s: %w", c.Advertise, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = host, port
	}
	if c.Key != nil {
		if err := checkKey(c.Key); err != nil {
			return nil, err
		}
		mc.SecretKey = c.Key
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	return mc, nil
}

// splitHostPort accepts HOST:PORT, HOST (default port) and :PORT.
func splitHostPort(s string) (string, int, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return s, DefaultPort, nil
		}
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}
