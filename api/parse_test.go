package api

import (
	"reflect"
	"strings"
	"testing"
)

// What Text writes, ParseHastat reads back: every field the file
// carries, a group called "node" included.
func TestHastatRoundTrip(t *testing.T) {
	for _, h := range []Hastat{
		{},
		{Groups: []HAGroupStatus{{Group: "web", Level: "start", State: StateDone, Node: "n2"}}},
		{Nodes: []NodeStatus{{Node: "n1", State: NodeAlive, Load: 0.5}}},
		{
			Groups: []HAGroupStatus{
				{Group: "web", Level: "start", State: StateDone, Node: "n2"},
				{Group: "db", Level: "run", State: "-", Node: "-"},
				{Group: "node", Level: "start", State: StateFailed, Node: "alive"},
				{Group: "é✓", Level: "long3", State: StateStarting, Node: "n1"},
			},
			Nodes: []NodeStatus{
				{Node: "n1", State: NodeAlive, Load: 1.25},
				{Node: "n2", State: NodeSuspect},
				{Node: "node", State: NodeDead, Load: 12},
				{Node: "n4", State: NodeLeft, Load: 0.01},
			},
		},
	} {
		got, err := ParseHastat(h.Text())
		if err != nil {
			t.Fatalf("ParseHastat(%q): %v", h.Text(), err)
		}
		if !reflect.DeepEqual(got, h) {
			t.Errorf("ParseHastat(%q) = %+v, want %+v", h.Text(), got, h)
		}
	}
}

func TestClstatRoundTrip(t *testing.T) {
	st := Status{Groups: []GroupStatus{{Group: "a", Level: "1", State: StateDone}, {Group: "web", Level: "long3", State: StateFailed}}}
	got, err := ParseClstat(st.Clstat())
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("ParseClstat(%q) = %+v, %v; want %+v", st.Clstat(), got, err, st)
	}
	if got, err := ParseClstat(""); err != nil || len(got.Groups) != 0 {
		t.Fatalf("ParseClstat of an empty file = %+v, %v", got, err)
	}
}

// Lines the writers never write are errors that name their line.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		text, want string
		clstat     bool
	}{
		{text: "web start DONE\n", want: "hastat line 1: \"web start DONE\" is neither"},
		{text: "web start DONE n1\nnode n1 alive 0.10 x\n", want: "hastat line 2:"},
		{text: "node n1 alive 0.10\nweb start DONE n1\n", want: "hastat line 2: group line \"web start DONE n1\" after the node lines"},
		{text: "node n1 alive many\n", want: "hastat line 1: load \"many\" of node n1 is not a number"},
		{text: "node n1 alive NaN\n", want: "hastat line 1: load \"NaN\""},
		{text: "node n1 alive 1e999\n", want: "hastat line 1: load \"1e999\""},
		{text: "\nweb start DONE n1\x1b[2J\n", want: "hastat line 2: unprintable field"},
		{text: "a 1 DONE\nb 2\n", want: "clstat line 2: \"b 2\" is not `GROUP LEVEL STATE`", clstat: true},
		{text: "a\x00 1 DONE\n", want: "clstat line 1: unprintable field", clstat: true},
	} {
		var err error
		if tc.clstat {
			_, err = ParseClstat(tc.text)
		} else {
			_, err = ParseHastat(tc.text)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parsing %q: %v, want an error with %q", tc.text, err, tc.want)
		}
	}
}

func TestHastatLookups(t *testing.T) {
	h, err := ParseHastat("web start DONE n2\ndb run - -\nnode n1 alive 0.10\nnode n2 dead 0.00\nnode n3 alive 0.00\n")
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := h.Group("web"); !ok || g.Node != "n2" || g.State != StateDone {
		t.Errorf("Group(web) = %+v, %v", g, ok)
	}
	if _, ok := h.Group("none"); ok {
		t.Error("Group(none) found")
	}
	if h.NodeState("n2") != NodeDead || h.NodeState("n9") != "" || h.Alive() != 2 {
		t.Errorf("NodeState(n2) %q, NodeState(n9) %q, Alive %d", h.NodeState("n2"), h.NodeState("n9"), h.Alive())
	}
}

// Whatever ParseHastat accepts, Text writes in a form it reads back the
// same: the two agree on the format, whatever the input.
func FuzzParseHastat(f *testing.F) {
	f.Add("web start DONE n2\ndb run - -\nnode n1 alive 0.50\nnode n2 dead 0.00\n")
	f.Add("node start DONE n1\nnode node alive 1e3\n")
	f.Add("a 1 DONE\n")
	f.Fuzz(func(t *testing.T, text string) {
		if st, err := ParseClstat(text); err == nil {
			again, err := ParseClstat(st.Clstat())
			if err != nil || again.Clstat() != st.Clstat() {
				t.Fatalf("clstat %q: read back as %q, %v", st.Clstat(), again.Clstat(), err)
			}
		}
		h, err := ParseHastat(text)
		if err != nil {
			return
		}
		written := h.Text()
		again, err := ParseHastat(written)
		if err != nil {
			t.Fatalf("ParseHastat(Text()) of %q: %v", written, err)
		}
		if again.Text() != written {
			t.Fatalf("hastat %q read back and written as %q", written, again.Text())
		}
	})
}
