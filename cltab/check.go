package cltab

import (
	"fmt"
)

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
