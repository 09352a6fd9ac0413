package t

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A tell to a group the cltab does not have fails with status 1.
func TestUnknownGroup(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:a:1:once:true
`, "--node", "lonely")
	out, errOut, code := d.clinit("nosuch", "1")
	if code != 1 || out != "" || errOut != "clinit: no such group: nosuch\n" {
		t.Fatalf("clinit nosuch 1: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = d.clinit("1")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "clinit: no such group: lonely (") {
		t.Fatalf("clinit 1 (node group): status %d, stdout %q, stderr %q", code, out, errOut)
	}
	if s := d.clstatLines(); len(s) != 0 {
		t.Fatalf("clstat after failed tells: %v, want empty", s)
	}
	d.tell("G", "1")
}

// With no daemon on the socket the client exits 3 and names the socket.
func TestNoDaemon(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	sock := filepath.Join(dir, "nosock")
	want := "clinit: no clinit daemon answers on " + sock + ": is clinit -d running?\n"
	for _, args := range [][]string{{"G", "1"}, {"1"}, {}, {"--status"}, {"--json"}, {"-k"}, {"-v", "G", "1"}} {
		out, errOut, code, err := runClinit(append([]string{"-s", sock}, args...)...)
		if err != nil || code != 3 || out != "" || errOut != want {
			t.Errorf("clinit -s SOCK %q: status %d, stdout %q, stderr %q; want 3 and %q", args, code, out, errOut, want)
		}
	}
	// A socket file nobody listens on is the same.
	if err := os.WriteFile(filepath.Join(dir, "plain"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code, _ := runClinit("-s", filepath.Join(dir, "plain"), "G", "1")
	if code != 3 {
		t.Errorf("clinit on a plain file as socket: status %d, stderr %q; want 3", code, errOut)
	}
}

// Usage errors exit 2 before any daemon is asked.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	sock := filepath.Join(dir, "nosock")
	for _, args := range [][]string{
		{"a", "b", "c"},
		{"--no-such-flag"},
		{"-k", "G"},
		{"-d", "-k"},
		{"--check", "-k"},
		{"-x"},
		{"G", "a,b"},
		{"G:x", "1"},
		{"G", ""},
		{"G", "1\x1b[2J"},
		{"G\x01", "1"},
		{"G", "\xff"},
		{"--watch", "n1\nnode"},
		{"--ha", "G"},
		{"--ha", "G", "start", "--prefer", "n1,n:2"},
		{"--prefer", "n1", "G", "1"},
		{"--watch", "n1", "n2"},
		{"--hastat", "--keygen"},
	} {
		out, errOut, code, err := runClinit(append([]string{"-s", sock}, args...)...)
		if err != nil || code != 2 || out != "" || !strings.HasPrefix(errOut, "clinit: ") {
			t.Errorf("clinit %q: status %d, stdout %q, stderr %q; want 2 and a message", args, code, out, errOut)
		}
	}
	out, _, code, err := runClinit("-h")
	if err != nil || code != 0 || !strings.Contains(out, "usage:") {
		t.Errorf("clinit -h: status %d, stdout %q", code, out)
	}
}

// The socket is created mode 0600.
func TestSocketMode(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "G:a:1:once:true\n")
	fi, err := os.Lstat(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
}

// A second daemon on a socket that answers is refused; the first keeps
// serving.
func TestSecondDaemonRefused(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:r:1:respawn:echo $$ > {dir}/r; exec sleep 1000
`)
	d.tellDone("G", "1")
	r := readPid(t, d.path("r"), 0)

	// Its own clstat and state directory: only the socket is shared.
	second := launch(t, d.dir, "--clstat", d.path("clstat2"), "--state-dir", d.path("state2"), "--node", "second")
	if code := second.waitExit(); code == 0 {
		t.Fatal("a second daemon on the same socket exited 0")
	}
	if !strings.Contains(second.log.String(), d.sock) {
		t.Errorf("the refusal does not name the socket:\n%s", second.log.String())
	}
	if exists(d.path("clstat2")) {
		t.Error("the refused daemon wrote its clstat")
	}
	if !exists(d.sock) {
		t.Fatal("the refused daemon removed the socket")
	}
	out, errOut, code := d.clinit("--status")
	if code != 0 || out != "G 1 DONE\n" {
		t.Fatalf("first daemon after the refusal: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	if st := d.status(); st.Node != "testnode" {
		t.Fatalf("the socket now answers for node %q", st.Node)
	}
	if e := d.entry("G", "r"); e.Pid != r || !alive(r) {
		t.Fatalf("r: %v, want pid %d", e, r)
	}
	d.tellDone("G", "2")
}

// A socket file left by a daemon killed with SIGKILL is removed by the
// next daemon, which then serves.
func TestStaleSocket(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:r:1:respawn:echo $$ > {dir}/r; exec sleep 1000
`)
	d.tell("G", "1")
	r := readPid(t, d.path("r"), 0)
	// Until the shell has become sleep: the harness finds the daemon's
	// children by their environment, which reads empty while a process
	// is in the middle of an exec, and would leave that one alive.
	eventually(t, hang, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r))
		return bytes.HasPrefix(b, []byte("sleep\x00"))
	}, "the child to exec sleep")
	d.kill9()
	if alive(r) {
		t.Fatal("the killed daemon's child survived the cleanup")
	}
	fi, err := os.Lstat(d.sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no stale socket left to test with: %v %v", fi, err)
	}
	if _, _, code := d.clinit("--status"); code != 3 {
		t.Fatalf("clinit on the stale socket: status %d, want 3", code)
	}

	// A state directory of its own: this case is about the socket, not
	// about taking over the dead daemon's groups.
	d2 := launch(t, d.dir, "--state-dir", d.path("state2"))
	d2.waitReady()
	if out, errOut, code := d2.clinit("--status"); code != 0 || out != "" {
		t.Fatalf("new daemon: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	d2.tellDone("G", "1")
	r2 := readPid(t, d2.path("r"), r)
	if !alive(r2) {
		t.Fatal("the new daemon's child is not running")
	}
	if fi, err := os.Lstat(d2.sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new socket: %v %v", fi, err)
	}
}

// A child gets CLINIT_GROUP, CLINIT_TAG, CLINIT_LEVEL and CLINIT_NODE,
// stdin from /dev/null, a process group of its own, and not the daemon's
// NOTIFY_SOCKET.
func TestChildEnvironment(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
web:env1:1,long3,:wait:echo "$CLINIT_GROUP|$CLINIT_TAG|$CLINIT_LEVEL|$CLINIT_NODE|${NOTIFY_SOCKET-unset}" > {dir}/env.$CLINIT_LEVEL
web:stdin:1:wait:readlink /proc/$$/fd/0 > {dir}/stdin
web:pgrp1:1:once:cut -d' ' -f5 /proc/$$/stat > {dir}/pgrp1
web:pgrp2:1:wait:cut -d' ' -f5 /proc/$$/stat > {dir}/pgrp2
`, "--node", "node7")
	d.tellDone("web", "1")
	d.tellDone("web", "long3")
	for file, want := range map[string]string{
		"env.1":     "web|env1|1|node7|unset",
		"env.long3": "web|env1|long3|node7|unset",
		"stdin":     "/dev/null",
	} {
		if got := strings.Join(lines(d.path(file)), "\n"); got != want {
			t.Errorf("%s: %q, want %q", file, got, want)
		}
	}
	// Its own process group: not the daemon's, not another entry's.
	waitLines(t, d.path("pgrp1"), 1)
	pg1, pg2 := lines(d.path("pgrp1"))[0], lines(d.path("pgrp2"))[0]
	if pg1 == pg2 || pg1 == strconv.Itoa(d.cmd.Process.Pid) || pg2 == strconv.Itoa(d.cmd.Process.Pid) {
		t.Errorf("process groups: once %s, wait %s, daemon %d; want three different ones", pg1, pg2, d.cmd.Process.Pid)
	}
}

// What a child writes to stdout and stderr is logged with its tag.
func TestChildOutputLogged(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	writeFile(t, filepath.Join(dir, "cltab"), "G:talker:1:wait:echo hello-out; echo hello-err >&2\n")
	logFile := filepath.Join(dir, "clinit.log")
	d := launch(t, dir, "--log", logFile)
	d.waitReady()
	d.tellDone("G", "1")
	for _, word := range []string{"hello-out", "hello-err"} {
		eventually(t, hang, func() bool { return d.logHas(word, `"tag": "talker"`) }, "%s in the log with the tag", word)
	}
	data, _ := os.ReadFile(logFile)
	if !strings.Contains(string(data), "hello-out") {
		t.Errorf("--log file lacks the child's output:\n%s", data)
	}
}

// clstat has one line per told group, sorted by group; --status and -v
// print the same.
func TestClstatFile(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
b:x:1:wait:true
a:y:2:test:true
c:z:1:once:true
`)
	if s := d.clstatLines(); len(s) != 0 {
		t.Fatalf("clstat before any tell: %v, want no line", s)
	}
	d.tell("b", "1")
	d.tell("a", "2")
	d.waitState("b", "1", "DONE")
	d.waitState("a", "2", "PASSED")
	data, _ := os.ReadFile(d.clstat)
	if string(data) != "a 2 PASSED\nb 1 DONE\n" {
		t.Fatalf("clstat %q", data)
	}
	out, _, code := d.clinit("--status")
	if code != 0 || out != string(data) {
		t.Fatalf("--status %q, clstat %q", out, data)
	}
	out, _, code = d.clinit("-v", "b", "1")
	if code != 0 || out != "b: going to level 1\n"+string(data) {
		t.Fatalf("-v: %q", out)
	}
	entries, _ := os.ReadDir(d.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".clstat") {
			t.Errorf("temporary file %s left beside clstat", e.Name())
		}
	}
}

// Only root and the daemon's own user may talk to it: the socket is 0600,
// and even through a socket opened to all, another uid is refused
// (SO_PEERCRED). The case runs the client as uid 65534, so it needs root.
func TestOtherUserRefused(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Fatal("this case runs the client as another uid and must run as root")
	}
	d := startDaemon(t, `
G:a:1:respawn:exec sleep 1000
`)
	if err := os.Chmod(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(clinitBin, append([]string{"-s", d.sock}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}

	out, errOut, code := asNobody("G", "1")
	if code != 3 || out != "" || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("another user on the 0600 socket: status %d, stdout %q, stderr %q; want 3 and permission denied", code, out, errOut)
	}

	if err := os.Chmod(d.sock, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"G", "1"}, {"--status"}, {"-k"}, {}} {
		out, errOut, code = asNobody(args...)
		if code == 0 || out != "" || !strings.Contains(errOut, "uid 65534") {
			t.Fatalf("another user through an open socket, %q: status %d, stdout %q, stderr %q; want refused", args, code, out, errOut)
		}
	}
	if s := d.clstatLines(); len(s) != 0 {
		t.Fatalf("a refused tell was done: clstat %v", s)
	}
	d.tellDone("G", "1")
}
