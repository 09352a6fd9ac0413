// Package t holds the end-to-end tests of clinit: they build the real
// binary once and drive it the way an operator would, through its command
// line, its socket, its clstat file, signals and the cltab on disk. A
// case's daemon log is printed only when the case fails.
//
// Every case runs its own daemon in a directory of its own. The cltab
// texts say {dir} where that directory goes; the commands leave marker
// files there (pids, runs) that the cases read.
//
// Timing bounds here are hang guards, never speed assertions.
package t

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/internal/testkit"
)

// clinitBin is the binary built once by TestMain.
var clinitBin string

// hang is the deadline of every wait for something that should happen.
const hang = 10 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(pid1Env) != "" {
		pid1Exec() // the first process of a PID namespace: becomes a daemon
	}
	if os.Getenv(forgerEnv) != "" {
		forgerMain() // a lying member in a host's namespace (netns_forge_test.go)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "clinit-t-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "t:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Others may run it: one case runs the client as another user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "t:", err)
		return 1
	}
	clinitBin = filepath.Join(dir, "clinit")
	args := []string{"build", "-o", clinitBin}
	// CLINIT_T_RACE=1 builds the daemon with the race detector too; the
	// harness then fails any case whose daemon reports a data race.
	if os.Getenv("CLINIT_T_RACE") != "" {
		args = append(args, "-race")
	}
	args = append(args, "github.com/clinit/clinit/cmd/clinit")
	build := exec.Command("go", args...)
	build.Dir = ".." // the module root
	if os.Getenv("CLINIT_T_RACE") == "" {
		// Static, as make build links it (the race detector needs cgo).
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "t: building clinit: %v\n", err)
		return 1
	}
	return m.Run()
}

// newCaseDir makes a directory of a case. It is short on purpose: a UNIX
// socket path must stay under 108 bytes, which t.TempDir() may not.
func newCaseDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cl")
	if err == nil && len(dir) > 60 {
		os.RemoveAll(dir)
		dir, err = os.MkdirTemp("/tmp", "cl")
	}
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after every daemon's cleanup.
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// expand puts the case directory into a cltab text.
func expand(dir, text string) string { return strings.ReplaceAll(text, "{dir}", dir) }

var daemonSeq atomic.Int64

// daemon is one `clinit -d` process of a case.
type daemon struct {
	t      *testing.T
	dir    string
	cltab  string // the path given with -c
	target string // the file the test writes to change the cltab (cltab, or what it links to)
	sock   string
	clstat string
	node   string
	tag    string // tagEnv in its environment, inherited by all its processes

	kd     *testkit.Daemon
	cmd    *exec.Cmd
	log    *testkit.Buffer
	ready  <-chan struct{} // closed on READY=1 (sd_notify)
	done   <-chan struct{} // closed once the process is reaped
	forced bool            // SIGKILLed: leftovers are expected, not a finding
}

// notifications are the sd_notify messages the daemon sent so far.
func (d *daemon) notifications() []string { return d.kd.Notifications() }

// tagEnv marks every process of a case's daemon.
const tagEnv = "CLT_DAEMON"

// startDaemon makes a case directory, writes the cltab there and starts a
// daemon on it; it returns once the daemon is ready and answers.
func startDaemon(t *testing.T, cltabText string, extraFlags ...string) *daemon {
	t.Helper()
	dir := newCaseDir(t)
	writeFile(t, filepath.Join(dir, "cltab"), expand(dir, cltabText))
	d := launch(t, dir, extraFlags...)
	d.waitReady()
	return d
}

// startDaemonUnwatched is startDaemon with the cltab path a symlink into a
// subdirectory: the daemon watches the symlink's directory, so writes to
// the real file are not seen by its watcher, and only an explicit reread
// (clinit, SIGHUP) can apply them. Cases that test an explicit reread use
// it so that the watcher cannot apply the change first.
func startDaemonUnwatched(t *testing.T, cltabText string, extraFlags ...string) *daemon {
	t.Helper()
	dir := newCaseDir(t)
	real := filepath.Join(dir, "real", "cltab")
	if err := os.Mkdir(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, real, expand(dir, cltabText))
	if err := os.Symlink(real, filepath.Join(dir, "cltab")); err != nil {
		t.Fatal(err)
	}
	d := launch(t, dir, extraFlags...)
	d.target = real
	d.waitReady()
	return d
}

// launch starts a daemon on dir/cltab with every path inside dir, without
// waiting for it. Later flags override the defaults (-s, --clstat,
// --node...).
func launch(t *testing.T, dir string, extraFlags ...string) *daemon {
	t.Helper()
	return launchWith(t, dir, nil, extraFlags...)
}

// launchWith is launch with wrap, if not nil, applied to the daemon's
// command before it starts (to run it in namespaces of its own...).
func launchWith(t *testing.T, dir string, wrap func(*exec.Cmd), extraFlags ...string) *daemon {
	t.Helper()
	n := daemonSeq.Add(1)
	files := testkit.FilesIn(dir)
	d := &daemon{t: t, dir: dir, cltab: files.Cltab, sock: files.Sock, clstat: files.Clstat, node: "testnode",
		tag: fmt.Sprintf("%s#%d", dir, n), log: &testkit.Buffer{}}
	d.target = d.cltab
	for i := 0; i+1 < len(extraFlags); i++ {
		switch extraFlags[i] {
		case "--node":
			d.node = extraFlags[i+1]
		case "-s", "--socket":
			d.sock = extraFlags[i+1]
		case "--clstat":
			d.clstat = extraFlags[i+1]
		}
	}
	// Readiness is the systemd protocol: the daemon sends READY=1 once it
	// serves, watches the cltab and handles signals.
	kd, err := testkit.Launch(testkit.Config{
		Path:   clinitBin,
		Args:   append(files.DaemonArgs("testnode"), extraFlags...),
		Notify: filepath.Join(dir, fmt.Sprintf("notify%d", n)),
		Env:    []string{tagEnv + "=" + d.tag},
		Output: d.log,
		Prepare: func(cmd *exec.Cmd) error {
			if wrap != nil {
				wrap(cmd)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	d.kd, d.cmd, d.ready, d.done = kd, kd.Cmd, kd.Ready(), kd.Done()
	t.Cleanup(d.cleanup)
	return d
}

// waitReady waits for READY=1, then checks that the socket answers.
func (d *daemon) waitReady() {
	d.t.Helper()
	if err := d.kd.WaitReady(d.sock, hang); err != nil {
		d.t.Fatal(err)
	}
}

// exited reports whether the daemon process has ended.
func (d *daemon) exited() bool { return d.kd.Exited() }

// waitExit waits for the daemon to end and returns its exit status.
func (d *daemon) waitExit() int {
	d.t.Helper()
	code, err := d.kd.WaitExit(hang)
	if err != nil {
		d.t.Fatal(err)
	}
	return code
}

// kill9 SIGKILLs the daemon and then every process it left.
func (d *daemon) kill9() {
	d.t.Helper()
	d.forced = true
	d.cmd.Process.Kill()
	<-d.done
	d.killLeftovers()
	if !poll(hang, func() bool { return len(d.leftovers()) == 0 }) {
		d.t.Fatalf("processes survive SIGKILL: %v", d.leftovers())
	}
}

// cleanup stops the daemon with -k (an error if that fails), checks that
// no process of it is left (an error if one is), kills what is left, and
// prints the log if the case failed.
func (d *daemon) cleanup() {
	t := d.t
	graceful := !d.forced
	if !d.exited() {
		if err := d.kd.Stop(d.client, hang); err != nil {
			t.Errorf("cleanup: %v", err)
			graceful = false
		}
		if !d.exited() {
			d.cmd.Process.Kill()
			<-d.done
		}
	}
	if graceful && !poll(hang, func() bool { return len(d.leftovers()) == 0 }) {
		t.Errorf("cleanup: processes left behind after the daemon stopped: %v", d.leftovers())
	}
	d.killLeftovers()
	if strings.Contains(d.log.String(), "WARNING: DATA RACE") {
		t.Errorf("the daemon reported a data race")
	}
	if t.Failed() {
		t.Logf("daemon log (%s, socket %s):\n%s", d.tag, d.sock, d.log.String())
	}
}

// isMine matches the tag of this daemon's processes.
func (d *daemon) isMine(tag string) bool { return tag == d.tag }

// leftovers lists the live processes that carry this daemon's tag in their
// environment: the daemon itself and everything it started, grandchildren
// included.
func (d *daemon) leftovers() []string {
	return testkit.DescribeAll(testkit.Tagged(tagEnv, d.isMine))
}

func (d *daemon) killLeftovers() { testkit.KillTagged(tagEnv, d.isMine) }

// runClinit runs the client; err is set only when it could not run or hung.
func runClinit(args ...string) (stdout, stderr string, code int, err error) {
	r := testkit.Clinit(clinitBin, args...)
	return r.Stdout, r.Stderr, r.Code, r.Err
}

// client runs the client against this daemon (-c and -s given).
func (d *daemon) client(args ...string) testkit.Result {
	return testkit.Clinit(clinitBin, append([]string{"-c", d.cltab, "-s", d.sock}, args...)...)
}

// clinit runs the client against this daemon (-c and -s given).
func (d *daemon) clinit(args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	r := d.client(args...)
	if r.Err != nil {
		d.t.Fatal(r.Err)
	}
	return r.Stdout, r.Stderr, r.Code
}

// tell runs `clinit GROUP LEVEL` and checks its answer, which for a level
// the group has no entry at says that everything of it stops.
func (d *daemon) tell(group, level string) {
	d.t.Helper()
	out, errOut, code := d.clinit(group, level)
	want := group + ": going to level " + level + "\n"
	empty := group + ": going to level " + level + ": " + noEntryNote(group, level) + "\n"
	if code != 0 || out != want && out != empty {
		d.t.Fatalf("clinit %s %s: status %d, stdout %q (want %q), stderr %q", group, level, code, out, want, errOut)
	}
}

// tellDone tells group to go to level and waits until it is DONE there.
func (d *daemon) tellDone(group, level string) {
	d.t.Helper()
	d.tell(group, level)
	d.waitState(group, level, "DONE")
}

// noEntryNote is what the answer to a tell adds when no entry of group
// runs at level.
func noEntryNote(group, level string) string {
	return "no entry of " + group + " runs at level " + level + ", so every process of it stops"
}

// reread runs `clinit` with no argument and returns its stdout.
func (d *daemon) reread() string {
	d.t.Helper()
	out, errOut, code := d.clinit()
	if code != 0 {
		d.t.Fatalf("clinit (reread): status %d, stdout %q, stderr %q", code, out, errOut)
	}
	return out
}

// rewrite rewrites the cltab with text and rereads it; the answer must
// be want.
func (d *daemon) rewrite(text, want string) {
	d.t.Helper()
	d.writeCltab(text)
	if out := d.reread(); out != want {
		d.t.Fatalf("reread: %q, want %q", out, want)
	}
}

// writeCltab rewrites the cltab in place (truncate and write).
func (d *daemon) writeCltab(text string) {
	d.t.Helper()
	writeFile(d.t, d.target, expand(d.dir, text))
}

// renameCltab replaces the cltab by a new file renamed over it.
func (d *daemon) renameCltab(text string) {
	d.t.Helper()
	tmp := filepath.Join(filepath.Dir(d.target), ".cltab.new")
	writeFile(d.t, tmp, expand(d.dir, text))
	if err := os.Rename(tmp, d.target); err != nil {
		d.t.Fatal(err)
	}
}

// path names a file in the case directory.
func (d *daemon) path(name string) string { return filepath.Join(d.dir, name) }

// clstatLines reads the clstat file: group -> "LEVEL STATE". It fails the
// case on a malformed line.
func (d *daemon) clstatLines() map[string]string {
	d.t.Helper()
	st, err := testkit.ReadClstat(d.clstat)
	if err != nil {
		d.t.Fatal(err)
	}
	m := map[string]string{}
	for _, g := range st.Groups {
		m[g.Group] = g.Level + " " + g.State
	}
	return m
}

// waitState waits until clstat shows group at level in state.
func (d *daemon) waitState(group, level, state string) {
	d.t.Helper()
	want := level + " " + state
	var last string
	if !poll(hang, func() bool { last = d.clstatLines()[group]; return last == want }) {
		d.t.Fatalf("clstat: group %s is %q, want %q", group, last, want)
	}
}

// waitStateOrLogged waits until group was at level in state: seen in
// clstat, or, for a state that may last too short for a loaded machine to
// catch it there, logged by the daemon as a transition.
func (d *daemon) waitStateOrLogged(group, level, state string) {
	d.t.Helper()
	want := level + " " + state
	var last string
	if !poll(hang, func() bool {
		last = d.clstatLines()[group]
		return last == want || d.logHas(`"group": "`+group+`"`, `"level": "`+level+`"`, `"state": "`+state+`"`)
	}) {
		d.t.Fatalf("group %s never %q: clstat %q", group, want, last)
	}
}

// The status as `clinit --json` prints it (api.Status), with the lookups
// the cases use.
type (
	jStatus api.Status
	jGroup  api.GroupStatus
	jEntry  api.EntryStatus
)

// ran reports whether the entry was ever started.
func (e jEntry) ran() bool { return e.Pid != 0 || e.Exit != nil }

func (e jEntry) String() string {
	exit := "-"
	if e.Exit != nil {
		exit = strconv.Itoa(*e.Exit)
	}
	return fmt.Sprintf("{%s %s pid=%d restarts=%d exit=%s throttled=%v}", e.Tag, e.Mode, e.Pid, e.Restarts, exit, e.Throttled)
}

// status runs `clinit --json`. The daemon answers it from its engine loop,
// so it reflects every tell that has returned before.
func (d *daemon) status() jStatus {
	d.t.Helper()
	out, errOut, code := d.clinit("--json")
	if code != 0 {
		d.t.Fatalf("clinit --json: status %d, stderr %q", code, errOut)
	}
	var st jStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		d.t.Fatalf("clinit --json: %v in %q", err, out)
	}
	return st
}

func (st jStatus) group(name string) (jGroup, bool) {
	g, ok := api.Status(st).Group(name)
	return jGroup(g), ok
}

func (g jGroup) entry(tag string) (jEntry, bool) {
	for _, e := range g.Entries {
		if e.Tag == tag {
			return jEntry(e), true
		}
	}
	return jEntry{}, false
}

func (g jGroup) tags() []string {
	var tags []string
	for _, e := range g.Entries {
		tags = append(tags, e.Tag)
	}
	sort.Strings(tags)
	return tags
}

// entry returns one entry of the JSON status; the case fails if it is
// not there.
func (d *daemon) entry(group, tag string) jEntry {
	d.t.Helper()
	g, ok := d.status().group(group)
	if !ok {
		d.t.Fatalf("no group %s in the status", group)
	}
	e, ok := g.entry(tag)
	if !ok {
		d.t.Fatalf("no entry %s in group %s of the status: %v", tag, group, g.Entries)
	}
	return e
}

// logHas reports whether one line of the daemon log contains every part.
func (d *daemon) logHas(parts ...string) bool { return d.logCount(parts...) > 0 }

// logCount counts the lines of the daemon log that contain every part.
func (d *daemon) logCount(parts ...string) int {
	n := 0
	for _, l := range strings.Split(d.log.String(), "\n") {
		all := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				all = false
				break
			}
		}
		if all {
			n++
		}
	}
	return n
}

// poll calls cond until it holds (true) or timeout passes (false).
func poll(timeout time.Duration, cond func() bool) bool { return testkit.Poll(timeout, cond) }

// eventually fails the case unless cond holds within timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for "+what, append([]any{timeout}, args...)...)
	}
}

// alive reports whether pid is a live process (a zombie is not: nobody
// may reap orphans here).
func alive(pid int) bool { return testkit.Alive(pid) }

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// lines returns the complete lines of a file (none if it is missing).
func lines(path string) []string { return testkit.Lines(path) }

// waitLines waits until path has n complete lines and returns them.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	var got []string
	if !poll(hang, func() bool { got = lines(path); return len(got) >= n }) {
		t.Fatalf("%s: %d lines %q, want %d", filepath.Base(path), len(got), got, n)
	}
	return got
}

// readPid waits for path to hold a pid (its last line, or the last field
// of it) other than not, and returns it.
func readPid(t *testing.T, path string, not int) int {
	t.Helper()
	pid := 0
	ok := poll(hang, func() bool {
		l := lines(path)
		if len(l) == 0 {
			return false
		}
		f := strings.Fields(l[len(l)-1])
		if len(f) == 0 {
			return false
		}
		p, err := strconv.Atoi(f[len(f)-1])
		if err != nil || p <= 0 || p == not {
			return false
		}
		pid = p
		return true
	})
	if !ok {
		data, _ := os.ReadFile(path)
		t.Fatalf("%s: no pid (other than %d) in %q", filepath.Base(path), not, data)
	}
	return pid
}

// waitGone waits until none of pids is alive.
func waitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	var live []int
	if !poll(hang, func() bool {
		live = live[:0]
		for _, p := range pids {
			if alive(p) {
				live = append(live, p)
			}
		}
		return len(live) == 0
	}) {
		t.Fatalf("%s: pids %v still alive", what, live)
	}
}

// gate is a shell loop that waits for a file: a wait or test entry that
// blocks until the case lets it go, with no timing involved.
func gate(path string) string {
	return "while [ ! -e " + path + " ]; do sleep 0.02; done"
}

// settle gives a daemon a moment to do something it must not do, for
// cases that check an absence. It never makes a case pass that should
// fail on a correct daemon; it only gives a wrong one the chance to show.
func settle() { time.Sleep(300 * time.Millisecond) }
