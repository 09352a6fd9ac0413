package api

import (
	"testing"
	"time"
)

func TestHastatText(t *testing.T) {
	since := time.Date(2026, 11, 23, 2, 0, 0, 0, time.Local)
	h := Hastat{
		Groups: []HAGroupStatus{
			{Group: "web", Level: "start", State: "DONE", Node: "n2", Since: since},
			{Group: "db", Level: "run", State: "-", Node: "-", Why: "no quorum: 1 of 2 members"},
			{Group: "vip", Level: "start", State: "FAILED", Node: "n1", Since: since, Why: "r respawning too rapidly: resting for 1m0s"},
		},
		Nodes: []NodeStatus{{Node: "n1", State: NodeAlive, Load: 0.5}, {Node: "n2", State: NodeDead}},
	}
	want := "web start DONE n2\ndb run - -\nvip start FAILED n1\nnode n1 alive 0.50\nnode n2 dead 0.00\n"
	if got := h.Text(); got != want {
		t.Errorf("Text:\n%s\nwant\n%s", got, want)
	}
	want = "web start DONE n2  since 2026-11-23 02:00:00\ndb run - -  (no quorum: 1 of 2 members)\n" +
		"vip start FAILED n1  since 2026-11-23 02:00:00  (r respawning too rapidly: resting for 1m0s)\nnode n1 alive 0.50\nnode n2 dead 0.00\n"
	if got := h.Explained(); got != want {
		t.Errorf("Explained:\n%s\nwant\n%s", got, want)
	}
}

// --status prints the clstat lines, with why after a FAILED one.
func TestStatusExplained(t *testing.T) {
	st := Status{Groups: []GroupStatus{
		{Group: "a", Level: "1", State: "DONE"},
		{Group: "b", Level: "2", State: "FAILED", Why: "w exited 3"},
	}}
	if got, want := st.Clstat(), "a 1 DONE\nb 2 FAILED\n"; got != want {
		t.Errorf("Clstat: %q, want %q", got, want)
	}
	if got, want := st.Explained(), "a 1 DONE\nb 2 FAILED  (w exited 3)\n"; got != want {
		t.Errorf("Explained: %q, want %q", got, want)
	}
}
