package t

import (
	"encoding/json"
	"strconv"
	"strings"
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
	d.tellDone("G", "2")
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

// A crash-looping respawn entry that rests makes its group FAILED, with
// the reason wherever the group is shown: clstat (and -v, which prints
// its lines as they are), --status, --json, the
// cluster view (--hastat --json), the status page's data and the
// metrics. Once the pause ends and the entry runs again, the group is
// DONE again and the reason gone.
func TestThrottledGroupFailed(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	d := startDaemon(t, `
:::respawnlimit:2
:::respawnwindow:10s
:::respawnpause:5s
crash:c:1:respawn:[ -e {dir}/fixed ] && exec sleep 1000; echo start >> {dir}/c; exit 1
crash:steady:1:respawn:exec sleep 1000
`, "--metrics", strconv.Itoa(port))
	d.tell("crash", "1")
	throttledSnapshot(t, d, "crash", "c")
	const why = "c respawning too rapidly: resting for 5s"

	d.waitState("crash", "1", "FAILED")
	if out, errOut, code := d.clinit("--status"); code != 0 || out != "crash 1 FAILED  ("+why+")\n" {
		t.Fatalf("clinit --status: status %d, stdout %q, stderr %q; want the FAILED line with why", code, out, errOut)
	}
	// -v prints exactly the clstat lines (SPEC 4).
	if out, errOut, code := d.clinit("-v"); code != 0 || out != "cltab reread: no group changed\ncrash 1 FAILED\n" {
		t.Fatalf("clinit -v: status %d, stdout %q, stderr %q; want the clstat line as it is", code, out, errOut)
	}
	g, _ := d.status().group("crash")
	if g.State != "FAILED" || g.Why != why {
		t.Fatalf("--json: group %+v, want FAILED with why %q", g, why)
	}
	if e, _ := g.entry("c"); e.ThrottledUntil.IsZero() || time.Until(e.ThrottledUntil) > 5*time.Second {
		t.Fatalf("--json: entry %v throttled until %v, want within the 5s pause", e, e.ThrottledUntil)
	}
	out, errOut, code := d.clinit("--hastat", "--json")
	var h struct {
		Nodes []struct {
			Node   string
			Groups []struct{ Group, State, Why string }
		}
	}
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil {
		t.Fatalf("clinit --hastat --json: status %d, %v, stderr %q", code, err, errOut)
	}
	if len(h.Nodes) != 1 || len(h.Nodes[0].Groups) != 1 || h.Nodes[0].Groups[0].State != "FAILED" || h.Nodes[0].Groups[0].Why != why {
		t.Fatalf("--hastat --json: %+v, want crash FAILED with why %q", h.Nodes, why)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if m := httpGet(t, base+"/metrics"); !strings.Contains(m, `clinit_group_failed{group="crash",why="`+why+`"} 1`) ||
		!strings.Contains(m, `clinit_group_state{group="crash",level="1",state="FAILED"} 1`) {
		t.Fatalf("/metrics lacks the FAILED group and its why:\n%s", m)
	}
	if j := httpGet(t, base+"/status.json"); !strings.Contains(j, `"why":"`+why+`"`) {
		t.Fatalf("/status.json lacks why %q:\n%s", why, j)
	}
	if page := httpGet(t, base+"/"); !strings.Contains(page, "g.why") {
		t.Fatal("the status page does not show why a group failed")
	}

	writeFile(t, d.path("fixed"), "")
	d.waitState("crash", "1", "DONE")
	if out, _, _ := d.clinit("--status"); out != "crash 1 DONE\n" {
		t.Fatalf("clinit --status after the pause: %q, want %q", out, "crash 1 DONE\n")
	}
	if g, _ := d.status().group("crash"); g.Why != "" {
		t.Fatalf("--json after the pause: %+v still has a why", g)
	}
	if m := httpGet(t, base+"/metrics"); strings.Contains(m, "clinit_group_failed{") {
		t.Fatalf("/metrics still has a failed group after the pause:\n%s", m)
	}
}
