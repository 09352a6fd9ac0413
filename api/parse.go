package api

import (
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"
)

// ParseHastat reads what Hastat.Text writes (SPEC 6): the `GROUP LEVEL
// STATE NODE` lines, then the `node NAME STATE LOAD` lines. Only the
// fields the file carries are set. A line of another shape, a node line
// before a group line, an unprintable field or a load that is not a
// number is an error naming the line.
//
// A group may be called "node": its line is told from a node's by its
// state, as group states (STARTING..., "-") and member states (alive...)
// are apart.
func ParseHastat(text string) (Hastat, error) {
	var h Hastat
	for n, line := range fileLines(text) {
		f := strings.Fields(line)
		if err := printableFields(f); err != nil {
			return Hastat{}, fmt.Errorf("hastat line %d: %w", n+1, err)
		}
		switch {
		case len(f) == 4 && f[0] == "node" && isNodeState(f[2]):
			load, err := strconv.ParseFloat(f[3], 64)
			if err != nil || math.IsNaN(load) || math.IsInf(load, 0) {
				return Hastat{}, fmt.Errorf("hastat line %d: load %q of node %s is not a number", n+1, f[3], f[1])
			}
			h.Nodes = append(h.Nodes, NodeStatus{Node: f[1], State: f[2], Load: load})
		case len(f) == 4 && len(h.Nodes) == 0:
			h.Groups = append(h.Groups, HAGroupStatus{Group: f[0], Level: f[1], State: f[2], Node: f[3]})
		case len(f) == 4:
			return Hastat{}, fmt.Errorf("hastat line %d: group line %q after the node lines", n+1, line)
		default:
			return Hastat{}, fmt.Errorf("hastat line %d: %q is neither `GROUP LEVEL STATE NODE` nor `node NAME STATE LOAD`", n+1, line)
		}
	}
	return h, nil
}

// ParseClstat reads what Status.Clstat writes (SPEC 4): one `GROUP LEVEL
// STATE` line per told group. A line of another shape or an unprintable
// field is an error naming the line.
func ParseClstat(text string) (Status, error) {
	var st Status
	for n, line := range fileLines(text) {
		f := strings.Fields(line)
		if err := printableFields(f); err != nil {
			return Status{}, fmt.Errorf("clstat line %d: %w", n+1, err)
		}
		if len(f) != 3 {
			return Status{}, fmt.Errorf("clstat line %d: %q is not `GROUP LEVEL STATE`", n+1, line)
		}
		st.Groups = append(st.Groups, GroupStatus{Group: f[0], Level: f[1], State: f[2]})
	}
	return st, nil
}

// Group returns the line of an HA group.
func (h Hastat) Group(name string) (HAGroupStatus, bool) {
	for _, g := range h.Groups {
		if g.Group == name {
			return g, true
		}
	}
	return HAGroupStatus{}, false
}

// NodeState is the state of a member ("" when it is not listed).
func (h Hastat) NodeState(name string) string {
	for _, n := range h.Nodes {
		if n.Node == name {
			return n.State
		}
	}
	return ""
}

// Alive counts the members in state alive.
func (h Hastat) Alive() int {
	k := 0
	for _, n := range h.Nodes {
		if n.State == NodeAlive {
			k++
		}
	}
	return k
}

// Group returns the status of a group.
func (s Status) Group(name string) (GroupStatus, bool) {
	for _, g := range s.Groups {
		if g.Group == name {
			return g, true
		}
	}
	return GroupStatus{}, false
}

// fileLines splits a file's text into its lines; the last one may lack
// its newline. Blank lines are passed over.
func fileLines(text string) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		for i, l := range strings.Split(text, "\n") {
			if strings.TrimSpace(l) != "" && !yield(i, l) {
				return
			}
		}
	}
}

func printableFields(f []string) error {
	for _, s := range f {
		if !isPrintable(s) {
			return fmt.Errorf("unprintable field %q", s)
		}
	}
	return nil
}

func isNodeState(s string) bool {
	switch s {
	case NodeAlive, NodeSuspect, NodeDead, NodeLeft:
		return true
	}
	return false
}
