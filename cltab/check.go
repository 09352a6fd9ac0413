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
		if msg := HALevelProblem(t, g.Group, g.Level); msg != "" {
			errs = append(errs, &Error{Path: h.Path, Line: g.Line, Msg: msg})
		}
	}
	return errs
}

// HALevelProblem says why group cannot be kept at level by the cluster:
// it is not in the cltab, or has no entry at that level (stop, which
// runs nothing, aside); "" when it can.
func HALevelProblem(t *Tab, group, level string) string {
	entries := t.Group(group)
	if len(entries) == 0 {
		return fmt.Sprintf("group %s is not in the cltab %s", quote(group), t.Path)
	}
	if level == LevelStop || hasLevel(entries, level) {
		return ""
	}
	return fmt.Sprintf("group %s has no entry at level %s in the cltab %s", quote(group), quote(level), t.Path)
}

// GroupLevels are the levels at which group has entries as their
// runlevels fields name them, in file order, each once: the names of a
// field with a comma, else the whole field (not each of its letters,
// which are levels too).
func GroupLevels(t *Tab, group string) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range t.Group(group) {
		names := e.Levels
		if !strings.Contains(e.RawLevels, ",") {
			names = []string{e.RawLevels}
		}
		for _, l := range names {
			if !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	return out
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
