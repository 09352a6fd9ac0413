package t

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Respawn entries whose program daemonizes: it forks into the background
// and its leader exits. While the process group it leaves has members the
// entry is running and is not started again; once the group is empty it
// is. A program that leaves its process group (setsid) cannot be
// supervised: the respawn throttle ends the loop and the log says why.

// bgCltab has bg, which leaves a sleep in its process group and exits, under
// a wide window and a low limit: a hot loop would be throttled and would
// show as starts in the marker files.
const bgCltab = `
:::respawnlimit:3
:::respawnwindow:10s
:::respawnpause:1h
g:bg:1:respawn:echo $$ >> {dir}/bg.starts; sleep 1000 & echo $! >> {dir}/bg.kids; exit 0
`

func TestDaemonizingRespawn(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, bgCltab+`:::stoptimeout:5
g:dbl:1:respawn:echo $$ >> {dir}/dbl.starts; ( ( exec sleep 1000 ) & echo $! >> {dir}/dbl.kids ) & exit 0
g:fg:1:respawn:echo $$ >> {dir}/fg.starts; exec sleep 1000
`)
	d.tellDone("g", "1")
	bg := readPid(t, d.path("bg.kids"), 0)
	dbl := readPid(t, d.path("dbl.kids"), 0)
	for tag, pid := range map[string]int{"bg": bg, "dbl": dbl} {
		if !poll(hang, func() bool {
			return d.logHas(tag+" exited but left processes running in its process group", `"tag": "`+tag+`"`)
		}) {
			t.Errorf("%s: no warning that it left processes in its process group", tag)
		}
		if !alive(pid) {
			t.Fatalf("%s: its background process %d is not running", tag, pid)
		}
	}
	// Long enough for a hot loop to show: each run exits at once.
	settle()
	settle()
	for _, tag := range []string{"bg", "dbl", "fg"} {
		if n := len(lines(d.path(tag + ".starts"))); n != 1 {
			t.Errorf("%s started %d times while what it left runs, want 1", tag, n)
		}
		if e := d.entry("g", tag); e.Throttled {
			t.Errorf("%s throttled: %v", tag, e)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Once the process group is empty, the entry starts again.
	if err := syscall.Kill(bg, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLines(t, d.path("bg.starts"), 2)
	bg2 := readPid(t, d.path("bg.kids"), bg)
	if !poll(hang, func() bool { return d.logHas("process group ended", `"tag": "bg"`) }) {
		t.Error("no 'process group ended' for bg")
	}
	if n := len(lines(d.path("dbl.starts"))); n != 1 {
		t.Errorf("dbl started %d times, want 1: only bg's group emptied", n)
	}

	// A stop reaches what runs in the background: SIGTERM to the process
	// group. The level is only reached once they are gone.
	d.tellDone("g", "2")
	for tag, pid := range map[string]int{"bg": bg2, "dbl": dbl} {
		if alive(pid) {
			t.Errorf("%s: background process %d still runs at a level without the entry", tag, pid)
		}
	}
	settle()
	if n := len(lines(d.path("bg.starts"))); n != 2 {
		t.Errorf("bg started %d times, want 2", n)
	}

	// And -k stops them too (cleanup checks that nothing is left).
	d.tellDone("g", "1")
	waitLines(t, d.path("bg.kids"), 3)
	waitLines(t, d.path("dbl.kids"), 2)
	if _, errOut, code := d.clinit("-k"); code != 0 {
		t.Fatalf("clinit -k: status %d: %s", code, errOut)
	}
	if c := d.waitExit(); c != 0 {
		t.Fatalf("daemon exited %d after -k", c)
	}
	bg3 := readPid(t, d.path("bg.kids"), bg2)
	dbl2 := readPid(t, d.path("dbl.kids"), dbl)
	waitGone(t, "background processes after -k", bg3, dbl2)
}

// A daemon killed while a daemonized entry lingers does not start it a
// second time, and the next daemon notices when its group empties, though
// it is neither the parent nor the subreaper of what is left.
func TestDaemonizingRespawnCrash(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, bgCltab)
	d.tellDone("g", "1")
	kid := readPid(t, d.path("bg.kids"), 0)
	if !poll(hang, func() bool { return d.logHas("bg exited but left processes running") }) {
		t.Fatal("no warning that bg left processes in its process group")
	}

	d2 := crash(t, d)
	d2.waitState("g", "1", "DONE")
	settle()
	if n := len(lines(d.path("bg.starts"))); n != 1 {
		t.Fatalf("bg started %d times across the crash while its background process runs, want 1", n)
	}
	if err := syscall.Kill(kid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLines(t, d.path("bg.starts"), 2)
	readPid(t, d.path("bg.kids"), kid)
}

// A program that leaves its process group cannot be supervised: each run
// looks like one that exits at once. The throttle ends the loop and the
// log names the processes it left.
func TestDaemonizingRespawnSetsid(t *testing.T) {
	t.Parallel()
	const limit = 2
	d := startDaemon(t, `
:::respawnlimit:2
:::respawnwindow:10s
:::respawnpause:1h
g:esc:1:respawn:echo $$ >> {dir}/esc; setsid sleep 1000 & echo $! >> {dir}/esc.kids; exit 0
`)
	// What escaped is not the daemon's to stop: the case stops it, before
	// the daemon's cleanup looks for leftovers.
	t.Cleanup(func() {
		for _, l := range lines(d.path("esc.kids")) {
			if pid, err := strconv.Atoi(l); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	d.tell("g", "1")
	e, starts := throttledSnapshot(t, d, "g", "esc")
	if starts != limit+1 {
		t.Fatalf("throttled after %d starts, want %d: %v", starts, limit+1, e)
	}
	if !d.logHas("esc respawning too rapidly") {
		t.Error("no 'esc respawning too rapidly' in the log")
	}
	kids := waitLines(t, d.path("esc.kids"), starts)
	var warning string
	if !poll(hang, func() bool {
		for _, l := range strings.Split(d.log.String(), "\n") {
			if strings.Contains(l, "esc starts processes that leave its process group") {
				warning = l
				return true
			}
		}
		return false
	}) {
		t.Fatal("no warning that esc's processes leave its process group")
	}
	for i, k := range kids {
		// The last run's child may not have left the run's process group
		// yet when the throttle looks (setsid runs after the shell's
		// exit): then it is still a residue of the entry, not a stray.
		if i < len(kids)-1 && !strings.Contains(warning, k) {
			t.Errorf("the warning does not name escaped pid %s: %s", k, warning)
		}
		if pid, _ := strconv.Atoi(k); !alive(pid) {
			t.Errorf("escaped process %s is not running", k)
		}
	}
	// The loop has ended.
	settle()
	if n := len(lines(d.path("esc"))); n != starts {
		t.Errorf("esc started %d times after it was throttled at %d", n, starts)
	}
}
