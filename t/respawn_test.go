package t

import (
	"testing"
	"time"
)

// A respawn entry that exits at once is paused after limit+1 rapid starts,
// with a logged warning, shown as throttled, and starts again after the
// pause.
func TestRespawnThrottle(t *testing.T) {
	t.Parallel()
	const limit = 3
	d := startDaemon(t, `
:::respawnlimit:3
:::respawnwindow:1s
:::respawnpause:2s
G:r:1:respawn:echo start >> {dir}/r; exit 1
G:steady:1:respawn:echo $$ >> {dir}/steady; exec sleep 1000
`)
	d.tell("G", "1")
	var e jEntry
	eventually(t, hang, func() bool { e = d.entry("G", "r"); return e.Throttled }, "r to be throttled")
	// The daemon throttles while it handles the exit that the marker
	// precedes, so at that moment every start so far has written its line.
	// (A multiple of limit+1: a check that came very late may see a later
	// pause.)
	starts := len(lines(d.path("r")))
	if starts == 0 || starts%(limit+1) != 0 || e.Restarts != starts-1 {
		t.Fatalf("throttled after %d starts (%v); want limit+1 = %d", starts, e, limit+1)
	}
	if !d.logHas("r respawning too rapidly") {
		t.Fatal("no 'r respawning too rapidly' in the log")
	}
	if e.Pid != 0 {
		t.Fatalf("throttled entry has a pid: %v", e)
	}

	// While it rests, nothing starts: same restarts count, same starts.
	time.Sleep(500 * time.Millisecond)
	e2 := d.entry("G", "r")
	if e2.Throttled && e2.Restarts == e.Restarts {
		if n := len(lines(d.path("r"))); n != starts {
			t.Fatalf("throttled entry started: %d starts, was %d", n, starts)
		}
	}
	if s := d.clstatLines()["G"]; s != "1 DONE" {
		t.Fatalf("clstat %q, want 1 DONE", s)
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
:::respawnwindow:1s
:::respawnpause:1h
G:r:1:respawn:echo start >> {dir}/r; exit 1
`)
	d.tell("G", "1")
	eventually(t, hang, func() bool { return d.entry("G", "r").Throttled }, "r to be throttled")
	starts := len(lines(d.path("r")))
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
