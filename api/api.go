// Package api holds the wire types of the local socket protocol (HTTP and
// JSON over a UNIX socket), defined once for both the daemon and the client.
package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clinit/clinit/api/wire"
)

// VersionHeader is sent both ways; Version is the protocol version
// (defined in package wire, with the paths).
const (
	VersionHeader = wire.VersionHeader
	Version       = wire.Version
)

// Paths of the protocol, all under /v0/.
const (
	PathTell     = wire.PathTell     // POST TellRequest -> Message
	PathReread   = wire.PathReread   // POST -> Message
	PathStatus   = wire.PathStatus   // GET -> Status
	PathShutdown = wire.PathShutdown // POST -> Message, answered once every group has stopped
	PathHastat   = wire.PathHastat   // GET -> Hastat
	PathHA       = wire.PathHA       // POST HARequest -> Message
	PathWatch    = wire.PathWatch    // GET [?node=NAME] -> a stream of Event, one JSON object a line
	PathCluster  = wire.PathCluster  // POST ClusterRequest -> Message
)

// MaxRequestBody bounds every request body the daemon reads.
const MaxRequestBody = 64 << 10

// Group states (SPEC 4).
const (
	StateStarting = "STARTING"
	StateChecking = "CHECKING"
	StateDone     = "DONE"
	StatePassed   = "PASSED"
	StateFailed   = "FAILED"
	StateStopping = "STOPPING"
)

// TellRequest asks the daemon to move Group to Level.
type TellRequest struct {
	Group string `json:"group"`
	Level string `json:"level"`
}

// Message is the answer to an action: one line for the operator, and
// warnings of what was done but may not be what was meant.
type Message struct {
	Message  string   `json:"message"`
	Warnings []string `json:"warnings,omitempty"`
}

// Error is the body of every non-2xx answer. Lines carries one problem per
// line when there are several (an invalid cltab).
type Error struct {
	Error string   `json:"error"`
	Lines []string `json:"lines,omitempty"`
}

// Status is the daemon's view of its groups.
type Status struct {
	Node   string        `json:"node"`
	Cltab  string        `json:"cltab"`
	Groups []GroupStatus `json:"groups"`
}

// GroupStatus is one clstat line plus the state of each entry.
type GroupStatus struct {
	Group   string        `json:"group"`
	Level   string        `json:"level"`
	State   string        `json:"state"`
	Since   time.Time     `json:"since"`
	Why     string        `json:"why,omitempty"` // why it is FAILED
	Entries []EntryStatus `json:"entries,omitempty"`
}

// EntryStatus is one cltab entry of a told group.
type EntryStatus struct {
	Tag       string    `json:"tag"`
	Mode      string    `json:"mode"`
	Pid       int       `json:"pid,omitempty"` // 0 when not running
	Restarts  int       `json:"restarts"`
	Since     time.Time `json:"since,omitzero"` // last start or exit
	Exit      *int      `json:"exit,omitempty"` // last exit status, -1 for a signal
	Throttled bool      `json:"throttled,omitempty"`
	// Signal names the signal that ended the last run: SIGTERM...
	Signal string `json:"signal,omitempty"`
	// ThrottledUntil is when a throttled entry is started again.
	ThrottledUntil time.Time `json:"throttled_until,omitzero"`
}

// Clstat renders the status as clstat lines: `GROUP LEVEL STATE`, one per
// told group, in the order of Groups (sorted by the daemon). SPEC 4.
// Like Text, it never writes a control character raw.
func (s Status) Clstat() string {
	var b strings.Builder
	for _, g := range s.Groups {
		b.WriteString(Printable(g.Group) + " " + Printable(g.Level) + " " + Printable(g.State) + "\n")
	}
	return b.String()
}

// Explained is Clstat with, after the line of a FAILED group, why it
// failed: what clinit --status prints. The first fields are those of
// Clstat.
func (s Status) Explained() string {
	var b strings.Builder
	for _, g := range s.Groups {
		b.WriteString(g.Group + " " + g.Level + " " + g.State)
		if g.Why != "" {
			b.WriteString("  (" + g.Why + ")")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// HARequest edits one line of the hactl (clinit --ha). A nil Prefer keeps
// the preferred nodes the line has; an empty one clears them.
type HARequest struct {
	Group  string   `json:"group"`
	Level  string   `json:"level"`
	Prefer []string `json:"prefer"`
}

// Cluster commands (ClusterRequest.Op): what an operator asks of the HA
// layer, committed through the log and kept until cleared.
const (
	OpMove        = "move"        // Group to Node now; it stays there
	OpBan         = "ban"         // Group never on Node
	OpClear       = "clear"       // Group's move and bans (of Node, if set) forgotten
	OpStandby     = "standby"     // Node holds no HA group; its groups move off
	OpOnline      = "online"      // Node may hold HA groups again
	OpMaintenance = "maintenance" // On: HA starts, stops and moves nothing
	OpCleanup     = "cleanup"     // Group's failures and rule-outs (on Node, if set) forgotten
	OpForget      = "forget"      // Node, dead, will not come back: its groups move
)

// ClusterRequest is one cluster command.
type ClusterRequest struct {
	Op    string `json:"op"`
	Group string `json:"group,omitempty"`
	Node  string `json:"node,omitempty"`
	On    bool   `json:"on,omitempty"`
}

// Node states in the cluster view (memberlist's, SPEC 6).
const (
	NodeAlive   = "alive"
	NodeSuspect = "suspect"
	NodeDead    = "dead"
	NodeLeft    = "left"
)

// Hastat is the collated cluster view (SPEC 6), as a node sees it.
type Hastat struct {
	Node   string          `json:"node"` // the node that answered
	Groups []HAGroupStatus `json:"groups"`
	Nodes  []NodeStatus    `json:"nodes"`
	Gossip *GossipStats    `json:"gossip,omitempty"` // the answering node's traffic
	// Leader is the raft leader that last renewed the answering node's
	// lease; LeaseUntil, when that lease ends ("" and zero: none held).
	Leader     string    `json:"leader,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// Versions are the committed versions (raft indexes) of the
	// replicated files this node's copies are: "cltab", "hactl".
	Versions map[string]uint64 `json:"versions,omitempty"`
	// Maintenance: an operator asked HA to start, stop and move nothing.
	Maintenance bool `json:"maintenance,omitempty"`
}

// RuleOut keeps a group off a node until a time, for a reason: a failed
// test or level, or an operator's ban (Until zero: until cleared).
type RuleOut struct {
	Node  string    `json:"node"`
	Until time.Time `json:"until,omitzero"`
	Why   string    `json:"why"`
}

// GossipStats counts the bytes memberlist sent and received since Since
// (TCP bytes received are not counted by memberlist).
type GossipStats struct {
	Since            time.Time `json:"since"`
	UDPSentBytes     uint64    `json:"udp_sent_bytes"`
	TCPSentBytes     uint64    `json:"tcp_sent_bytes"`
	UDPReceivedBytes uint64    `json:"udp_received_bytes"`
}

// HAGroupStatus is one HA group of the hactl: its wanted level, and where
// it runs, in which state ("-" for both when it runs nowhere).
type HAGroupStatus struct {
	Group string    `json:"group"`
	Level string    `json:"level"`
	State string    `json:"state"`
	Node  string    `json:"node"`
	Since time.Time `json:"since,omitzero"`
	Why   string    `json:"why,omitempty"` // why it runs nowhere, or why it FAILED where it runs
	// Assigned is the node the committed state gives the group to, and
	// Epoch the assignment's: what the cluster decided, beside what runs.
	Assigned string `json:"assigned,omitempty"`
	Epoch    uint64 `json:"epoch,omitempty"`
	// What keeps it from nodes, and where an operator moved it.
	Fails    map[string]int `json:"fails,omitempty"`     // node -> failures counted
	RuleOuts []RuleOut      `json:"rule_outs,omitempty"` // failures' and bans
	MovedTo  string         `json:"moved_to,omitempty"`
}

// NodeStatus is one member: its state, its load, and the groups it runs.
type NodeStatus struct {
	Node    string        `json:"node"`
	State   string        `json:"state"`
	CPUs    int           `json:"cpus"`
	Load    float64       `json:"load"` // 1-minute load average
	Version uint64        `json:"version"`
	Groups  []GroupStatus `json:"groups"`
	Address string        `json:"address,omitempty"` // its gossip HOST:PORT
	Build   string        `json:"build,omitempty"`   // the clinit version it runs
	Standby bool          `json:"standby,omitempty"` // holds no HA group (clinit --standby)
}

// Text renders hastat (SPEC 6): `GROUP LEVEL STATE NODE` per HA group,
// then `node NAME STATE LOAD` per node. Every field goes through
// Printable: names are checked where they enter, and this is the second
// line of defence of a file that scripts read line by line.
func (h Hastat) Text() string {
	var b []byte
	for _, g := range h.Groups {
		b = AppendHastatGroup(b, g.Group, g.Level, g.State, g.Node)
	}
	return string(h.appendNodes(b))
}

func (h Hastat) appendNodes(b []byte) []byte {
	for _, n := range h.Nodes {
		b = AppendHastatNode(b, n.Node, n.State, n.Load)
	}
	return b
}

// AppendHastatGroup appends one group line of hastat's text to b:
// `GROUP LEVEL STATE NODE`. A node that rewrites its hastat for 1,000
// groups several times a second builds the file with it, without an
// Hastat in between.
func AppendHastatGroup(b []byte, group, level, state, node string) []byte {
	for i, f := range [4]string{group, level, state, node} {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, Printable(f)...)
	}
	return append(b, '\n')
}

// AppendHastatNode appends one node line of hastat's text to b:
// `node NAME STATE LOAD`.
func AppendHastatNode(b []byte, node, state string, load float64) []byte {
	b = append(b, "node "...)
	b = append(b, Printable(node)...)
	b = append(b, ' ')
	b = append(b, Printable(state)...)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, load, 'f', 2, 64)
	return append(b, '\n')
}

// Explained is Text with, after each HA group line, since when it has
// been in its state where it runs, or why it runs nowhere: what
// clinit --hastat prints. The first fields are those of Text.
func (h Hastat) Explained() string {
	var b strings.Builder
	for _, g := range h.Groups {
		fmt.Fprintf(&b, "%s %s %s %s", Printable(g.Group), Printable(g.Level), Printable(g.State), Printable(g.Node))
		switch {
		case g.Node != "-" && !g.Since.IsZero():
			fmt.Fprintf(&b, "  since %s", g.Since.Local().Format(time.DateTime))
		}
		if g.Why != "" {
			fmt.Fprintf(&b, "  (%s)", Printable(g.Why))
		}
		if g.Assigned != "" {
			fmt.Fprintf(&b, "  [assigned %s, epoch %d]", g.Assigned, g.Epoch)
		}
		if g.MovedTo != "" {
			fmt.Fprintf(&b, "  [moved to %s]", Printable(g.MovedTo))
		}
		b.WriteString("\n")
		for _, r := range g.RuleOuts {
			fmt.Fprintf(&b, "    not on %s", Printable(r.Node))
			if !r.Until.IsZero() {
				fmt.Fprintf(&b, " until %s", r.Until.Local().Format(time.DateTime))
			}
			fmt.Fprintf(&b, ": %s", Printable(r.Why))
			if n := g.Fails[r.Node]; n > 0 {
				fmt.Fprintf(&b, " (%d failures)", n)
			}
			b.WriteString("\n")
		}
	}
	for _, n := range h.Nodes {
		line := AppendHastatNode(nil, n.Node, n.State, n.Load)
		b.Write(line[:len(line)-1])
		if n.Address != "" {
			fmt.Fprintf(&b, "  at %s", Printable(n.Address))
		}
		if n.Build != "" {
			fmt.Fprintf(&b, "  clinit %s", Printable(n.Build))
		}
		if n.Standby {
			b.WriteString("  standby")
		}
		b.WriteString("\n")
	}
	if h.Maintenance {
		b.WriteString("maintenance mode: HA starts, stops and moves nothing\n")
	}
	switch {
	case h.Leader != "" && !h.LeaseUntil.IsZero():
		fmt.Fprintf(&b, "leader %s; lease of %s held until %s\n", Printable(h.Leader), Printable(h.Node), h.LeaseUntil.Local().Format("15:04:05.000"))
	case h.Leader != "":
		fmt.Fprintf(&b, "leader %s\n", Printable(h.Leader))
	}
	return b.String()
}

// Event is one thing seen by a node, in the stream of clinit --watch.
// Kind says what, and which fields are set:
//
//   - EventState: a group of Node entering Level/State;
//   - EventMember: Node entering the member state NodeState;
//   - EventAssign: an HA decision committed in the log: Group assigned to
//     Assigned (empty: to nobody) at Epoch, asked to stop when Stop, and
//     Why;
//   - EventRuledOut: Group kept off Node until Until, and Why (committed);
//   - EventRespawn: Tag of Group on Node started again (Pid) after its last
//     run ended by itself (Exit, or Signal), the Restarts-th time;
//   - EventThrottle: Tag of Group on Node resting until Until, and Why;
//   - EventFencing, EventFenceFailed: the leader (this node) runs the
//     stomith command for Node, and Why; or it failed, and Why;
//   - EventFenced: Node's fencing committed in the log;
//   - EventLeaseLapsed: this node's lease ended with no renewal answered:
//     it stops its HA groups; EventLease: a lease holds again, granted by
//     Leader.
//
// Respawns, throttles and lease lapses are this node's own (Node is
// this node); the committed events are seen alike by every node.
type Event struct {
	Kind      string    `json:"event"`
	Time      time.Time `json:"time"`
	Node      string    `json:"node"`
	Group     string    `json:"group,omitempty"`
	Level     string    `json:"level,omitempty"`
	State     string    `json:"state,omitempty"`
	NodeState string    `json:"node_state,omitempty"`
	Assigned  string    `json:"assigned,omitempty"`
	Epoch     uint64    `json:"epoch,omitempty"`
	Stop      bool      `json:"stop,omitempty"`
	Tag       string    `json:"tag,omitempty"`
	Pid       int       `json:"pid,omitempty"`
	Restarts  int       `json:"restarts,omitempty"`
	Exit      *int      `json:"exit,omitempty"`
	Signal    string    `json:"signal,omitempty"`
	Until     time.Time `json:"until,omitzero"`
	Leader    string    `json:"leader,omitempty"`
	Why       string    `json:"why,omitempty"`
}

// Kinds of Event.
const (
	EventState       = "state"
	EventMember      = "member"
	EventAssign      = "assign"
	EventRuledOut    = "ruled_out"
	EventRespawn     = "respawn"
	EventThrottle    = "throttle"
	EventFencing     = "fencing"
	EventFenceFailed = "fence_failed"
	EventFenced      = "fenced"
	EventLeaseLapsed = "lease_lapsed"
	EventLease       = "lease"
)
