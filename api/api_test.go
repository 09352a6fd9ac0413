package api

import (
	"strings"
	"testing"
	"time"
	"unicode"
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

// TestTextNeverPrintsControlCharacters: a name with a newline once made
// hastat lines of its own ("node fake alive"); whatever slips through,
// every line stays one line, without escape sequences.
func TestTextNeverPrintsControlCharacters(t *testing.T) {
	h := Hastat{
		Groups: []HAGroupStatus{{Group: "web", Level: "start", State: "DONE", Node: "n1\nnode fake alive"},
			{Group: "db\x1b[2J", Level: "run", State: "-", Node: "-", Why: "why\r\n"}},
		Nodes: []NodeStatus{{Node: "n\xff\x00", State: NodeAlive}},
	}
	st := Status{Groups: []GroupStatus{{Group: "g\x07", Level: "2\x00x", State: "DONE"}}}
	for name, text := range map[string]string{"Text": h.Text(), "Explained": h.Explained(), "Clstat": st.Clstat()} {
		lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		if want := map[string]int{"Text": 3, "Explained": 3, "Clstat": 1}[name]; len(lines) != want {
			t.Errorf("%s: %d lines, want %d:\n%s", name, len(lines), want, text)
		}
		for _, r := range strings.TrimSuffix(text, "\n") {
			if r != '\n' && !unicode.IsPrint(r) {
				t.Errorf("%s: raw %q in %q", name, r, text)
			}
		}
	}
	if got, want := h.Text(), "web start DONE n1\\nnode fake alive\ndb\\x1b[2J run - -\nnode n\\xff\\x00 alive 0.00\n"; got != want {
		t.Errorf("Text:\n%q\nwant\n%q", got, want)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{"web": "web", "é✓": "é✓", "a\tb": `a\tb`, "\x7f": `\x7f`, "\xff": `\xff`, "\u200e": `\u200e`} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
