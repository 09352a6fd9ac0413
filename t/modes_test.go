package t

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// A wait entry holds back the entries after it; while it runs (and is not
// the last) the group is STARTING.
func TestWaitBlocksNextEntry(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:w1:1:wait:echo w1-start >> {dir}/order; `+gate("{dir}/gate")+`; echo w1-end >> {dir}/order
G:n:1:once:echo n > {dir}/n
G:w2:1:wait:echo w2 >> {dir}/order
`)
	d.tell("G", "1")
	waitLines(t, d.path("order"), 1)
	d.waitState("G", "1", "STARTING")
	settle()
	if got := lines(d.path("order")); strings.Join(got, " ") != "w1-start" {
		t.Fatalf("while w1 waits, order is %q; want only w1-start", got)
	}
	if exists(d.path("n")) {
		t.Fatal("the once entry after a running wait has started")
	}
	if g, _ := d.status().group("G"); g.State != "STARTING" {
		t.Fatalf("while the first wait runs the group is %s, want STARTING", g.State)
	}

	writeFile(t, d.path("gate"), "")
	d.waitState("G", "1", "DONE")
	if got := lines(d.path("order")); strings.Join(got, " ") != "w1-start w1-end w2" {
		t.Fatalf("order %q, want w1-start w1-end w2", got)
	}
	waitLines(t, d.path("n"), 1)
}

// A failing wait marks the group FAILED and nothing after it starts, not
// even on another tell of the same level.
func TestWaitFailureStopsGroup(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:ok:1:once:echo ok > {dir}/ok
G:bad:1:wait:echo run >> {dir}/bad; exit 3
G:after:1:once:echo after > {dir}/after
G:after2:1:respawn:echo after2 > {dir}/after2; exec sleep 1000
G:after3:1:wait:echo after3 > {dir}/after3
`)
	d.tell("G", "1")
	d.waitState("G", "1", "FAILED")
	st := d.status()
	g, _ := st.group("G")
	if g.State != "FAILED" {
		t.Fatalf("status says %s, clstat FAILED", g.State)
	}
	if e, _ := g.entry("bad"); e.Exit == nil || *e.Exit != 3 {
		t.Fatalf("bad: %v, want exit 3", e)
	}
	for _, tag := range []string{"after", "after2", "after3"} {
		if e, _ := g.entry(tag); e.ran() {
			t.Fatalf("%s ran after a failed wait: %v", tag, e)
		}
	}
	waitLines(t, d.path("ok"), 1)

	d.tell("G", "1")
	if g, _ := d.status().group("G"); g.State != "FAILED" {
		t.Fatalf("after telling the same level again the group is %s, want FAILED", g.State)
	}
	settle()
	for _, f := range []string{"after", "after2", "after3"} {
		if exists(d.path(f)) {
			t.Fatalf("%s ran after a failed wait", f)
		}
	}
	if n := len(lines(d.path("bad"))); n != 1 {
		t.Fatalf("the failed wait ran %d times, want 1", n)
	}
}

// A once entry runs once and is not restarted when it exits, whether by
// itself or killed.
func TestOnceNotRestarted(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:quick:1:once:echo run >> {dir}/quick
G:long:1:once:echo run >> {dir}/long; echo $$ > {dir}/long.pid; exec sleep 1000
`)
	d.tellDone("G", "1")
	pid := readPid(t, d.path("long.pid"), 0)
	if e := d.entry("G", "long"); e.Pid != pid {
		t.Fatalf("long: %v, want pid %d", e, pid)
	}
	eventually(t, hang, func() bool { e := d.entry("G", "quick"); return e.Exit != nil && *e.Exit == 0 }, "quick to exit 0")

	syscall.Kill(pid, syscall.SIGKILL)
	// The daemon decides whether to restart when it handles the exit, so
	// once the status shows the exit, a restart would show too.
	var e jEntry
	eventually(t, hang, func() bool { e = d.entry("G", "long"); return e.Exit != nil }, "long's exit in the status")
	if e.Pid != 0 || *e.Exit != -1 {
		t.Fatalf("long after kill -9: %v, want no pid and exit -1", e)
	}
	settle()
	if n, m := len(lines(d.path("quick"))), len(lines(d.path("long"))); n != 1 || m != 1 {
		t.Fatalf("runs: quick %d, long %d; want 1 each", n, m)
	}
	if e := d.entry("G", "long"); e.Pid != 0 || e.Restarts != 0 {
		t.Fatalf("long restarted: %v", e)
	}
}

// A respawn entry is started again when it dies: a new pid, and the
// restarts count goes up.
func TestRespawnRestartsAfterKill(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:r:1:respawn:echo $$ >> {dir}/r.pids; exec sleep 1000
`)
	d.tellDone("G", "1")
	pid := readPid(t, d.path("r.pids"), 0)
	if e := d.entry("G", "r"); e.Pid != pid || e.Restarts != 0 {
		t.Fatalf("r: %v, want pid %d, 0 restarts", e, pid)
	}
	for i := 1; i <= 2; i++ {
		syscall.Kill(pid, syscall.SIGKILL)
		next := readPid(t, d.path("r.pids"), pid)
		if !alive(next) {
			t.Fatalf("restart %d: pid %d not alive", i, next)
		}
		var e jEntry
		eventually(t, hang, func() bool { e = d.entry("G", "r"); return e.Pid == next }, "status to show pid %d", next)
		if e.Restarts != i {
			t.Fatalf("after %d kills: %v, want %d restarts", i, e, i)
		}
		pid = next
	}
	if n := len(lines(d.path("r.pids"))); n != 3 {
		t.Fatalf("%d starts, want 3", n)
	}
}

// A level of test entries only that all pass is PASSED; a level with a
// test and something else is DONE.
func TestTestModePassed(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:t1:1:test:true
G:t2:12:test:echo run >> {dir}/t2
G:o:2:once:echo run >> {dir}/o
`)
	d.tell("G", "1")
	d.waitState("G", "1", "PASSED")
	if n := len(lines(d.path("t2"))); n != 1 {
		t.Fatalf("t2 ran %d times by PASSED, want 1", n)
	}
	d.tellDone("G", "2")
	if n := len(lines(d.path("t2"))); n != 2 {
		t.Fatalf("t2 ran %d times, want 2", n)
	}
}

// A failing test marks the group FAILED and nothing after it starts.
func TestTestModeFailed(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:t1:1:test:true
G:t2:1:test:echo run >> {dir}/t2; exit 1
G:after:1:once:echo after > {dir}/after
G:t3:1:test:echo t3 > {dir}/t3
`)
	d.tell("G", "1")
	d.waitState("G", "1", "FAILED")
	g, _ := d.status().group("G")
	if e, _ := g.entry("t2"); e.Exit == nil || *e.Exit != 1 {
		t.Fatalf("t2: %v, want exit 1", e)
	}
	for _, tag := range []string{"after", "t3"} {
		if e, _ := g.entry(tag); e.ran() {
			t.Fatalf("%s ran after a failed test: %v", tag, e)
		}
	}
	settle()
	if exists(d.path("after")) || exists(d.path("t3")) {
		t.Fatal("an entry after a failed test ran")
	}
}

// An off entry never runs, at any of its levels.
func TestOffNeverRuns(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:on:12:wait:echo on >> {dir}/on
G:off:12:off:echo off >> {dir}/off
G:bare:1:off:
`)
	for _, l := range []string{"1", "2", "12"} {
		d.tell("G", l)
		d.waitState("G", l, "DONE")
		g, _ := d.status().group("G")
		for _, tag := range []string{"off", "bare"} {
			if e, _ := g.entry(tag); e.ran() {
				t.Fatalf("level %s: off entry %s ran: %v", l, tag, e)
			}
		}
	}
	if n := len(lines(d.path("on"))); n != 3 {
		t.Fatalf("the wait beside the off entries ran %d times, want 3", n)
	}
	settle()
	if exists(d.path("off")) {
		t.Fatal("an off entry ran")
	}
}

// CHECKING is the state while the last wait or test of the level runs.
func TestCheckingState(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:bg:1:respawn:exec sleep 1000
G:w:1:wait:echo > {dir}/w.started; `+gate("{dir}/gate1")+`
G:t:2:test:echo > {dir}/t.started; `+gate("{dir}/gate2")+`
`)
	d.tell("G", "1")
	waitLines(t, d.path("w.started"), 1)
	d.waitState("G", "1", "CHECKING")
	settle()
	if s := d.clstatLines()["G"]; s != "1 CHECKING" {
		t.Fatalf("while the last wait runs: %q, want 1 CHECKING", s)
	}
	writeFile(t, d.path("gate1"), "")
	d.waitState("G", "1", "DONE")

	d.tell("G", "2")
	waitLines(t, d.path("t.started"), 1)
	d.waitState("G", "2", "CHECKING")
	writeFile(t, d.path("gate2"), "")
	d.waitState("G", "2", "PASSED")
}

// A tell that comes while a wait blocks the group supersedes it: the wait
// is stopped and the new level is reached.
func TestTellSupersedesWait(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
:::stoptimeout:5
G:w:1:wait:echo $$ > {dir}/w.pid; `+gate("{dir}/never")+`
G:after:1:once:echo > {dir}/after
G:two:2:wait:echo > {dir}/two
`)
	d.tell("G", "1")
	pid := readPid(t, d.path("w.pid"), 0)
	d.waitState("G", "1", "STARTING")
	d.tellDone("G", "2")
	if alive(pid) {
		t.Fatalf("the superseded wait %d still runs", pid)
	}
	if !exists(d.path("two")) {
		t.Fatal("level 2's wait did not run")
	}
	if exists(d.path("after")) {
		t.Fatal("level 1's entry after the superseded wait ran")
	}
}

// Back to a level while one of its wait entries is still being stopped
// (it was sent SIGTERM on the way to another level): the daemon's own
// SIGTERM is not the wait's result; the wait runs again once it has
// stopped, and the group does not fail.
func TestWaitStoppingWhenLevelComesBack(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"wait", "test"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			// On SIGTERM the entry takes its time (until the "release" file)
			// and exits 143, as a shell killed by SIGTERM does.
			d := startDaemon(t, `
:::stoptimeout:60
G:w:1:`+mode+`:trap '`+gate("{dir}/release")+`; exit 143' TERM; echo $$ >> {dir}/w; `+gate("{dir}/gate")+`
G:after:1:once:echo run >> {dir}/after
`)
			d.tell("G", "1")
			pid := readPid(t, d.path("w"), 0)
			d.waitState("G", "1", "STARTING")
			d.tell("G", "2")
			d.waitState("G", "2", "STOPPING")
			d.tell("G", "1")
			writeFile(t, d.path("gate"), "")
			writeFile(t, d.path("release"), "")
			waitGone(t, "the stopped entry", pid)
			var g jGroup
			eventually(t, hang, func() bool {
				g, _ = d.status().group("G")
				return g.State == "DONE" || g.State == "FAILED"
			}, "the group to settle at level 1")
			e, _ := g.entry("w")
			if g.State != "DONE" {
				t.Fatalf("back at level 1 the group is %s %s (w: %v); want DONE: the %s entry was killed by the daemon's own stop, which is not its result", g.Level, g.State, e, mode)
			}
			if n := len(lines(d.path("w"))); n != 2 {
				t.Fatalf("w ran %d times, want 2 (again after its stop)", n)
			}
			waitLines(t, d.path("after"), 1)
		})
	}
}

// Tags are any characters but ':', ',' and whitespace, so ".", ".." and
// "a/b" are tags like any other: their entries run, later entries too, and
// nothing of the daemon's lands outside its state directory because of
// them (the state directory is {dir}/state, so "../../x" under it would be
// {dir}/x).
func TestPathLikeTags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, cltab string
		outside     string // a file the daemon must not make in {dir}
	}{
		{"dot", `
G:.:1:wait:echo run >> {dir}/m1
G:w:1:wait:echo run >> {dir}/m2
`, ""},
		{"dotdot", `
G:..:1:wait:echo run >> {dir}/m1
G:w:1:wait:echo run >> {dir}/m2
`, ""},
		{"up-wait", `
G:../../escw:1:wait:echo run >> {dir}/m1
G:w:1:wait:echo run >> {dir}/m2
`, "escw"},
		{"up-respawn", `
G:../../esc:1:respawn:echo run >> {dir}/m1; exec sleep 1000
G:w:1:wait:echo run >> {dir}/m2
`, "esc.1"},
		{"slash", `
G:a/b:1:respawn:echo run >> {dir}/m1; exec sleep 1000
G:c/d:1:wait:echo run >> {dir}/m2
`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t, c.cltab)
			d.tell("G", "1")
			var g jGroup
			eventually(t, hang, func() bool {
				g, _ = d.status().group("G")
				return g.State == "DONE" || g.State == "FAILED"
			}, "the group to settle")
			if g.State != "DONE" {
				t.Fatalf("group %s: %v", g.State, g.Entries)
			}
			waitLines(t, d.path("m1"), 1)
			waitLines(t, d.path("m2"), 1)
			if c.outside != "" {
				if _, err := os.Lstat(d.path(c.outside)); err == nil {
					t.Fatalf("the daemon made %s, outside its state directory", d.path(c.outside))
				}
			}
		})
	}
}
