// Package store is the replicated state machine of the HA layer (SPEC 7,
// HA.md I2): the texts of the cltab and the hactl with their versions,
// the assignment of each HA group to a node with its epoch, the failure
// counts and rule-outs of each group on each node, and the record of
// each successful fencing. It is applied by hashicorp/raft and knows
// nothing of the network: Apply is a pure function of the state and one
// committed command, so every node that applies the same log holds the
// same state, and snapshots are the state encoded as it is.
//
// Commands are checked against the state they apply to (a file edit
// names the version it was based on, an assignment the epoch it
// replaces), so two proposals made from the same state cannot both
// succeed: the second is refused with the reason, never silently lost.
package store

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
)

// Kinds of replicated files.
const (
	KindCltab = "cltab"
	KindHactl = "hactl"
)

// File is one replicated file as committed.
type File struct {
	Text string `json:"text"`
	// Version is the raft index of the commit that set Text: it grows
	// with every commit, so versions never repeat nor overflow in any
	// life of a cluster, and no key holder can choose one.
	Version uint64 `json:"version"`
}

// Assignment says which node runs an HA group.
type Assignment struct {
	Node string `json:"node,omitempty"` // "": the group runs nowhere
	// Stop asks Node to stop the group and release it: the group is
	// still Node's until it reports (an assignment to "") or its copy is
	// known gone (fenced, or past its lease and the fence time).
	Stop bool `json:"stop,omitempty"`
	// Epoch grows by one at each change of Node: a node acts on an
	// assignment only with a lease granted after it (HA.md, step 6).
	Epoch uint64 `json:"epoch"`
	// Version is the raft index of the commit that made it.
	Version uint64 `json:"version"`
	Why     string `json:"why,omitempty"`
}

// RuleOut keeps a group off a node until a time (Unix milliseconds,
// the leader's clock when it proposed it).
type RuleOut struct {
	Until int64  `json:"until"`
	Why   string `json:"why"`
}

// Fence records that a node was fenced (its stomith command exited 0)
// after the epoch named: its groups may be assigned elsewhere.
type Fence struct {
	At      int64  `json:"at"` // Unix ms, the proposer's clock
	Version uint64 `json:"version"`
}

// State is the whole replicated state.
type State struct {
	Files    map[string]File               `json:"files"`
	Assign   map[string]Assignment         `json:"assign"`
	Fails    map[string]map[string]int     `json:"fails"`    // group -> node -> count
	RuleOuts map[string]map[string]RuleOut `json:"ruleouts"` // group -> node -> rule-out
	Fences   map[string]Fence              `json:"fences"`   // node -> last fencing
	// What operators asked (clinit --move, --ban, --standby,
	// --maintenance, --forget), kept until they clear it.
	Bans        map[string]map[string]Ban `json:"bans,omitempty"`      // group -> node -> ban
	Moves       map[string]string         `json:"moves,omitempty"`     // group -> node it was moved to
	Standby     map[string]bool           `json:"standby,omitempty"`   // node -> holds no HA group
	Forgotten   map[string]int64          `json:"forgotten,omitempty"` // node -> when (Unix ms)
	Maintenance bool                      `json:"maintenance,omitempty"`
	// SettleFrom is when the cluster began to settle (Unix ms, the
	// clock of the leader that first planned): a cluster that has never
	// assigned a group waits from then, up to the cltab's settle time,
	// for every expected member before it places anything. Committed so
	// that a leader elected during the wait goes on from the same start,
	// not from its own election. 0: not begun.
	SettleFrom int64  `json:"settle_from,omitempty"`
	Index      uint64 `json:"index"` // last applied raft index
}

// Ban keeps a group off a node until an operator clears it.
type Ban struct {
	At  int64  `json:"at"` // Unix ms, the proposer's clock
	Why string `json:"why,omitempty"`
}

// FencedSince reports whether a's node was fenced after a was made: the
// copy it ran is gone, and the node holds nothing of a any more, even if
// it comes back and renews before a new owner is committed (the HA
// simulation, 3 nodes with stomith, seeds 270610 and 271490: a fenced
// node restarted, renewed between the fencing's commit and the new
// owner's, and started the group beside it).
func (s *State) FencedSince(a Assignment) bool {
	f, ok := s.Fences[a.Node]
	return ok && f.Version > a.Version
}

// Banned reports whether group is banned from node.
func (s *State) Banned(group, node string) bool {
	_, ok := s.Bans[group][node]
	return ok
}

// New returns the empty state.
func New() *State {
	return &State{
		Files:    map[string]File{},
		Assign:   map[string]Assignment{},
		Fails:    map[string]map[string]int{},
		RuleOuts: map[string]map[string]RuleOut{},
		Fences:   map[string]Fence{},
	}
}

// Ops of commands.
const (
	OpSetFile = "setfile" // Kind, Text, Base
	OpAssign  = "assign"  // Group, Node, Stop, Epoch (the one replaced), Why
	OpFail    = "fail"    // Group, Node, Until, Why: count a failure, rule out
	OpRuleOut = "ruleout" // Group, Node, Until, Why: rule out without a failure
	OpClear   = "clear"   // Group ("" all), Node ("" all): forget failures and rule-outs
	OpFenced  = "fenced"  // Node, At
	// Operators' commands.
	OpMove        = "move"        // Group, Node: run it there, until cleared
	OpBan         = "ban"         // Group, Node, At, Why: never there, until cleared
	OpClearMoves  = "clearmoves"  // Group, Node ("" all): forget its move and bans (of Node)
	OpStandby     = "standby"     // Node, On: holds no HA group while on; off: online, not forgotten
	OpMaintenance = "maintenance" // On: the planner and the nodes start, stop and move nothing
	OpForget      = "forget"      // Node, At: gone for good: counts as fenced, leaves the view
	// The planner's.
	OpSettle = "settle" // At: the cluster began to settle then (the first one committed stays)
	// OpBatch applies Batch, in order, at one raft index: a planner's
	// thousand assignments, a node's releases and failures, as one log
	// entry (one write, one replication, one apply on each voter)
	// instead of a thousand. Only assignments, failures, rule-outs and
	// clears go in a batch (Batchable): a file's version and a fencing's
	// are the index of their own entry.
	OpBatch = "batch" // Batch
)

// Batchable reports whether c may go in a batch.
func Batchable(c Command) bool {
	switch c.Op {
	case OpAssign, OpFail, OpRuleOut, OpClear, OpSettle:
		return true
	}
	return false
}

// Command is one proposal. Only the fields of its Op are used.
type Command struct {
	Op    string    `json:"op"`
	Kind  string    `json:"kind,omitempty"`
	Text  string    `json:"text,omitempty"`
	Base  uint64    `json:"base,omitempty"`
	Group string    `json:"group,omitempty"`
	Node  string    `json:"node,omitempty"`
	Epoch uint64    `json:"epoch,omitempty"`
	Stop  bool      `json:"stop,omitempty"`
	Until int64     `json:"until,omitempty"`
	At    int64     `json:"at,omitempty"`
	Why   string    `json:"why,omitempty"`
	On    bool      `json:"on,omitempty"`
	Batch []Command `json:"batch,omitempty"`
}

// Encode is the command as raft carries it.
func (c Command) Encode() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a struct of strings, numbers and bytes always encodes
	}
	return b
}

// Decode reads a command from a log entry.
func Decode(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("log entry: %w", err)
	}
	return c, nil
}

// Result is what applying a command gave: the version it made, or why
// it was refused.
type Result struct {
	Version uint64
	Err     error
}

// StaleError refuses an edit based on an older version than the one
// committed: both are named.
type StaleError struct {
	Kind          string
	Base, Current uint64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%s edit was based on version %d, but version %d is committed: refused", e.Kind, e.Base, e.Current)
}

// EpochError refuses an assignment made from an older state.
type EpochError struct {
	Group          string
	Epoch, Current uint64
}

func (e *EpochError) Error() string {
	return fmt.Sprintf("assignment of %s replaces epoch %d, but epoch %d is committed: refused", e.Group, e.Epoch, e.Current)
}

// ApplyBatch applies a committed batch at a raft index: each command of
// it in order, as Apply would at that index, each with its own result.
// A command that may not be batched is refused, and changes nothing.
func (s *State) ApplyBatch(index uint64, c Command) []Result {
	s.Index = index
	res := make([]Result, len(c.Batch))
	for i, b := range c.Batch {
		if !Batchable(b) {
			res[i] = Result{Err: fmt.Errorf("command %q may not go in a batch", b.Op)}
			continue
		}
		res[i] = s.Apply(index, b)
	}
	return res
}

// Apply applies one committed command at a raft index. A refused
// command changes nothing but the applied index. A batch is applied by
// ApplyBatch.
func (s *State) Apply(index uint64, c Command) Result {
	s.Index = index
	switch c.Op {
	case OpBatch:
		return Result{Err: fmt.Errorf("a batch is applied with ApplyBatch")}
	case OpSetFile:
		if c.Kind != KindCltab && c.Kind != KindHactl {
			return Result{Err: fmt.Errorf("unknown file kind %q", c.Kind)}
		}
		cur := s.Files[c.Kind]
		if c.Text == cur.Text && cur.Version > 0 {
			// The same text from another base: nothing to refuse, nothing
			// to change (every node proposes its copy at the first start).
			return Result{Version: cur.Version}
		}
		if c.Base != cur.Version {
			return Result{Err: &StaleError{Kind: c.Kind, Base: c.Base, Current: cur.Version}}
		}
		s.Files[c.Kind] = File{Text: c.Text, Version: index}
		return Result{Version: index}
	case OpAssign:
		if c.Group == "" {
			return Result{Err: fmt.Errorf("assignment without a group")}
		}
		cur := s.Assign[c.Group]
		if c.Epoch != cur.Epoch {
			return Result{Err: &EpochError{Group: c.Group, Epoch: c.Epoch, Current: cur.Epoch}}
		}
		if c.Stop && c.Node == "" {
			return Result{Err: fmt.Errorf("a stop of %s names no node", c.Group)}
		}
		// The same assignment again changes nothing; but once its node was
		// fenced, giving it the group afresh is a new assignment. Kept as
		// it was, it would still read as fenced after it (gone), and be
		// given elsewhere while the node, back from its fence, ran it (the
		// HA simulation, 3 nodes with stomith, seed 448422323).
		if f, fenced := s.Fences[c.Node]; c.Node == cur.Node && c.Stop == cur.Stop && cur.Epoch > 0 && !(fenced && f.Version > cur.Version) {
			return Result{Version: cur.Version} // no change
		}
		s.Assign[c.Group] = Assignment{Node: c.Node, Stop: c.Stop, Epoch: cur.Epoch + 1, Version: index, Why: c.Why}
		return Result{Version: index}
	case OpFail, OpRuleOut:
		if c.Group == "" || c.Node == "" {
			return Result{Err: fmt.Errorf("%s needs a group and a node", c.Op)}
		}
		if c.Op == OpFail {
			inner(s.Fails, c.Group)[c.Node]++
		}
		innerR(s.RuleOuts, c.Group)[c.Node] = RuleOut{Until: c.Until, Why: c.Why}
		return Result{Version: index}
	case OpClear:
		for g := range s.union(c.Group) {
			if c.Node == "" {
				delete(s.Fails, g)
				delete(s.RuleOuts, g)
				continue
			}
			delete(s.Fails[g], c.Node)
			delete(s.RuleOuts[g], c.Node)
			if len(s.Fails[g]) == 0 {
				delete(s.Fails, g)
			}
			if len(s.RuleOuts[g]) == 0 {
				delete(s.RuleOuts, g)
			}
		}
		return Result{Version: index}
	case OpFenced:
		if c.Node == "" {
			return Result{Err: fmt.Errorf("fenced needs a node")}
		}
		s.Fences[c.Node] = Fence{At: c.At, Version: index}
		return Result{Version: index}
	case OpMove, OpBan:
		if c.Group == "" || c.Node == "" {
			return Result{Err: fmt.Errorf("%s needs a group and a node", c.Op)}
		}
		if c.Op == OpMove {
			if s.Banned(c.Group, c.Node) {
				return Result{Err: fmt.Errorf("%s is banned from %s: clear the ban first", c.Group, c.Node)}
			}
			s.Moves = setIn(s.Moves, c.Group, c.Node)
			return Result{Version: index}
		}
		if s.Moves[c.Group] == c.Node {
			delete(s.Moves, c.Group) // banned from where it was moved to
		}
		if s.Bans == nil {
			s.Bans = map[string]map[string]Ban{}
		}
		if s.Bans[c.Group] == nil {
			s.Bans[c.Group] = map[string]Ban{}
		}
		s.Bans[c.Group][c.Node] = Ban{At: c.At, Why: c.Why}
		return Result{Version: index}
	case OpClearMoves:
		if c.Group == "" {
			return Result{Err: fmt.Errorf("clearmoves needs a group")}
		}
		if c.Node == "" || s.Moves[c.Group] == c.Node {
			delete(s.Moves, c.Group)
		}
		if c.Node == "" {
			delete(s.Bans, c.Group)
		} else if delete(s.Bans[c.Group], c.Node); len(s.Bans[c.Group]) == 0 {
			delete(s.Bans, c.Group)
		}
		return Result{Version: index}
	case OpStandby:
		if c.Node == "" {
			return Result{Err: fmt.Errorf("standby needs a node")}
		}
		if c.On {
			s.Standby = setIn(s.Standby, c.Node, true)
		} else {
			// Online again, also after a forget: it came back.
			delete(s.Standby, c.Node)
			delete(s.Forgotten, c.Node)
		}
		return Result{Version: index}
	case OpMaintenance:
		s.Maintenance = c.On
		return Result{Version: index}
	case OpSettle:
		if c.At <= 0 {
			return Result{Err: fmt.Errorf("settle needs a time")}
		}
		if s.SettleFrom == 0 {
			s.SettleFrom = c.At
		}
		return Result{Version: index}
	case OpForget:
		if c.Node == "" {
			return Result{Err: fmt.Errorf("forget needs a node")}
		}
		// Gone for good, as an operator says: what it held is as
		// fenced (HA.md: the operator is the fencing of last resort).
		s.Fences[c.Node] = Fence{At: c.At, Version: index}
		s.Forgotten = setIn(s.Forgotten, c.Node, c.At)
		delete(s.Standby, c.Node)
		return Result{Version: index}
	}
	return Result{Err: fmt.Errorf("unknown command %q", c.Op)}
}

// setIn sets m[k] = v, making m when it is nil.
func setIn[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// union is the groups a clear of g touches: g, or every group with a
// failure or a rule-out.
func (s *State) union(g string) map[string]bool {
	out := map[string]bool{}
	if g != "" {
		out[g] = true
		return out
	}
	for k := range s.Fails {
		out[k] = true
	}
	for k := range s.RuleOuts {
		out[k] = true
	}
	return out
}

func inner(m map[string]map[string]int, k string) map[string]int {
	if m[k] == nil {
		m[k] = map[string]int{}
	}
	return m[k]
}

func innerR(m map[string]map[string]RuleOut, k string) map[string]RuleOut {
	if m[k] == nil {
		m[k] = map[string]RuleOut{}
	}
	return m[k]
}

// Held returns the groups node may run, sorted: assigned to it and not
// asked to stop.
func (s *State) Held(node string) []string {
	var out []string
	for g, a := range s.Assign {
		if a.Node == node && !a.Stop {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// RuledOut reports whether node is ruled out for group at now (Unix ms).
func (s *State) RuledOut(group, node string, now int64) bool {
	r, ok := s.RuleOuts[group][node]
	return ok && now < r.Until
}

// Clone is a deep copy, for readers outside the applying goroutine.
// Every voter takes one at each burst of commits: it copies the maps
// (the values hold no pointers, and strings are immutable), not an
// encoding of them (a 1,000-group state took milliseconds through JSON).
func (s *State) Clone() *State {
	c := &State{
		Files:    maps.Clone(s.Files),
		Assign:   maps.Clone(s.Assign),
		Fails:    make(map[string]map[string]int, len(s.Fails)),
		RuleOuts: make(map[string]map[string]RuleOut, len(s.RuleOuts)),
		Fences:   maps.Clone(s.Fences),
		// The operators' maps stay nil when empty, as Unmarshal leaves
		// them (they are left out of a snapshot).
		Moves:       maps.Clone(s.Moves),
		Standby:     maps.Clone(s.Standby),
		Forgotten:   maps.Clone(s.Forgotten),
		Maintenance: s.Maintenance,
		SettleFrom:  s.SettleFrom,
		Index:       s.Index,
	}
	if s.Bans != nil {
		c.Bans = make(map[string]map[string]Ban, len(s.Bans))
		for g, m := range s.Bans {
			c.Bans[g] = maps.Clone(m)
		}
	}
	for g, m := range s.Fails {
		c.Fails[g] = maps.Clone(m)
	}
	for g, m := range s.RuleOuts {
		c.RuleOuts[g] = maps.Clone(m)
	}
	// The state is never nil inside (Unmarshal), nor is its copy.
	if c.Files == nil {
		c.Files = map[string]File{}
	}
	if c.Assign == nil {
		c.Assign = map[string]Assignment{}
	}
	if c.Fences == nil {
		c.Fences = map[string]Fence{}
	}
	return c
}

// Marshal encodes the state for a snapshot. The encoding is canonical
// (maps in key order), so equal states encode to equal bytes.
func (s *State) Marshal() ([]byte, error) {
	return json.MarshalIndent(s, "", "\t")
}

// Unmarshal decodes a snapshot.
func Unmarshal(b []byte) (*State, error) {
	s := New()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	// A snapshot of an empty map decodes to nil; the state is never nil.
	if s.Files == nil {
		s.Files = map[string]File{}
	}
	if s.Assign == nil {
		s.Assign = map[string]Assignment{}
	}
	if s.Fails == nil {
		s.Fails = map[string]map[string]int{}
	}
	if s.RuleOuts == nil {
		s.RuleOuts = map[string]map[string]RuleOut{}
	}
	if s.Fences == nil {
		s.Fences = map[string]Fence{}
	}
	return s, nil
}
