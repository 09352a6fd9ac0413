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
		},
		Nodes: []NodeStatus{{Node: "n1", State: NodeAlive, Load: 0.5}, {Node: "n2", State: NodeDead}},
	}
	want := "web start DONE n2\ndb run - -\nnode n1 alive 0.50\nnode n2 dead 0.00\n"
	if got := h.Text(); got != want {
		t.Errorf("Text:\n%s\nwant\n%s", got, want)
	}
	want = "web start DONE n2  since 2026-11-23 02:00:00\ndb run - -  (no quorum: 1 of 2 members)\nnode n1 alive 0.50\nnode n2 dead 0.00\n"
	if got := h.Explained(); got != want {
		t.Errorf("Explained:\n%s\nwant\n%s", got, want)
	}
}
