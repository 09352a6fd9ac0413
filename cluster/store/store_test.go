package store

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// history is a log as a cluster could commit it, with the refusals a
// race between proposers gives.
func history() []Command {
	return []Command{
		{Op: OpSetFile, Kind: KindCltab, Text: "web:ip:start:wait:true\n", Base: 0},
		{Op: OpSetFile, Kind: KindHactl, Text: "web start n1\n", Base: 0},
		// two edits from the same base: the second is refused
		{Op: OpSetFile, Kind: KindHactl, Text: "web start n2\n", Base: 2},
		{Op: OpSetFile, Kind: KindHactl, Text: "web stop\n", Base: 2},
		// the committed text again from an old base: no change, no refusal
		{Op: OpSetFile, Kind: KindHactl, Text: "web start n2\n", Base: 0},
		{Op: OpAssign, Group: "web", Node: "n1", Epoch: 0, Why: "preferred"},
		// a planner working from epoch 0 again: refused
		{Op: OpAssign, Group: "web", Node: "n2", Epoch: 0, Why: "stale"},
		{Op: OpFail, Group: "web", Node: "n1", Until: 1000, Why: "level start failed"},
		{Op: OpAssign, Group: "web", Node: "n2", Epoch: 1, Why: "n1 failed it"},
		{Op: OpRuleOut, Group: "db", Node: "n3", Until: 2000, Why: "test failed"},
		{Op: OpFenced, Node: "n1", At: 1500},
		{Op: OpClear, Group: "web", Node: "n1"},
		{Op: "bogus"},
	}
}

func TestApplyHistory(t *testing.T) {
	s := New()
	var errs []error
	for i, c := range history() {
		// through the wire form, as raft carries it
		d, err := Decode(c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		r := s.Apply(uint64(i+1), d)
		errs = append(errs, r.Err)
	}
	var stale *StaleError
	if !errors.As(errs[3], &stale) || stale.Base != 2 || stale.Current != 3 {
		t.Errorf("second edit from version 2: %v, want refused naming versions 2 and 3", errs[3])
	}
	var epoch *EpochError
	if !errors.As(errs[6], &epoch) || epoch.Current != 1 {
		t.Errorf("stale assignment: %v, want refused at epoch 1", errs[6])
	}
	if errs[12] == nil {
		t.Error("unknown op accepted")
	}
	for i, e := range errs {
		if e != nil && i != 3 && i != 6 && i != 12 {
			t.Errorf("command %d refused: %v", i+1, e)
		}
	}
	if got := s.Files[KindHactl].Text; got != "web start n2\n" || s.Files[KindHactl].Version != 3 {
		t.Errorf("hactl = %q at %d, want the first edit at version 3", got, s.Files[KindHactl].Version)
	}
	if a := s.Assign["web"]; a.Node != "n2" || a.Epoch != 2 || a.Version != 9 {
		t.Errorf("web assigned %+v, want n2 epoch 2 version 9", a)
	}
	if s.RuledOut("web", "n1", 500) || len(s.Fails["web"]) != 0 {
		t.Error("clear left web's failures on n1")
	}
	if !s.RuledOut("db", "n3", 1999) || s.RuledOut("db", "n3", 2000) {
		t.Error("db's rule-out on n3 does not end at 2000")
	}
	if got := s.Held("n2"); len(got) != 1 || got[0] != "web" {
		t.Errorf("Held(n2) = %v", got)
	}
	golden(t, "history.json", s)
}

// golden compares the snapshot of s with a file, and checks that the
// snapshot restores to the same state.
func golden(t *testing.T, name string, s *State) {
	t.Helper()
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("snapshot differs from %s (go test -update to rewrite):\n%s", path, b)
	}
	r, err := Unmarshal(want)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := r.Marshal()
	if !bytes.Equal(b2, want) {
		t.Errorf("restored snapshot re-encodes differently:\n%s", b2)
	}
}

func TestEmptySnapshot(t *testing.T) {
	golden(t, "empty.json", New())
	s, err := Unmarshal([]byte(`{"files":null}`))
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(1, Command{Op: OpAssign, Group: "g", Node: "n"}) // must not panic on nil maps
	if s.Assign["g"].Node != "n" {
		t.Error("assignment on a restored null state lost")
	}
	if _, err := Unmarshal([]byte("{")); err == nil {
		t.Error("truncated snapshot accepted")
	}
}

func TestCloneIsDeep(t *testing.T) {
	s := New()
	s.Apply(1, Command{Op: OpFail, Group: "g", Node: "n", Until: 5})
	c := s.Clone()
	s.Apply(2, Command{Op: OpFail, Group: "g", Node: "n", Until: 5})
	if c.Fails["g"]["n"] != 1 || s.Fails["g"]["n"] != 2 {
		t.Errorf("clone shares maps: clone %d, state %d", c.Fails["g"]["n"], s.Fails["g"]["n"])
	}
}

// A clone encodes as its original does: no part of the state is left
// out of the copy.
func TestCloneIsWhole(t *testing.T) {
	s := New()
	s.Apply(1, Command{Op: OpSetFile, Kind: KindHactl, Text: "g start\n"})
	s.Apply(2, Command{Op: OpAssign, Group: "g", Node: "n", Why: "placed"})
	s.Apply(3, Command{Op: OpFail, Group: "g", Node: "m", Until: 5, Why: "test failed"})
	s.Apply(4, Command{Op: OpFenced, Node: "m", At: 7})
	s.Apply(5, Command{Op: OpMove, Group: "g", Node: "n"})
	s.Apply(6, Command{Op: OpBan, Group: "g", Node: "m", At: 8})
	s.Apply(7, Command{Op: OpStandby, Node: "x", On: true})
	s.Apply(8, Command{Op: OpForget, Node: "y", At: 9})
	s.Apply(9, Command{Op: OpMaintenance, On: true})
	s.Apply(10, Command{Op: OpSettle, At: 11})
	want, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Clone().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("clone encodes as\n%s\nwant\n%s", got, want)
	}
	if len(s.Files) == 0 || len(s.Fences) == 0 || len(s.RuleOuts) == 0 || len(s.Bans) == 0 || len(s.Moves) == 0 ||
		len(s.Standby) == 0 || len(s.Forgotten) == 0 || !s.Maintenance || s.SettleFrom == 0 {
		t.Fatalf("the state to clone is missing parts: %s", want)
	}
}

func TestAssignSameNodeKeepsEpoch(t *testing.T) {
	s := New()
	s.Apply(1, Command{Op: OpAssign, Group: "g", Node: "n"})
	r := s.Apply(2, Command{Op: OpAssign, Group: "g", Node: "n", Epoch: 1})
	if r.Err != nil || s.Assign["g"].Epoch != 1 || r.Version != 1 {
		t.Errorf("re-assigning the same node: %+v, epoch %d", r, s.Assign["g"].Epoch)
	}
	s.Apply(3, Command{Op: OpAssign, Group: "g", Node: "n", Stop: true, Epoch: 1})
	if a := s.Assign["g"]; a.Node != "n" || !a.Stop || a.Epoch != 2 || len(s.Held("n")) != 0 {
		t.Errorf("asking n to stop: %+v, held %v", a, s.Held("n"))
	}
	s.Apply(4, Command{Op: OpAssign, Group: "g", Node: "", Epoch: 2})
	if a := s.Assign["g"]; a.Node != "" || a.Stop || a.Epoch != 3 {
		t.Errorf("released: %+v", a)
	}
	if r := s.Apply(5, Command{Op: OpAssign, Group: "g", Stop: true, Epoch: 3}); r.Err == nil {
		t.Error("a stop naming no node accepted")
	}
}

// Giving a group again to a node fenced since its assignment is a new
// assignment: a new epoch and version, after the fence. Kept as it was,
// the assignment would still read as fenced after it, and the planner
// would give the group elsewhere while the node ran it.
func TestAssignAfterFenceIsNew(t *testing.T) {
	s := New()
	s.Apply(1, Command{Op: OpAssign, Group: "g", Node: "n"})
	s.Apply(2, Command{Op: OpFenced, Node: "n", At: 1})
	r := s.Apply(3, Command{Op: OpAssign, Group: "g", Node: "n", Epoch: 1})
	a := s.Assign["g"]
	if r.Err != nil || a.Epoch != 2 || a.Version != 3 || r.Version != 3 {
		t.Fatalf("re-assigning a fenced node: %+v, %+v; want epoch 2, version 3", r, a)
	}
	// Once given afresh, the same assignment again changes nothing.
	if r := s.Apply(4, Command{Op: OpAssign, Group: "g", Node: "n", Epoch: 2}); r.Err != nil || s.Assign["g"].Version != 3 {
		t.Errorf("the same assignment after the fence's: %+v, %+v", r, s.Assign["g"])
	}
}

// Versions are raft indexes, not numbers a proposer chooses: a key
// holder's edit "based on" version 2^64-1 is refused as stale, and the
// next edits number on from the log (the overflow that made every later
// edit version 0 cannot happen).
func TestVersionsAreLogIndexes(t *testing.T) {
	s := New()
	s.Apply(1, Command{Op: OpSetFile, Kind: KindCltab, Text: "a\n"})
	if r := s.Apply(2, Command{Op: OpSetFile, Kind: KindCltab, Text: "evil\n", Base: 1<<64 - 1}); r.Err == nil {
		t.Fatal("an edit based on version 2^64-1 was accepted")
	}
	r := s.Apply(3, Command{Op: OpSetFile, Kind: KindCltab, Text: "b\n", Base: 1})
	if r.Err != nil || r.Version != 3 || s.Files[KindCltab].Version != 3 || s.Files[KindCltab].Text != "b\n" {
		t.Fatalf("next edit: %+v, file %+v", r, s.Files[KindCltab])
	}
}

// A batch applies its commands in order at one index; one that may not
// be batched is refused there and changes nothing.
func TestApplyBatch(t *testing.T) {
	s := New()
	res := s.ApplyBatch(7, Command{Op: OpBatch, Batch: []Command{
		{Op: OpAssign, Group: "g", Node: "n"},
		{Op: OpAssign, Group: "g", Node: "m", Epoch: 1},
		{Op: OpSetFile, Kind: KindHactl, Text: "g start\n"},
		{Op: OpAssign, Group: "g", Node: "x", Epoch: 1}, // stale: epoch 2 now
	}})
	if len(res) != 4 || res[0].Err != nil || res[1].Err != nil || res[2].Err == nil || res[3].Err == nil {
		t.Fatalf("results %+v", res)
	}
	if a := s.Assign["g"]; a.Node != "m" || a.Epoch != 2 || a.Version != 7 || s.Index != 7 || len(s.Files) != 0 {
		t.Errorf("after the batch: %+v, index %d, files %v", a, s.Index, s.Files)
	}
	if r := s.Apply(8, Command{Op: OpBatch}); r.Err == nil {
		t.Error("Apply took a batch")
	}
}

// What operators ask is kept until they clear it: a move and a ban of
// the same node exclude each other, a clear forgets a group's move and
// bans (or those of one node), standby and maintenance go on and off,
// and a forgotten node counts as fenced.
func TestOperatorCommands(t *testing.T) {
	s := New()
	apply := func(c Command) Result {
		t.Helper()
		return s.Apply(s.Index+1, c)
	}
	if r := apply(Command{Op: OpMove, Group: "web"}); r.Err == nil {
		t.Error("a move to no node accepted")
	}
	apply(Command{Op: OpMove, Group: "web", Node: "n1"})
	apply(Command{Op: OpBan, Group: "web", Node: "n1", Why: "disk"})
	if s.Moves["web"] != "" || !s.Banned("web", "n1") || s.Bans["web"]["n1"].Why != "disk" {
		t.Errorf("a ban of the node moved to: moves %v, bans %v", s.Moves, s.Bans)
	}
	if r := apply(Command{Op: OpMove, Group: "web", Node: "n1"}); r.Err == nil || !strings.Contains(r.Err.Error(), "banned") {
		t.Errorf("a move to a banned node: %v", r.Err)
	}
	apply(Command{Op: OpBan, Group: "web", Node: "n2"})
	apply(Command{Op: OpMove, Group: "web", Node: "n3"})
	apply(Command{Op: OpClearMoves, Group: "web", Node: "n1"})
	if s.Banned("web", "n1") || !s.Banned("web", "n2") || s.Moves["web"] != "n3" {
		t.Errorf("clear of n1: moves %v, bans %v", s.Moves, s.Bans)
	}
	apply(Command{Op: OpClearMoves, Group: "web"})
	if len(s.Bans) != 0 || len(s.Moves) != 0 {
		t.Errorf("clear of all: moves %v, bans %v", s.Moves, s.Bans)
	}
	apply(Command{Op: OpStandby, Node: "n2", On: true})
	apply(Command{Op: OpMaintenance, On: true})
	if !s.Standby["n2"] || !s.Maintenance {
		t.Errorf("standby %v, maintenance %v", s.Standby, s.Maintenance)
	}
	apply(Command{Op: OpStandby, Node: "n2"})
	apply(Command{Op: OpMaintenance})
	if s.Standby["n2"] || s.Maintenance {
		t.Errorf("back: standby %v, maintenance %v", s.Standby, s.Maintenance)
	}
	r := apply(Command{Op: OpForget, Node: "n4", At: 5})
	if f := s.Fences["n4"]; f.Version != r.Version || s.Forgotten["n4"] != 5 {
		t.Errorf("forgotten: fence %+v, forgotten %v", f, s.Forgotten)
	}
}

// The first settle start committed stays: a leader elected during the
// settle goes on from it, whatever its own clock proposes.
func TestSettleFromFirstStays(t *testing.T) {
	s := New()
	if r := s.Apply(1, Command{Op: OpSettle}); r.Err == nil || s.SettleFrom != 0 {
		t.Errorf("a settle without a time: %v, from %d", r.Err, s.SettleFrom)
	}
	if r := s.Apply(2, Command{Op: OpSettle, At: 1000}); r.Err != nil || s.SettleFrom != 1000 {
		t.Errorf("first settle: %v, from %d", r.Err, s.SettleFrom)
	}
	if r := s.Apply(3, Command{Op: OpSettle, At: 5000}); r.Err != nil || s.SettleFrom != 1000 {
		t.Errorf("second settle: %v, from %d, want 1000", r.Err, s.SettleFrom)
	}
	if !Batchable(Command{Op: OpSettle}) {
		t.Error("a settle may not go in a batch with the first assignments")
	}
}
