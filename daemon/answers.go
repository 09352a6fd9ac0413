package daemon

import (
	"context"
	"fmt"
	"slices"

	"github.com/clinit/clinit/cltab"
)

// Answers to a tell that say what the operator may not expect.

// noGroup answers a tell of a group the cltab lacks. A lone argument is a
// LEVEL for the group named after the node (own): say so, since the
// operator most likely named a group and forgot its level.
func (s *Server) noGroup(ctx context.Context, group, level string, own bool) string {
	msg := "no such group: " + group
	if !own {
		return msg
	}
	msg += " (a lone argument is a LEVEL, for the group named after this node, " + group
	if groups, err := s.eng.Groups(ctx); err == nil && slices.Contains(groups, level) {
		msg += fmt.Sprintf("; to tell the group %s, give its level too: clinit %s LEVEL", level, level)
	}
	return msg + ")"
}

// told answers a tell that was made: at a level where none of the group's
// entries runs, everything of the group stops (SPEC 3.6), and the answer
// says so rather than look like an ordinary move.
func (s *Server) told(ctx context.Context, group, level string) string {
	msg := fmt.Sprintf("%s: going to level %s", group, level)
	t, err := s.eng.Tab(ctx)
	if err != nil || runsAt(t.Group(group), level) {
		return msg
	}
	return msg + fmt.Sprintf(": no entry of %s runs at level %s, so every process of it stops", group, level)
}

func runsAt(entries []*cltab.Entry, level string) bool {
	for _, e := range entries {
		if e.Mode != cltab.ModeOff && e.HasLevel(level) {
			return true
		}
	}
	return false
}
