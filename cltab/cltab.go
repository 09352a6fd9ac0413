// Package cltab owns the cltab file format: parsing, strict validation
// with line numbers, and the typed view of its settings. It knows nothing
// of processes or sockets.
package cltab

import (
	"errors"
	"strconv"
	"strings"
)

// Mode is how the daemon runs an entry's command.
type Mode string

// The five modes of SPEC 3.
const (
	ModeWait    Mode = "wait"
	ModeOnce    Mode = "once"
	ModeRespawn Mode = "respawn"
	ModeTest    Mode = "test"
	ModeOff     Mode = "off"
)

// Entry is one `group:tag:runlevels:mode:command` line.
type Entry struct {
	Group     string
	Tag       string
	RawLevels string   // the runlevels field as written
	Levels    []string // the level names it expands to (see HasLevel)
	Mode      Mode
	Command   string // run by /bin/sh -c
	Line      int    // 1-based line number in the file
}

// HasLevel reports whether the entry runs at level l: l is one of the
// expanded level names, or the whole runlevels field.
func (e *Entry) HasLevel(l string) bool {
	if l == e.RawLevels {
		return true
	}
	for _, x := range e.Levels {
		if x == l {
			return true
		}
	}
	return false
}

// Setting is one `:::name:value` line.
type Setting struct {
	Name  string
	Value string
	Line  int
}

// Tab is a parsed, valid cltab.
type Tab struct {
	Path     string
	Entries  []*Entry // in file order
	Settings map[string]Setting
	// Warnings are settings that work but are unsafe, as PATH:LINE:
	// problems; --check prints them and the daemon logs them.
	Warnings Errors
}

// Groups returns the group names in order of first appearance.
func (t *Tab) Groups() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range t.Entries {
		if !seen[e.Group] {
			seen[e.Group] = true
			out = append(out, e.Group)
		}
	}
	return out
}

// Group returns the entries of group g in file order (nil if none).
func (t *Tab) Group(g string) []*Entry {
	var out []*Entry
	for _, e := range t.Entries {
		if e.Group == g {
			out = append(out, e)
		}
	}
	return out
}

// Setting returns the value of the named setting and whether it was set.
func (t *Tab) Setting(name string) (string, bool) {
	s, ok := t.Settings[name]
	return s.Value, ok
}

// Error is one problem found in a file, at a line (0 when the problem is
// with the file as a whole).
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Path + ": " + e.Msg
	}
	return e.Path + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Errors is every problem found in one file, in line order. It is the
// error returned for an invalid file; errors.As finds it.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Lines returns each problem as its own `PATH:LINE: message` string.
func (es Errors) Lines() []string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return lines
}

// ErrInvalid is matched (errors.Is) by every Errors value, so callers can
// tell an invalid file from a missing or unreadable one.
var ErrInvalid = errors.New("invalid cltab")

// Is makes errors.Is(err, ErrInvalid) true for an Errors value.
func (es Errors) Is(target error) bool { return target == ErrInvalid }
