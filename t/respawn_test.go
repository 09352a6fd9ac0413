package t

import (
	"testing"
	"time"
)

// A respawn entry that exits at once is paused after limit+1 rapid starts,
// with a logged warning, shown as throttled, and starts again after the
// pause. (The window is wide so that "rapid" never depends on how fast a
// loaded machine is.)
func TestRespawnThrottle(t *testing.T) {
	t.Parallel()
	const limit = 3
	d := startDaemon(t, `
:::respawnlimit:3
:::respawnwindow:10s
:::respawnpause:2s
G:r:1:respawn:echo start >> {dir}/r; exit 1
G:steady:1:respawn:echo $$ >> {dir}/steady; exec sleep 1000
`)
	d.tell("G", "1")
	e, starts := throttledSnapshot(t, d, "G", "r")
	// A multiple of limit+1: a look that came very late may see a later
	// pause.
	if starts%(limit+1) != 0 {
		t.Fatalf("throttled after %d starts (%v); want limit+1 = %d", starts, e, limit+1)
	}
	if !d.logHas("r respawning too rapidly") {
		t.Fatal("no 'r respawning too rapidly' in the log")
	}
	if e.Pid != 0 {
		t.Fatalf("throttled entry has a pid: %v", e)
	}

	// While it rests, nothing starts. The pause began when the daemon
	// handled the last exit, which the status gives as since: until
	// since+pause, the restarts count must not move.
	time.Sleep(500 * time.Millisecond)
	asked := time.Now()
	n := len(lines(d.path("r")))
	e2 := d.entry("G", "r")
	if asked.Before(e.Since.Add(2 * time.Second)) {
		if !e2.Throttled || e2.Restarts != e.Restarts || n != starts {
			t.Fatalf("started during its pause: was %v after %d starts, now %v after %d", e, starts, e2, n)
		}
	}
	// A resting entry makes its group FAILED, until the pause ends.
	s := d.clstatLines()["G"]
	if read := time.Now(); s != "1 FAILED" && read.Before(e.Since.Add(2*time.Second)) {
		t.Fatalf("clstat %q while r rests, want 1 FAILED", s)
	}
	if n := len(lines(d.path("steady"))); n != 1 {
		t.Fatalf("the steady respawn beside started %d times, want 1", n)
	}

	// After the pause it starts again.
	eventually(t, hang, func() bool { return len(lines(d.path("r"))) > starts }, "r to start again after the pause")
}

// Moving to another level and back lifts a throttle at once.
func TestRespawnThrottleLiftedByLevelChange(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
:::respawnlimit:2
:::respawnwindow:10s
:::respawnpause:1h
G:r:1:respawn:echo start >> {dir}/r; exit 1
`)
	d.tell("G", "1")
	_, starts := throttledSnapshot(t, d, "G", "r")
	if starts != 3 {
		t.Fatalf("throttled after %d starts, want 3", starts)
	}
	d.tell("G", "2")
	d.waitState("G", "2", "DONE")
	if e := d.entry("G", "r"); e.Throttled {
		t.Fatalf("still throttled at a level without it: %v", e)
	}
	d.tell("G", "1")
	waitLines(t, d.path("r"), starts+1)
}

// throttledSnapshot waits until the entry is throttled and returns its
// status with the number of starts it had then (lines in the marker file
// named after the tag). The count is read before and after the status, and
// taken only when both agree: an entry's marker is written before it exits,
// and it is its exit that throttles it.
func throttledSnapshot(t *testing.T, d *daemon, group, tag string) (jEntry, int) {
	t.Helper()
	var e jEntry
	var starts int
	eventually(t, hang, func() bool {
		n1 := len(lines(d.path(tag)))
		e = d.entry(group, tag)
		starts = len(lines(d.path(tag)))
		return e.Throttled && n1 == starts
	}, "%s to be throttled", tag)
	if starts == 0 || e.Restarts != starts-1 || e.Pid != 0 {
		t.Fatalf("throttled %v after %d starts; want no pid and restarts = starts-1", e, starts)
	}
	return e, starts
}
