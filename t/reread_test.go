package t

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Two versions of a cltab: from v1 to v2, A gains `new`, `chg` changes its
// command and `gone` goes; B does not change.
const (
	rereadV1 = `
:::stoptimeout:2
A:keep:1:respawn:echo $$ > {dir}/keep; exec sleep 1000
A:chg:1:respawn:echo v1 $$ > {dir}/chg; exec sleep 1000
A:gone:1:respawn:echo $$ > {dir}/gone; exec sleep 1000
A:other:2:respawn:echo $$ > {dir}/other; exec sleep 1000
B:b:1:respawn:echo $$ > {dir}/b; exec sleep 1000
`
	rereadV2 = `
:::stoptimeout:2
A:keep:1:respawn:echo $$ > {dir}/keep; exec sleep 1000
A:chg:1:respawn:echo v2 $$ > {dir}/chg; exec sleep 1000
A:new:1:respawn:echo $$ > {dir}/new; exec sleep 1000
A:other:2:respawn:echo $$ > {dir}/other; exec sleep 1000
B:b:1:respawn:echo $$ > {dir}/b; exec sleep 1000
`
)

// chgPid reads chg's marker: its version and pid.
func chgPid(t *testing.T, d *daemon, version string, not int) int {
	t.Helper()
	pid := 0
	eventually(t, hang, func() bool {
		l := lines(d.path("chg"))
		if len(l) != 1 {
			return false
		}
		f := strings.Fields(l[0])
		if len(f) != 2 || f[0] != version {
			return false
		}
		p, err := strconv.Atoi(f[1])
		if err != nil || p == not {
			return false
		}
		pid = p
		return true
	}, "chg to run its %s command", version)
	return pid
}

// A reread adds, changes and removes entries of the running group A, and
// leaves B alone; then the reverse. Triggered by clinit, by SIGHUP, and by
// the file changing, with the file written in place and replaced by a
// rename.
func TestReread(t *testing.T) {
	t.Parallel()
	for _, trigger := range []string{"clinit", "SIGHUP", "watch"} {
		for _, write := range []string{"inplace", "rename"} {
			t.Run(trigger+"/"+write, func(t *testing.T) {
				t.Parallel()
				testReread(t, trigger, write)
			})
		}
	}
}

func testReread(t *testing.T, trigger, write string) {
	var d *daemon
	if trigger == "watch" {
		d = startDaemon(t, rereadV1)
	} else {
		d = startDaemonUnwatched(t, rereadV1)
	}
	d.tell("A", "1")
	d.tell("B", "1")
	d.waitState("A", "1", "DONE")
	d.waitState("B", "1", "DONE")
	keep := readPid(t, d.path("keep"), 0)
	chg := chgPid(t, d, "v1", 0)
	gone := readPid(t, d.path("gone"), 0)
	b := readPid(t, d.path("b"), 0)

	apply := func(text, wantMsg string) {
		t.Helper()
		if write == "inplace" {
			d.writeCltab(text)
		} else {
			d.renameCltab(text)
		}
		switch trigger {
		case "clinit":
			if out := d.reread(); out != wantMsg+"\n" {
				t.Fatalf("clinit (reread): %q, want %q", out, wantMsg)
			}
		case "SIGHUP":
			if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
	}

	apply(rereadV2, "cltab reread: changed A")
	newPid := readPid(t, d.path("new"), 0)
	chg2 := chgPid(t, d, "v2", chg)
	waitGone(t, "the removed entry", gone)
	waitGone(t, "the old command of the changed entry", chg)
	d.waitState("A", "1", "DONE")
	var a jGroup
	eventually(t, hang, func() bool {
		a, _ = d.status().group("A")
		return strings.Join(a.tags(), " ") == "chg keep new other"
	}, "A's entries to become chg keep new other")
	for tag, pid := range map[string]int{"keep": keep, "chg": chg2, "new": newPid} {
		if e, _ := a.entry(tag); e.Pid != pid || !alive(pid) {
			t.Fatalf("%s: %v, want running pid %d", tag, e, pid)
		}
	}
	if e := d.entry("B", "b"); e.Pid != b || e.Restarts != 0 || !alive(b) {
		t.Fatalf("B, unchanged, was touched: %v, want pid %d", e, b)
	}
	if exists(d.path("other")) {
		t.Fatal("an unchanged entry of another level started")
	}

	// And back: `gone` returns, `new` goes, `chg` changes again.
	apply(rereadV1, "cltab reread: changed A")
	gone2 := readPid(t, d.path("gone"), gone)
	chg3 := chgPid(t, d, "v1", chg2)
	waitGone(t, "the removed entry", newPid)
	waitGone(t, "the old command of the changed entry", chg2)
	d.waitState("A", "1", "DONE")
	if e := d.entry("A", "keep"); e.Pid != keep {
		t.Fatalf("keep: %v, want pid %d", e, keep)
	}
	if e := d.entry("A", "gone"); e.Pid != gone2 || !alive(gone2) {
		t.Fatalf("gone: %v, want pid %d", e, gone2)
	}
	if e := d.entry("A", "chg"); e.Pid != chg3 {
		t.Fatalf("chg: %v, want pid %d", e, chg3)
	}
	if e := d.entry("B", "b"); e.Pid != b || e.Restarts != 0 || !alive(b) {
		t.Fatalf("B, unchanged, was touched: %v, want pid %d", e, b)
	}
}

// A reread with nothing changed says so and touches nothing.
func TestRereadNoChange(t *testing.T) {
	t.Parallel()
	d := startDaemonUnwatched(t, rereadV1)
	d.tellDone("A", "1")
	keep := readPid(t, d.path("keep"), 0)
	d.rewrite(rereadV1+"# a comment\n\n", "cltab reread: no group changed\n")
	if e := d.entry("A", "keep"); e.Pid != keep || e.Restarts != 0 {
		t.Fatalf("keep: %v, want pid %d", e, keep)
	}
}

// A reread that turns a running entry off stops it; turning it back on
// starts it.
func TestRereadModeOff(t *testing.T) {
	t.Parallel()
	const on = `
:::stoptimeout:2
G:r:1:respawn:echo $$ > {dir}/r; exec sleep 1000
G:s:1:respawn:echo $$ > {dir}/s; exec sleep 1000
`
	d := startDaemonUnwatched(t, on)
	d.tellDone("G", "1")
	r, s := readPid(t, d.path("r"), 0), readPid(t, d.path("s"), 0)
	d.rewrite(strings.Replace(on, "G:r:1:respawn:", "G:r:1:off:", 1), "cltab reread: changed G\n")
	waitGone(t, "the entry turned off", r)
	d.waitState("G", "1", "DONE")
	if e := d.entry("G", "r"); e.Pid != 0 || e.Mode != "off" {
		t.Fatalf("r: %v, want off and no pid", e)
	}
	if e := d.entry("G", "s"); e.Pid != s {
		t.Fatalf("s: %v, want pid %d", e, s)
	}
	d.writeCltab(on)
	d.reread()
	r2 := readPid(t, d.path("r"), r)
	if !alive(r2) {
		t.Fatal("r not running again")
	}
}

// The daemon does not start on an invalid cltab: it says where every
// problem is, exits non-zero, and never creates its socket.
func TestInvalidCltabAtStart(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	path := dir + "/cltab"
	writeFile(t, path, `G:a:1:once:true
G:b:1:sometimes:true
G:a:2:once:true
:::nosuchsetting:1
G:c:1
`)
	d := launch(t, dir)
	if code := d.waitExit(); code == 0 {
		t.Fatal("the daemon started on an invalid cltab")
	}
	log := d.log.String()
	for _, line := range []int{2, 3, 4, 5} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + `:` + strconv.Itoa(line) + `: \S`).MatchString(log) {
			t.Errorf("no %s:%d: message in:\n%s", path, line, log)
		}
	}
	if regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + `:1: `).MatchString(log) {
		t.Errorf("a message for the valid line 1 in:\n%s", log)
	}
	if exists(d.sock) {
		t.Fatal("the socket was created")
	}
	if exists(d.clstat) {
		t.Fatal("clstat was created")
	}

	// --check agrees.
	_, errOut, code, err := runClinit("--check", "-c", path)
	if err != nil || code != 1 || !strings.Contains(errOut, path+":2: ") {
		t.Fatalf("clinit --check: status %d, stderr %q, err %v; want 1 with the problems", code, errOut, err)
	}
	writeFile(t, path, "G:a:1:once:true\n")
	if _, errOut, code, err := runClinit("--check", "-c", path); err != nil || code != 0 {
		t.Fatalf("clinit --check on a valid cltab: status %d, stderr %q", code, errOut)
	}
}

// An invalid cltab on reread changes nothing: clinit prints the problems
// and exits 1, every process keeps running, and a later valid edit is
// applied.
func TestInvalidCltabOnReread(t *testing.T) {
	t.Parallel()
	d := startDaemonUnwatched(t, rereadV1)
	d.tell("A", "1")
	d.tell("B", "1")
	d.waitState("A", "1", "DONE")
	d.waitState("B", "1", "DONE")
	keep, gone, b := readPid(t, d.path("keep"), 0), readPid(t, d.path("gone"), 0), readPid(t, d.path("b"), 0)

	d.writeCltab(rereadV2 + "A:keep:1:once:true\nB:x:1:never:true\n")
	out, errOut, code := d.clinit()
	if code != 1 || out != "" {
		t.Fatalf("reread of an invalid cltab: status %d, stdout %q; want 1 and nothing", code, out)
	}
	for _, want := range []string{d.cltab + ":8: ", d.cltab + ":9: "} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("stderr %q lacks %q", errOut, want)
		}
	}
	settle()
	for _, p := range []int{keep, gone, b} {
		if !alive(p) {
			t.Fatalf("pid %d stopped by an invalid reread", p)
		}
	}
	if exists(d.path("new")) {
		t.Fatal("an entry of the invalid cltab started")
	}
	if e := d.entry("A", "gone"); e.Pid != gone {
		t.Fatalf("gone: %v, want pid %d", e, gone)
	}

	d.rewrite(rereadV2, "cltab reread: changed A\n")
	readPid(t, d.path("new"), 0)
	waitGone(t, "the removed entry", gone)
	if e := d.entry("A", "keep"); e.Pid != keep {
		t.Fatalf("keep: %v, want pid %d", e, keep)
	}
	if e := d.entry("B", "b"); e.Pid != b {
		t.Fatalf("b: %v, want pid %d", e, b)
	}
}

// An invalid cltab seen by the watcher is logged and changes nothing; the
// fixed file is then applied.
func TestInvalidCltabOnFileChange(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, rereadV1)
	d.tellDone("A", "1")
	keep, gone := readPid(t, d.path("keep"), 0), readPid(t, d.path("gone"), 0)

	d.renameCltab(rereadV2 + "A:bad:1:sometimes:true\n")
	eventually(t, hang, func() bool { return d.logHas(d.cltab + ":8: ") }, "the watcher to log the problem")
	for _, p := range []int{keep, gone} {
		if !alive(p) {
			t.Fatalf("pid %d stopped by an invalid cltab", p)
		}
	}
	d.renameCltab(rereadV2)
	readPid(t, d.path("new"), 0)
	waitGone(t, "the removed entry", gone)
	if e := d.entry("A", "keep"); e.Pid != keep {
		t.Fatalf("keep: %v, want pid %d", e, keep)
	}
}

// A once entry that exited leaving a helper in its process group, then
// removed from the cltab (or its command changed): the helper is a process
// of the removed entry and is stopped like one.
func TestRereadStopsWhatARemovedEntryLeft(t *testing.T) {
	t.Parallel()
	for _, change := range []string{"remove", "command"} {
		t.Run(change, func(t *testing.T) {
			t.Parallel()
			const v1 = `
:::stoptimeout:1
G:helper:1:once:sleep 1000 & echo $! > {dir}/gc
G:other:1:respawn:exec sleep 1000
`
			d := startDaemonUnwatched(t, v1)
			gc := d.residue()
			v2 := strings.Replace(v1, "G:helper:1:once:sleep 1000 & echo $! > {dir}/gc\n", "", 1)
			if change == "command" {
				v2 = strings.Replace(v1, "echo $! > {dir}/gc", "echo $! > {dir}/gc2", 1)
			}
			d.rewrite(v2, "cltab reread: changed G\n")
			if !poll(hang, func() bool { return !alive(gc) }) {
				syscall.Kill(gc, syscall.SIGKILL)
				t.Fatalf("the helper %d of the %s entry still runs", gc, map[string]string{"remove": "removed", "command": "changed"}[change])
			}
		})
	}
}

// A reread that changes the command of the wait entry the group is
// waiting on stops the old process and runs the new command in its place.
func TestRereadChangesRunningWait(t *testing.T) {
	t.Parallel()
	const v1 = `
:::stoptimeout:5
G:w:1:wait:echo $$ > {dir}/w1; ` + "while :; do sleep 0.02; done" + `
G:after:1:once:echo > {dir}/after
`
	d := startDaemonUnwatched(t, v1)
	d.tell("G", "1")
	old := readPid(t, d.path("w1"), 0)
	d.waitState("G", "1", "STARTING")
	d.rewrite(strings.Replace(v1, "echo $$ > {dir}/w1; while :; do sleep 0.02; done", "echo $$ > {dir}/w2", 1), "cltab reread: changed G\n")
	waitGone(t, "the old command of the wait", old)
	d.waitState("G", "1", "DONE")
	waitLines(t, d.path("w2"), 1)
	waitLines(t, d.path("after"), 1)
}

// A reread that changes runlevels: an entry that leaves the current level
// stops, one that joins it starts, one that keeps it keeps its process.
func TestRereadChangesLevels(t *testing.T) {
	t.Parallel()
	const v1 = `
:::stoptimeout:5
G:a:1:respawn:echo $$ > {dir}/a; exec sleep 1000
G:b:2:respawn:echo $$ > {dir}/b; exec sleep 1000
G:c:1:respawn:echo $$ > {dir}/c; exec sleep 1000
`
	d := startDaemonUnwatched(t, v1)
	d.tellDone("G", "1")
	a, c := readPid(t, d.path("a"), 0), readPid(t, d.path("c"), 0)
	v2 := strings.NewReplacer("G:a:1:", "G:a:2:", "G:b:2:", "G:b:12:", "G:c:1:", "G:c:13:").Replace(v1)
	d.rewrite(v2, "cltab reread: changed G\n")
	waitGone(t, "the entry that left the level", a)
	b := readPid(t, d.path("b"), 0)
	d.waitState("G", "1", "DONE")
	if e := d.entry("G", "b"); e.Pid != b {
		t.Fatalf("b: %v, want pid %d", e, b)
	}
	if e := d.entry("G", "c"); e.Pid != c || e.Restarts != 0 {
		t.Fatalf("c: %v, want its pid %d untouched", e, c)
	}
}

// A reread that removes a whole running group stops its processes and
// forgets it; adding it back makes it a group again.
func TestRereadRemovesGroup(t *testing.T) {
	t.Parallel()
	const both = `
:::stoptimeout:5
A:a:1:respawn:echo $$ > {dir}/a; exec sleep 1000
B:b:1:respawn:echo $$ > {dir}/b; exec sleep 1000
`
	d := startDaemonUnwatched(t, both)
	d.tell("A", "1")
	d.tell("B", "1")
	d.waitState("A", "1", "DONE")
	d.waitState("B", "1", "DONE")
	a, b := readPid(t, d.path("a"), 0), readPid(t, d.path("b"), 0)
	d.rewrite(strings.Replace(both, "B:b:1:respawn:echo $$ > {dir}/b; exec sleep 1000\n", "", 1), "cltab reread: changed B\n")
	waitGone(t, "the removed group's process", b)
	eventually(t, hang, func() bool { _, ok := d.clstatLines()["B"]; return !ok }, "the removed group to leave clstat")
	if _, errOut, code := d.clinit("B", "1"); code != 1 || errOut != "clinit: no such group: B\n" {
		t.Fatalf("tell to the removed group: status %d, stderr %q", code, errOut)
	}
	if e := d.entry("A", "a"); e.Pid != a {
		t.Fatalf("a: %v, want pid %d", e, a)
	}
	d.rewrite(both, "cltab reread: changed B\n")
	if s := d.clstatLines()["B"]; s != "" {
		t.Fatalf("a group added back is told already: %q", s)
	}
	d.tell("B", "1")
	readPid(t, d.path("b"), b)
}

// A cltab truncated on disk (a writer between truncate and write) is not
// applied by the watcher: it would stop every group, and in a cluster
// every node's. It is logged; content written after it is applied.
func TestEmptyCltabOnFileChangeIgnored(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, rereadV1)
	d.tellDone("A", "1")
	keep := readPid(t, d.path("keep"), 0)
	writeFile(t, d.cltab, "")
	eventually(t, hang, func() bool { return d.logHas("file is empty: ignored") }, "the watcher to log the empty file")
	settle()
	if !alive(keep) {
		t.Fatal("an empty cltab on disk stopped a running entry")
	}
	d.writeCltab(rereadV2)
	readPid(t, d.path("new"), 0)
	if e := d.entry("A", "keep"); e.Pid != keep {
		t.Fatalf("keep: %v, want pid %d", e, keep)
	}
}
