package cltab

import (
	"fmt"
	"strings"
)

// Lifecycle are the levels the cluster moves an HA group through
// (SPEC 7), besides the group's hactl level.
var Lifecycle = []string{"plan", "test", "start", LevelStop}

// CheckHactl checks a valid hactl against the valid cltab it goes with
// (clinit --check): every group it lists must have entries in the cltab,
// and entries at the level it wants (stop, which runs nothing, aside).
// The problems are at the hactl's lines; none is a nil Errors.
func CheckHactl(t *Tab, h *Hactl) Errors {
	var errs Errors
	for _, g := range h.Groups {
		entries := t.Group(g.Group)
		if len(entries) == 0 {
			errs = append(errs, &Error{Path: h.Path, Line: g.Line, Msg: fmt.Sprintf("group %s is not in the cltab %s", quote(g.Group), t.Path)})
			continue
		}
		if g.Level == LevelStop || hasLevel(entries, g.Level) {
			continue
		}
		errs = append(errs, &Error{Path: h.Path, Line: g.Line, Msg: fmt.Sprintf("group %s has no entry at level %s in the cltab %s", quote(g.Group), quote(g.Level), t.Path)})
	}
	return errs
}

func hasLevel(entries []*Entry, l string) bool {
	for _, e := range entries {
		if e.HasLevel(l) {
			return true
		}
	}
	return false
}

// LetterWarnings warns, as `PATH:LINE: warning: ...` lines, of the
// entries of HA groups whose runlevels field is a lifecycle level (or
// the group's hactl level) written without a comma: such a field is also
// split into one level per letter (SPEC 1), so `clinit vip t` would run
// every entry written `test`, `start` or `stop`. Writing `start,` names
// the one level.
func LetterWarnings(t *Tab, h *Hactl) []string {
	var out []string
	for _, e := range t.Entries {
		g := h.Group(e.Group)
		if g == nil || len(e.RawLevels) < 2 || strings.Contains(e.RawLevels, ",") {
			continue
		}
		lifecycle := e.RawLevels == g.Level
		for _, l := range Lifecycle {
			lifecycle = lifecycle || e.RawLevels == l
		}
		if !lifecycle {
			continue
		}
		letters := strings.Join(e.Levels, ", ")
		out = append(out, fmt.Sprintf("%s:%d: warning: levels %s of HA group %s, written without a comma, are also the one-letter levels %s (clinit %s %s would run this entry); write %s for the one level %s",
			t.Path, e.Line, quote(e.RawLevels), quote(e.Group), letters, e.Group, e.Levels[0], quote(e.RawLevels+","), e.RawLevels))
	}
	return out
}
