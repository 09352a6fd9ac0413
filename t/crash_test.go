package t

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Crash cases (SPEC 5, last point): the daemon is SIGKILLed at some moment
// and started again on the same state directory. No service may be lost,
// none may run twice, and supervision must go on.

// crash SIGKILLs the daemon alone (its children live on) and starts a new
// one on the same directory, flags and state. The first daemon's cleanup
// still checks, at the end of the case, that none of its children was
// left behind: they must have been adopted and stopped by the second.
func crash(t *testing.T, d *daemon, extraFlags ...string) *daemon {
	t.Helper()
	d.cmd.Process.Kill()
	<-d.done
	d2 := launch(t, d.dir, extraFlags...)
	d2.waitReady()
	return d2
}

func TestCrashIdle(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
g:svc:1:respawn:echo $$ >> {dir}/svc.starts; exec sleep 1000
g:one:1:once:echo $$ >> {dir}/one.starts; exec sleep 1000
g:prep:1:wait:echo $$ >> {dir}/prep.runs
`)
	d.tellDone("g", "1")
	svc := readPid(t, d.path("svc.starts"), 0)
	one := readPid(t, d.path("one.starts"), 0)

	d2 := crash(t, d)
	d2.waitState("g", "1", "DONE")
	settle()
	if n := len(lines(d.path("svc.starts"))); n != 1 {
		t.Errorf("respawn entry started %d times across the crash, want 1", n)
	}
	if n := len(lines(d.path("one.starts"))); n != 1 {
		t.Errorf("once entry started %d times across the crash, want 1", n)
	}
	if n := len(lines(d.path("prep.runs"))); n != 1 {
		t.Errorf("wait entry ran %d times across the crash, want 1", n)
	}
	for tag, pid := range map[string]int{"svc": svc, "one": one} {
		if got := d2.entry("g", tag).Pid; got != pid {
			t.Errorf("%s: new daemon reports pid %d, want the adopted %d", tag, got, pid)
		}
		if !alive(pid) {
			t.Errorf("%s: pid %d died across the crash", tag, pid)
		}
	}

	// Supervision goes on: the adopted respawn child dies, a new one runs.
	if err := killPid(svc); err != nil {
		t.Fatal(err)
	}
	again := readPid(t, d.path("svc.starts"), svc)
	if d2.entry("g", "svc").Pid != again && !poll(hang, func() bool { return d2.entry("g", "svc").Pid == again }) {
		t.Errorf("restarted respawn entry: daemon reports pid %d, want %d", d2.entry("g", "svc").Pid, again)
	}
}

func TestCrashDuringLongWait(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
g:before:1:respawn:echo $$ >> {dir}/before.starts; exec sleep 1000
g:mount:1:wait:echo $$ >> {dir}/mount.runs; `+gate("{dir}/go")+`; echo mounted
g:after:1:once:echo $$ >> {dir}/after.runs
`)
	d.tell("g", "1")
	waitLines(t, d.path("mount.runs"), 1)
	d.waitState("g", "1", "STARTING")

	d2 := crash(t, d)
	d2.waitState("g", "1", "STARTING")
	settle()
	if n := len(lines(d.path("mount.runs"))); n != 1 {
		t.Fatalf("the interrupted wait ran %d times, want 1 (adopted, not restarted)", n)
	}
	if exists(d.path("after.runs")) {
		t.Fatal("the entry after the wait started before the wait ended")
	}
	// The adopted wait ends (printing a line to a daemon that is not
	// the one that started it): the transition resumes.
	writeFile(t, d.path("go"), "")
	d2.waitState("g", "1", "DONE")
	waitLines(t, d.path("after.runs"), 1)
	if !poll(hang, func() bool { return d2.logHas("mounted", "mount") }) {
		t.Error("the adopted wait's output did not reach the new daemon's log")
	}
	if n := len(lines(d.path("before.starts"))); n != 1 {
		t.Errorf("respawn entry started %d times, want 1", n)
	}
}

func TestCrashDuringStopping(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
:::stoptimeout:3
g:stubborn:1:respawn:trap '' TERM; echo $$ >> {dir}/stubborn.pid; while :; do sleep 0.05; done
g:two:2:once:echo $$ >> {dir}/two.runs
`)
	d.tellDone("g", "1")
	pid := readPid(t, d.path("stubborn.pid"), 0)
	d.tell("g", "2")
	d.waitState("g", "2", "STOPPING")

	d2 := crash(t, d)
	// The new daemon takes the stop over: SIGTERM is ignored, so it
	// ends with SIGKILL after the grace, and only then does level 2 start.
	waitGone(t, "the stubborn child", pid)
	d2.waitState("g", "2", "DONE")
	waitLines(t, d.path("two.runs"), 1)
	settle()
	if n := len(lines(d.path("stubborn.pid"))); n != 1 {
		t.Errorf("the entry being stopped was started again (%d starts)", n)
	}
	if n := len(lines(d.path("two.runs"))); n != 1 {
		t.Errorf("level 2's once entry ran %d times, want 1", n)
	}
}

func TestCrashDuringRespawnBurst(t *testing.T) {
	t.Parallel()
	// Each run holds a lock directory while it lives: a second copy
	// running at the same time would find it taken and say so.
	lock := "{dir}/lock"
	d := startDaemon(t, `
:::respawnlimit:100000
g:burst:1:respawn:echo $$ >> {dir}/burst.starts; mkdir `+lock+` || echo $$ >> {dir}/dup; sleep 0.05; rmdir `+lock+`
`)
	d.tell("g", "1")
	waitLines(t, d.path("burst.starts"), 20)

	d2 := crash(t, d)
	before := len(lines(d.path("burst.starts")))
	waitLines(t, d.path("burst.starts"), before+20)
	d2.tellDone("g", "99")
	stopped := len(lines(d.path("burst.starts")))
	settle()
	if n := len(lines(d.path("burst.starts"))); n != stopped {
		t.Errorf("the entry kept starting after its group stopped (%d -> %d)", stopped, n)
	}
	if exists(d.path("dup")) {
		t.Errorf("two copies of the respawn entry ran at once: %q", lines(d.path("dup")))
	}
}

func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// A daemon records a start right after its fork; one killed in between
// leaves a child that no record names. These cases make that state by
// hand (the daemon killed, the record of a run that still lives taken
// out) and start a new daemon on it: it finds the run by its environment
// and adopts it, rather than start a second copy beside it.
func TestCrashBeforeRecord(t *testing.T) {
	t.Parallel()
	d, pid := killedWithRun(t)
	forgetRuns(t, d, "svc")

	d2 := launch(t, d.dir)
	d2.waitReady()
	d2.waitState("g", "1", "DONE")
	settle()
	if n := len(lines(d.path("svc.starts"))); n != 1 {
		t.Errorf("respawn entry started %d times across the crash, want 1", n)
	}
	if got := d2.entry("g", "svc").Pid; got != pid || !alive(pid) {
		t.Errorf("new daemon reports pid %d (alive %v), want the unrecorded %d adopted", got, alive(pid), pid)
	}
	if !strings.Contains(d2.log.String(), "adopted a run its predecessor did not record") {
		t.Errorf("the adoption is not logged:\n%s", d2.log.String())
	}
	// Supervised as its own: killed, it is started again.
	if err := killPid(pid); err != nil {
		t.Fatal(err)
	}
	waitLines(t, d.path("svc.starts"), 2)
}

// Killed before its first record of all, a daemon leaves no state: the
// tell that started the run was not recorded either, so the group is not
// told, and the run found is stopped rather than left unwatched.
func TestCrashBeforeFirstRecord(t *testing.T) {
	t.Parallel()
	d, pid := killedWithRun(t)
	for _, f := range append(journals(d), filepath.Join(d.path("state"), "state.json")) {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}

	d2 := launch(t, d.dir)
	d2.waitReady()
	waitGone(t, "the unrecorded run", pid)
	settle()
	if n := len(lines(d.path("svc.starts"))); n != 1 {
		t.Errorf("respawn entry started %d times, want 1", n)
	}
}

// killedWithRun starts a daemon, tells its respawn entry svc up, and
// SIGKILLs the daemon alone: svc (pid) lives on.
func killedWithRun(t *testing.T) (d *daemon, pid int) {
	t.Helper()
	d = startDaemon(t, `
g:svc:1:respawn:echo $$ >> {dir}/svc.starts; exec sleep 1000
`)
	d.tellDone("g", "1")
	pid = readPid(t, d.path("svc.starts"), 0)
	d.cmd.Process.Kill()
	<-d.done
	return d, pid
}

// forgetRuns takes every record of entry tag out of a stopped daemon's
// state, as if its runs had started without being recorded.
func forgetRuns(t *testing.T, d *daemon, tag string) {
	t.Helper()
	found := false
	for _, j := range journals(d) {
		text, _ := os.ReadFile(j)
		found = found || strings.Contains(string(text), `"tag":"`+tag+`"`)
		os.Remove(j)
	}
	path := filepath.Join(d.path("state"), "state.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	groups, _ := st["groups"].([]any)
	for _, g := range groups {
		g := g.(map[string]any)
		procs, _ := g["procs"].([]any)
		kept := []any{}
		for _, p := range procs {
			if p.(map[string]any)["tag"] == tag {
				found = true
				continue
			}
			kept = append(kept, p)
		}
		g["procs"] = kept
	}
	if !found {
		t.Fatalf("%s: no record of %s to take out:\n%s", path, tag, data)
	}
	if data, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// journals are a daemon's journal files: beside its output FIFOs, and
// any an older daemon left in its state directory.
func journals(d *daemon) []string {
	run, _ := filepath.Glob(d.sock + ".out/journal.*")
	old, _ := filepath.Glob(filepath.Join(d.path("state"), "journal*"))
	return append(run, old...)
}

// A process that left its run's process group (a group of its own, its
// parent gone) is not taken for an unrecorded run: its entry's recorded
// run is adopted, and it is left alone, as before the crash.
func TestCrashLeavesEscapedGroupAlone(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
g:svc:1:respawn:echo $$ >> {dir}/svc.starts; (perl -e 'setpgrp(0,0); open(F, ">>", "{dir}/escaped.pid"); print F "$$\n"; close F; exec "/bin/sleep", "1000"' &); exec sleep 1000
`)
	d.tellDone("g", "1")
	svc := readPid(t, d.path("svc.starts"), 0)
	escaped := readPid(t, d.path("escaped.pid"), 0)
	d2 := crash(t, d)
	d2.waitState("g", "1", "DONE")
	settle()
	if got := d2.entry("g", "svc").Pid; got != svc {
		t.Errorf("new daemon reports pid %d, want the recorded %d adopted", got, svc)
	}
	if !alive(escaped) {
		t.Errorf("the process that left its run's group (pid %d) was stopped by the restore", escaped)
	}
	if strings.Contains(d2.log.String(), "did not record") {
		t.Errorf("a process that left its group was taken for an unrecorded run:\n%s", d2.log.String())
	}
	syscall.Kill(escaped, syscall.SIGKILL)
}
