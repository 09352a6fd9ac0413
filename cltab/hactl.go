package cltab

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// LevelStop is the hactl level that means "run nowhere" (SPEC 7).
const LevelStop = "stop"

// HAGroup is one hactl line: keep Group at Level on one node, trying the
// Prefer nodes first, in order.
type HAGroup struct {
	Group  string
	Level  string
	Prefer []string
	// Failback is the line's failback=on|off: whether the group goes
	// back to a more preferred node when that node returns; "" leaves it
	// to the cltab's :::failback: setting.
	Failback string
	Line     int
}

// failbackField starts the optional last field of an hactl line.
const failbackField = "failback="

// hactlUsage is the form of a line, for messages.
const hactlUsage = "want GROUP LEVEL [NODE,...] [failback=on|off]"

// FailsBack reports whether the group goes back to a more preferred
// node when it returns: its own failback= when given, else def (the
// cltab's setting).
func (g *HAGroup) FailsBack(def bool) bool {
	switch g.Failback {
	case "on":
		return true
	case "off":
		return false
	}
	return def
}

// splitOptions parses the fields after GROUP LEVEL: an optional node
// list, then an optional failback=on|off. ok is false for more fields
// than that.
func splitOptions(f []string) (nodes string, hasNodes bool, failback string, ok bool) {
	if n := len(f); n > 0 && strings.HasPrefix(f[n-1], failbackField) {
		failback = f[n-1][len(failbackField):]
		if failback == "" {
			failback = "?" // failback= alone: reported as a bad value
		}
		f = f[:n-1]
	}
	switch len(f) {
	case 0:
		return "", false, failback, true
	case 1:
		return f[0], true, failback, true
	}
	return "", false, "", false
}

// Hactl is a parsed, validated hactl file (SPEC 7).
type Hactl struct {
	Path   string
	Groups []*HAGroup // in file order
	// byName indexes Groups, as ParseHactl made them: the cluster looks
	// groups up by name at every decision (1,000 groups on each node).
	byName map[string]*HAGroup
}

// Group returns the line of group g, or nil when g is not listed (or h
// is nil).
func (h *Hactl) Group(g string) *HAGroup {
	if h == nil {
		return nil
	}
	if h.byName != nil && len(h.byName) == len(h.Groups) {
		return h.byName[g]
	}
	for _, x := range h.Groups {
		if x.Group == g {
			return x
		}
	}
	return nil
}

// LoadHactl reads and parses the hactl at path. A missing file is an
// empty hactl: no group runs anywhere.
func LoadHactl(path string) (*Hactl, error) {
	data, err := readCapped(path)
	if os.IsNotExist(err) {
		return &Hactl{Path: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read hactl: %w", err)
	}
	return ParseHactl(path, data)
}

// ParseHactl parses and validates hactl text: `GROUP LEVEL [NODE,...]`
// per line, `#` comments. Like Parse, it reports every problem at once;
// with them it returns the lines that were valid.
func ParseHactl(path string, data []byte) (*Hactl, error) {
	h := &Hactl{Path: path}
	var errs Errors
	errorf := func(n int, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Line: n, Msg: fmt.Sprintf(format, args...)})
	}
	if n, msg := sizeError(data); msg != "" {
		return nil, Errors{{Path: path, Line: n, Msg: msg}}
	}
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimRight(line, "\r")
		if msg := lineError(line); msg != "" {
			errorf(n, "%s", msg)
			continue
		}
		if !utf8.ValidString(line) {
			errorf(n, "line is not valid UTF-8")
			continue
		}
		if strings.IndexByte(line, 0) >= 0 {
			errorf(n, "line contains a NUL byte")
			continue
		}
		f := strings.FieldsFunc(line, unicode.IsSpace)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 {
			errorf(n, "missing level: %s", hactlUsage)
			continue
		}
		list, hasList, failback, fieldsOK := splitOptions(f[2:])
		if !fieldsOK {
			errorf(n, "too many fields: %s", hactlUsage)
			continue
		}
		g := &HAGroup{Group: f[0], Level: f[1], Line: n}
		ok := true
		if failback != "" {
			if _, good := ParseOnOff(failback); !good {
				errorf(n, "bad failback %s: want failback=on or failback=off", quote(failback))
				ok = false
			}
			g.Failback = failback
		}
		if !ValidName(g.Group) {
			errorf(n, "%s", BadName("group", g.Group))
			ok = false
		} else if first, dup := seen[g.Group]; dup {
			errorf(n, "duplicate group %s (first at line %d)", quote(g.Group), first)
			ok = false
		}
		if !ValidName(g.Level) {
			errorf(n, "%s", BadName("level", g.Level))
			ok = false
		}
		if hasList {
			nodes := map[string]bool{}
			for _, node := range strings.Split(list, ",") {
				switch {
				case node == "":
					continue
				case !ValidName(node):
					errorf(n, "%s", BadName("node", node))
					ok = false
				case nodes[node]:
					errorf(n, "node %s preferred twice", quote(node))
					ok = false
				default:
					nodes[node] = true
					g.Prefer = append(g.Prefer, node)
				}
			}
		}
		if ok {
			seen[g.Group] = n
			h.Groups = append(h.Groups, g)
		}
	}
	h.byName = make(map[string]*HAGroup, len(h.Groups))
	for _, g := range h.Groups {
		h.byName[g.Group] = g
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return h, errs // the valid lines too, for --check to look further
	}
	return h, nil
}

// String renders a hactl line.
func (g *HAGroup) String() string {
	s := g.Group + " " + g.Level
	if len(g.Prefer) > 0 {
		s += " " + strings.Join(g.Prefer, ",")
	}
	if g.Failback != "" {
		s += " " + failbackField + g.Failback
	}
	return s
}

// SetHactl returns hactl text with group g set to level (and preferred
// nodes, when prefer is not nil), keeping every other line, comment and
// blank as it was, and the line's failback= field. A group not yet listed is appended. data must be valid.
func SetHactl(data []byte, g, level string, prefer []string) []byte {
	lines := strings.Split(string(data), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	set := &HAGroup{Group: g, Level: level, Prefer: prefer}
	for i, line := range lines {
		f := strings.FieldsFunc(line, unicode.IsSpace)
		if len(f) >= 2 && f[0] == g {
			list, hasList, failback, _ := splitOptions(f[2:])
			if prefer == nil && hasList {
				set.Prefer = strings.Split(list, ",")
			}
			set.Failback = failback
			lines[i] = set.String()
			return []byte(strings.Join(lines, "\n") + "\n")
		}
	}
	lines = append(lines, set.String())
	return []byte(strings.Join(lines, "\n") + "\n")
}
