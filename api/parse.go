package api

import (
	"fmt"
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
	err := eachLine("hastat", text, func(f []string, line string) error {
		switch {
		case len(f) == 4 && f[0] == "node" && isNodeState(f[2]):
			load, err := strconv.ParseFloat(f[3], 64)
			if err != nil || math.IsNaN(load) || math.IsInf(load, 0) {
				return fmt.Errorf("load %q of node %s is not a number", f[3], f[1])
			}
			h.Nodes = append(h.Nodes, NodeStatus{Node: f[1], State: f[2], Load: load})
		case len(f) == 4 && len(h.Nodes) == 0:
			h.Groups = append(h.Groups, HAGroupStatus{Group: f[0], Level: f[1], State: f[2], Node: f[3]})
		case len(f) == 4:
			return fmt.Errorf("group line %q after the node lines", line)
		default:
			return fmt.Errorf("%q is neither `GROUP LEVEL STATE NODE` nor `node NAME STATE LOAD`", line)
		}
		return nil
	})
	if err != nil {
		return Hastat{}, err
	}
	return h, nil
}

// ParseClstat reads what Status.Clstat writes (SPEC 4): one `GROUP LEVEL
// STATE` line per told group. A line of another shape or an unprintable
// field is an error naming the line.
func ParseClstat(text string) (Status, error) {
	var st Status
	err := eachLine("clstat", text, func(f []string, line string) error {
		if len(f) != 3 {
			return fmt.Errorf("%q is not `GROUP LEVEL STATE`", line)
		}
		st.Groups = append(st.Groups, GroupStatus{Group: f[0], Level: f[1], State: f[2]})
		return nil
	})
	if err != nil {
		return Status{}, err
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

// eachLine calls f with the fields of every line of text but blank
// ones (the last may lack its newline), and says which line of the kind
// of file an unprintable field or f's error is at.
func eachLine(kind, text string, f func(fields []string, line string) error) error {
	for i, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		err := printableFields(fields)
		if err == nil {
			err = f(fields, line)
		}
		if err != nil {
			return fmt.Errorf("%s line %d: %w", kind, i+1, err)
		}
	}
	return nil
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
