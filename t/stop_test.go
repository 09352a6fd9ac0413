package t

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A process group that ignores SIGTERM (the leader and a grandchild) is
// SIGKILLed after the stoptimeout; the group is STOPPING meanwhile and then
// reaches the new level.
func TestStopEscalatesToKill(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
:::stoptimeout:1
G:stub:1:respawn:trap '' TERM; sh -c 'echo $$ > {dir}/gc; exec sleep 1000' & echo $$ > {dir}/c; wait
G:next:2:once:if [ -e /proc/$(cat {dir}/c) ]; then echo stub-running; else echo stub-gone; fi > {dir}/next
`)
	d.tellDone("G", "1")
	c, gc := readPid(t, d.path("c"), 0), readPid(t, d.path("gc"), 0)
	if !alive(c) || !alive(gc) {
		t.Fatalf("child %d or grandchild %d not running", c, gc)
	}

	d.tell("G", "2")
	d.waitStateOrLogged("G", "2", "STOPPING")
	waitGone(t, "the TERM-ignoring child and grandchild", c, gc)
	d.waitState("G", "2", "DONE")
	if got := waitLines(t, d.path("next"), 1); got[0] != "stub-gone" {
		t.Fatalf("level 2 started before level 1 had stopped: %q", got)
	}
	if !d.logHas("did not stop in time: SIGKILL", "stub") {
		t.Fatal("no SIGKILL escalation in the log")
	}
}

// The leader exits on SIGTERM but a grandchild in its process group
// ignores it: the grandchild is killed when the stoptimeout ends.
func TestStopKillsLingeringGrandchild(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
:::stoptimeout:1
G:l:1:respawn:sh -c 'trap "" TERM; echo $$ > {dir}/gc; exec sleep 1000' & echo $$ > {dir}/c; wait
G:next:2:once:echo > {dir}/next
`)
	d.tellDone("G", "1")
	c, gc := readPid(t, d.path("c"), 0), readPid(t, d.path("gc"), 0)

	d.tell("G", "2")
	waitGone(t, "the leader, on SIGTERM", c)
	waitGone(t, "the TERM-ignoring grandchild", gc)
	d.waitState("G", "2", "DONE")
	waitLines(t, d.path("next"), 1)
}

// The entries of the shutdown cases: several groups, respawn, once, a long
// wait and a long test, with grandchildren, one that ignores SIGTERM, and a
// group never told.
const shutdownCltab = `
:::stoptimeout:2
A:ar:1:respawn:echo $$ > {dir}/ar; exec sleep 1000
A:ao:1:once:sleep 1000 & echo $! > {dir}/ao.gc; echo $$ > {dir}/ao; wait
B:bw:1:wait:sh -c 'echo $$ > {dir}/bw.gc; exec sleep 1000' & echo $$ > {dir}/bw; wait
B:bx:1:once:echo > {dir}/bx
C:ct:1:test:echo $$ > {dir}/ct; exec sleep 1000
E:er:1:respawn:trap '' TERM; echo $$ > {dir}/er; while :; do sleep 0.1; done
D:dr:1:respawn:echo $$ > {dir}/dr; exec sleep 1000
`

// startShutdownCase starts every group of shutdownCltab but D and returns
// the recorded pids, the daemon's own children first.
func startShutdownCase(t *testing.T) (d *daemon, leaders, all []int) {
	d = startDaemon(t, shutdownCltab)
	for _, g := range []string{"A", "B", "C", "E"} {
		d.tell(g, "1")
	}
	d.waitState("A", "1", "DONE")
	d.waitState("B", "1", "STARTING")
	d.waitState("C", "1", "CHECKING")
	d.waitState("E", "1", "DONE")
	for _, f := range []string{"ar", "ao", "bw", "ct", "er", "ao.gc", "bw.gc"} {
		p := readPid(t, d.path(f), 0)
		if !alive(p) {
			t.Fatalf("%s: pid %d not running", f, p)
		}
		all = append(all, p)
	}
	return d, all[:5], all
}

// checkAllStopped checks what must hold once the daemon has stopped
// everything and exited.
func checkAllStopped(t *testing.T, d *daemon, pids []int) {
	t.Helper()
	if code := d.waitExit(); code != 0 {
		t.Fatalf("daemon exited with status %d, want 0", code)
	}
	if exists(d.clstat) {
		t.Fatal("clstat still there after the daemon stopped")
	}
	waitGone(t, "recorded processes", pids...)
	if !poll(hang, func() bool { return len(d.leftovers()) == 0 }) {
		t.Fatalf("processes left behind: %v", d.leftovers())
	}
	if _, errOut, code := d.clinit("--status"); code != 3 {
		t.Fatalf("clinit --status after the daemon exited: status %d, stderr %q; want 3", code, errOut)
	}
}

// clinit -k stops every group, returns once all is stopped, and the
// daemon exits 0 without its clstat.
func TestKillStopsEverything(t *testing.T) {
	t.Parallel()
	d, leaders, pids := startShutdownCase(t)
	out, errOut, code := d.clinit("-k")
	if code != 0 {
		t.Fatalf("clinit -k: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	// -k answers once every process it started is gone (reaped): the
	// leaders must be gone now, not eventually.
	for _, p := range leaders {
		if alive(p) {
			t.Fatalf("clinit -k returned while pid %d still runs", p)
		}
	}
	if exists(d.clstat) {
		t.Fatal("clinit -k returned before clstat was removed")
	}
	checkAllStopped(t, d, pids)
}

// SIGTERM and SIGINT to the daemon are like clinit -k.
func TestSignalStopsEverything(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			d, _, pids := startShutdownCase(t)
			if err := d.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			checkAllStopped(t, d, pids)
		})
	}
}

// A once entry that started a background helper and exited: the helper is
// still a process of the group (same process group), so a level without
// the entry, and clinit -k, must stop it. A daemon killed with SIGKILL and
// started again still knows the helper: leaving the level, and -k, stop it.
func TestStopReachesProcessGroupOfExitedEntry(t *testing.T) {
	t.Parallel()
	const helper = `
:::stoptimeout:1
G:helper:1:once:sleep 1000 & echo $! > {dir}/gc
`
	for _, c := range []struct {
		cltab string
		crash bool
	}{
		{helper, false},
		{helper + "G:other:1:respawn:exec sleep 1000\n", true},
	} {
		for _, how := range []string{"level", "kill"} {
			name := how
			if c.crash {
				name = "a crash, then " + how
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				d := startDaemon(t, c.cltab)
				gc := d.residue()
				if !alive(gc) {
					t.Fatal("the helper died with its parent")
				}
				if c.crash {
					d = crash(t, d)
					d.waitState("G", "1", "DONE")
				}
				leaveLevel(t, d, how)
				if !poll(hang, func() bool { return !alive(gc) }) {
					syscall.Kill(gc, syscall.SIGKILL)
					t.Fatalf("after %s, the helper %d that a once entry left in its process group still runs", name, gc)
				}
			})
		}
	}
}

// The files a stopped daemon leaves: clstat goes, the socket goes.
func TestKillRemovesFiles(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:r:1:respawn:exec sleep 1000
`)
	d.tellDone("G", "1")
	if _, _, code := d.clinit("-k"); code != 0 {
		t.Fatalf("clinit -k: %d", code)
	}
	if code := d.waitExit(); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	for _, f := range []string{d.clstat, d.sock} {
		if _, err := os.Lstat(f); err == nil {
			t.Fatalf("%s still exists after the daemon stopped", f)
		}
	}
}

// A respawn entry whose runs each leave a helper in their process group:
// when the group leaves the level, the helpers of every run are stopped,
// not only the last one's.
func TestStopReachesResidueOfEveryRespawnRun(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
:::stoptimeout:1
G:r:1:respawn:sleep 1000 & echo $! >> {dir}/helpers; echo $$ >> {dir}/leaders; exec sleep 1000
`)
	d.tellDone("G", "1")
	leader := readPid(t, d.path("leaders"), 0)
	for i := 0; i < 2; i++ {
		syscall.Kill(leader, syscall.SIGKILL)
		leader = readPid(t, d.path("leaders"), leader)
	}
	helpers := waitLines(t, d.path("helpers"), 3)
	d.tellDone("G", "2")
	var live []string
	if !poll(hang, func() bool {
		live = live[:0]
		for _, h := range helpers {
			if p, _ := strconv.Atoi(h); alive(p) {
				live = append(live, h)
			}
		}
		return len(live) == 0
	}) {
		t.Fatalf("helpers %v of a respawn entry's earlier runs still run at a level without it (all helpers: %v)", live, helpers)
	}
}

// While -k is stopping a slow entry: a tell is refused, the status still
// answers, a second -k also returns once everything is stopped, and both
// exit 0.
func TestKillWhileStopping(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
:::stoptimeout:60
G:slow:1:respawn:trap '`+gate("{dir}/release")+`; exit 0' TERM; echo $$ > {dir}/slow; while :; do sleep 0.02; done
`)
	d.tellDone("G", "1")
	slow := readPid(t, d.path("slow"), 0)

	type result struct {
		out, errOut string
		code        int
		err         error
	}
	kill := func() chan result {
		ch := make(chan result, 1)
		go func() {
			var r result
			r.out, r.errOut, r.code, r.err = runClinit("-s", d.sock, "-k")
			ch <- r
		}()
		return ch
	}
	first := kill()
	d.waitState("G", "1", "STOPPING")
	if _, errOut, code := d.clinit("G", "2"); code == 0 || !strings.Contains(errOut, "shutting down") {
		t.Fatalf("tell during shutdown: status %d, stderr %q; want refused", code, errOut)
	}
	if out, _, code := d.clinit("--status"); code != 0 || out != "G 1 STOPPING\n" {
		t.Fatalf("status during shutdown: %d %q", code, out)
	}
	second := kill()
	select {
	case r := <-first:
		t.Fatalf("clinit -k returned while a process still runs: %+v", r)
	case r := <-second:
		t.Fatalf("second clinit -k returned while a process still runs: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	writeFile(t, d.path("release"), "")
	for i, ch := range []chan result{first, second} {
		select {
		case r := <-ch:
			if r.err != nil || r.code != 0 {
				t.Fatalf("clinit -k #%d: %+v", i+1, r)
			}
		case <-time.After(hang):
			t.Fatalf("clinit -k #%d did not return", i+1)
		}
	}
	if alive(slow) {
		t.Fatal("clinit -k returned while the slow entry runs")
	}
	if code := d.waitExit(); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
}

// After a graceful stop, a new daemon on the same directories starts with
// no group told and runs nothing.
func TestRestartAfterKillStartsClean(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:r:1:respawn:echo $$ >> {dir}/r; exec sleep 1000
`)
	d.tellDone("G", "1")
	readPid(t, d.path("r"), 0)
	if _, _, code := d.clinit("-k"); code != 0 {
		t.Fatalf("clinit -k: %d", code)
	}
	d.waitExit()
	d2 := launch(t, d.dir)
	d2.waitReady()
	if out, _, code := d2.clinit("--status"); code != 0 || out != "" {
		t.Fatalf("status of the new daemon: %d %q; want no group", code, out)
	}
	settle()
	if n := len(lines(d.path("r"))); n != 1 {
		t.Fatalf("the entry started %d times, want 1", n)
	}
}

// What an exited entry left in its process group is stopped before the
// next level starts, like the entry itself would be (SPEC 3: stop, with the
// group STOPPING meanwhile, then start).
func TestResidueStoppedBeforeNextLevel(t *testing.T) {
	t.Parallel()
	// next reads the helper's state once: a zombie (exited, not reaped
	// yet) counts as gone, and one reaped between two reads must not
	// read as running (the daemon reaps its orphans as they exit).
	d := startDaemon(t, `
:::stoptimeout:2
G:helper:1:once:sh -c 'trap "" TERM; echo $$ > {dir}/gc; exec sleep 1000' &
G:next:2:once:gc=$(cat {dir}/gc); s=$(cut -d' ' -f3 /proc/$gc/stat 2>/dev/null); if [ -n "$s" ] && [ "$s" != Z ]; then echo helper-running; else echo helper-gone; fi > {dir}/next
`)
	gc := d.residue()
	d.tell("G", "2")
	waitGone(t, "the helper that ignores SIGTERM", gc)
	d.waitState("G", "2", "DONE")
	if got := waitLines(t, d.path("next"), 1); got[0] != "helper-gone" {
		t.Errorf("level 2 started while the helper level 1 left was still running: %q", got)
	}
	if !d.logHas(`"group": "G"`, `"level": "2"`, `"state": "STOPPING"`) {
		t.Errorf("the group was never STOPPING at level 2 while the helper was being stopped")
	}
}

// residue brings group G to level 1 and waits until its once entry
// "helper" has exited, leaving behind the process whose pid it wrote to
// the file gc; it returns that pid.
func (d *daemon) residue() int {
	d.t.Helper()
	d.tellDone("G", "1")
	gc := readPid(d.t, d.path("gc"), 0)
	eventually(d.t, hang, func() bool { return d.entry("G", "helper").Exit != nil }, "the once entry to exit")
	return gc
}

// leaveLevel takes group G off level 1: told level 2 ("level"), or the
// daemon stopped with -k ("kill").
func leaveLevel(t *testing.T, d *daemon, how string) {
	t.Helper()
	if how == "level" {
		d.tellDone("G", "2")
		return
	}
	if _, errOut, code := d.clinit("-k"); code != 0 {
		t.Fatalf("clinit -k: %d %s", code, errOut)
	}
	d.waitExit()
}
