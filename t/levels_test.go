package t

import (
	"strings"
	"testing"
)

// Moving 1 -> 2 -> 1: what is not in the new level stops, what is in both
// keeps its process, once and wait entries run again on coming back.
func TestLevelSwitchBothWays(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
:::stoptimeout:5
G:both:12:respawn:echo $$ > {dir}/both.pid; exec sleep 1000
G:one:1:respawn:echo $$ > {dir}/one.pid; exec sleep 1000
G:two:2:respawn:echo $$ > {dir}/two.pid; exec sleep 1000
G:o1:1:once:echo run >> {dir}/o1
G:w1:1:wait:echo run >> {dir}/w1
G:o2:2:once:echo run >> {dir}/o2
`)
	d.tellDone("G", "1")
	both := readPid(t, d.path("both.pid"), 0)
	one := readPid(t, d.path("one.pid"), 0)
	waitLines(t, d.path("o1"), 1)
	if exists(d.path("two.pid")) || exists(d.path("o2")) {
		t.Fatal("a level 2 entry ran at level 1")
	}

	d.tellDone("G", "2")
	if alive(one) {
		t.Fatalf("level 1 only entry %d still runs at level 2", one)
	}
	two := readPid(t, d.path("two.pid"), 0)
	waitLines(t, d.path("o2"), 1)
	if e := d.entry("G", "both"); e.Pid != both || !alive(both) {
		t.Fatalf("entry of both levels: %v, want the same pid %d", e, both)
	}
	if e := d.entry("G", "one"); e.Pid != 0 {
		t.Fatalf("one at level 2: %v, want no pid", e)
	}

	d.tellDone("G", "1")
	if alive(two) {
		t.Fatalf("level 2 only entry %d still runs at level 1", two)
	}
	one2 := readPid(t, d.path("one.pid"), one)
	if !alive(one2) {
		t.Fatalf("one's new process %d is not alive", one2)
	}
	if e := d.entry("G", "both"); e.Pid != both || !alive(both) {
		t.Fatalf("entry of both levels: %v, want the same pid %d", e, both)
	}
	if n := len(lines(d.path("w1"))); n != 2 {
		t.Fatalf("wait ran %d times by DONE, want 2 (once per entry into level 1)", n)
	}
	waitLines(t, d.path("o1"), 2)
	settle()
	if n, m := len(lines(d.path("o1"))), len(lines(d.path("o2"))); n != 2 || m != 1 {
		t.Fatalf("once runs: o1 %d (want 2), o2 %d (want 1)", n, m)
	}
}

// Telling the level the group is at again re-runs nothing and restarts
// nothing.
func TestSameLevelTell(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:o:1:once:echo run >> {dir}/o
G:ol:1:once:echo $$ >> {dir}/ol; exec sleep 1000
G:r:1:respawn:echo $$ >> {dir}/r; exec sleep 1000
G:w:1:wait:echo run >> {dir}/w
G:t:1:test:echo run >> {dir}/t
`)
	d.tellDone("G", "1")
	r := readPid(t, d.path("r"), 0)
	ol := readPid(t, d.path("ol"), 0)
	waitLines(t, d.path("o"), 1)
	for i := 0; i < 3; i++ {
		d.tell("G", "1")
		// The status is answered by the engine after the tell: a re-run
		// wait or test would show as CHECKING, a restart as a new pid.
		g, _ := d.status().group("G")
		if g.State != "DONE" {
			t.Fatalf("after a same-level tell the group is %s, want DONE", g.State)
		}
		if e, _ := g.entry("r"); e.Pid != r || e.Restarts != 0 {
			t.Fatalf("respawn after a same-level tell: %v, want pid %d", e, r)
		}
		if e, _ := g.entry("ol"); e.Pid != ol {
			t.Fatalf("running once after a same-level tell: %v, want pid %d", e, ol)
		}
	}
	settle()
	for _, f := range []string{"o", "ol", "r", "w", "t"} {
		if n := len(lines(d.path(f))); n != 1 {
			t.Fatalf("%s ran %d times, want 1", f, n)
		}
	}
}

// Level names: `long3,` is the one level long3, `a,b` is a and b, `12` is
// 1 and 2 (and the whole field 12), and 0 is an ordinary level.
func TestLevelNames(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:long:long3,:wait:echo run >> {dir}/long
G:ab:a,b:wait:echo run >> {dir}/ab
G:onetwo:12:wait:echo run >> {dir}/12
G:zero:0:wait:echo run >> {dir}/0
`)
	want := map[string]int{}
	for _, step := range []struct {
		level string
		runs  string // the marker file that gets a run, "" for none
	}{
		{"long3", "long"},
		{"l", ""},
		{"3", ""},
		{"long", ""},
		{"a", "ab"},
		{"b", "ab"},
		{"1", "12"},
		{"2", "12"},
		{"12", "12"},
		{"0", "0"},
		{"0", ""}, // the same level again: not again
		{"5", ""},
	} {
		d.tell("G", step.level)
		d.waitState("G", step.level, "DONE")
		if step.runs != "" {
			want[step.runs]++
		}
		// wait entries: DONE means every run has written its marker.
		for _, f := range []string{"long", "ab", "12", "0"} {
			if n := len(lines(d.path(f))); n != want[f] {
				t.Fatalf("after level %q: %s ran %d times, want %d", step.level, f, n, want[f])
			}
		}
	}
}

// `clinit G 99` (a level with no entries) stops everything of G and ends
// DONE.
func TestLevelWithoutEntriesStopsAll(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:r:1:respawn:echo $$ > {dir}/r; exec sleep 1000
G:o:1:once:echo $$ > {dir}/o; exec sleep 1000
G:w:1:wait:true
H:h:1:respawn:echo $$ > {dir}/h; exec sleep 1000
`)
	d.tell("H", "1")
	d.tellDone("G", "1")
	r, o, h := readPid(t, d.path("r"), 0), readPid(t, d.path("o"), 0), readPid(t, d.path("h"), 0)
	d.tellDone("G", "99")
	for _, p := range []int{r, o} {
		if alive(p) {
			t.Fatalf("pid %d of G still runs at level 99", p)
		}
	}
	g, _ := d.status().group("G")
	for _, e := range g.Entries {
		if e.Pid != 0 {
			t.Fatalf("at level 99: %v still has a pid", e)
		}
	}
	if !alive(h) {
		t.Fatal("another group's process died")
	}
	if s := d.clstatLines(); s["H"] != "1 DONE" || s["G"] != "99 DONE" {
		t.Fatalf("clstat %v", s)
	}
}

// Two groups told together run their long waits at the same time: a wait
// in one never delays another group.
func TestGroupsRunConcurrently(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
A:aw:1:wait:echo > {dir}/a.started; `+gate("{dir}/gate")+`; echo > {dir}/a.done
A:an:1:once:echo > {dir}/a.next
B:bw:1:wait:echo > {dir}/b.started; `+gate("{dir}/gate")+`; echo > {dir}/b.done
B:bn:1:once:echo > {dir}/b.next
`)
	d.tell("A", "1")
	d.tell("B", "1")
	// Neither wait can end before the gate opens, so both running means
	// B's did not wait for A's.
	waitLines(t, d.path("a.started"), 1)
	waitLines(t, d.path("b.started"), 1)
	if exists(d.path("a.done")) || exists(d.path("b.done")) {
		t.Fatal("a wait ended before its gate opened")
	}
	d.waitState("A", "1", "STARTING")
	d.waitState("B", "1", "STARTING")
	writeFile(t, d.path("gate"), "")
	d.waitState("A", "1", "DONE")
	d.waitState("B", "1", "DONE")
	waitLines(t, d.path("a.next"), 1)
	waitLines(t, d.path("b.next"), 1)
}

// A tell with no group goes to the group named after the node.
func TestTellNodeGroup(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
n1:e:1:wait:echo run >> {dir}/e
`, "--node", "n1")
	out, errOut, code := d.clinit("1")
	if code != 0 || out != "n1: going to level 1\n" {
		t.Fatalf("clinit 1: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	d.waitState("n1", "1", "DONE")
	out, _, code = d.clinit("-v", "1")
	if code != 0 || out != "n1: going to level 1\nn1 1 DONE\n" {
		t.Fatalf("clinit -v 1: status %d, stdout %q", code, out)
	}
}

// A wait entry of both levels still running when the group moves from one
// to the other is not stopped or run again: its result counts for the new
// level.
func TestWaitSpanningLevels(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:w:12:wait:echo $$ >> {dir}/w; `+gate("{dir}/gate")+`
G:two:2:once:echo > {dir}/two
`)
	d.tell("G", "1")
	pid := readPid(t, d.path("w"), 0)
	d.waitState("G", "1", "CHECKING")
	d.tell("G", "2")
	d.waitState("G", "2", "STARTING")
	settle()
	if !alive(pid) || exists(d.path("two")) {
		t.Fatalf("moving between two levels of a running wait: wait alive %v, next entry ran %v", alive(pid), exists(d.path("two")))
	}
	writeFile(t, d.path("gate"), "")
	d.waitState("G", "2", "DONE")
	waitLines(t, d.path("two"), 1)
	if n := len(lines(d.path("w"))); n != 1 {
		t.Fatalf("the wait ran %d times, want 1", n)
	}
}

// A once entry of both levels still running when the group moves from one
// to the other has run at the new level: when it exits it is not started
// again (SPEC 3.4, as for wait).
func TestOnceSpanningLevels(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:o:12:once:echo start >> {dir}/out; `+gate("{dir}/gate")+`; echo end >> {dir}/out
`)
	d.tell("G", "1")
	waitLines(t, d.path("out"), 1)
	d.tellDone("G", "2")
	writeFile(t, d.path("gate"), "")
	// A wrong daemon starts the entry again in the same step that handles
	// its exit, so an entry seen exited means no second run was started.
	eventually(t, hang, func() bool { e := d.entry("G", "o"); return e.Pid == 0 && e.Exit != nil }, "o to exit")
	if got := strings.Join(lines(d.path("out")), " "); got != "start end" {
		t.Fatalf("out is %q, want %q: the once entry ran again at level 2", got, "start end")
	}
}
