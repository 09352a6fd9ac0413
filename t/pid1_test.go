package t

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/clinit/clinit/internal/testkit"
)

// clinit -d as PID 1 (a container's init): orphans of its services come to
// it and are reaped, SIGTERM (which PID 1 would ignore without a handler)
// stops every group gracefully, and it exits 0.

// pid1Env marks the test binary started as the first process of a new PID
// and mount namespace: TestMain then calls pid1Exec.
const pid1Env = "CLT_PID1_EXEC"

// pid1Exec mounts a /proc of the new PID namespace (the daemon reads its
// children there, by the pids it knows them by) in a mount namespace of
// its own, then execs os.Args[1:]: the daemon, which thus is PID 1.
func pid1Exec() {
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "t: pid1: %s: %v\n", what, err)
		os.Exit(111)
	}
	// Private first, so that the new /proc does not reach the host.
	if err := syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		fail("making / private", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		fail("mounting /proc", err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, pid1Env+"=") {
			env = append(env, kv)
		}
	}
	fail("exec", syscall.Exec(os.Args[1], os.Args[1:], env))
}

// inPIDNamespace makes a daemon command start as PID 1 of new PID and
// mount namespaces, through pid1Exec.
func inPIDNamespace(cmd *exec.Cmd) {
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	cmd.Args = append([]string{self}, cmd.Args...)
	cmd.Args[1] = cmd.Path
	cmd.Path = self
	cmd.Env = append(cmd.Env, pid1Env+"=1")
	cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWPID | syscall.CLONE_NEWNS
}

// procStatus reads the fields of /proc/PID/status (seen from the host).
func procStatus(pid int) map[string]string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// zombieChildren lists the zombies whose parent is pid: orphans it was
// given and has not reaped.
func zombieChildren(pid int) []int {
	var out []int
	want := strconv.Itoa(pid)
	for _, p := range testkit.Pids() {
		st := procStatus(p)
		if st["PPid"] == want && strings.HasPrefix(st["State"], "Z") {
			out = append(out, p)
		}
	}
	return out
}

// hostPid maps a pid in the PID namespace of process ns (a host pid) to
// the host's pid of the same process; 0 if there is none.
func hostPid(ns, nsPid int) int {
	nsLink, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", ns))
	if err != nil {
		return 0
	}
	for _, p := range testkit.Pids() {
		f := strings.Fields(procStatus(p)["NSpid"])
		if len(f) < 2 || f[len(f)-1] != strconv.Itoa(nsPid) {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err == nil && l == nsLink {
			return p
		}
	}
	return 0
}

func TestPID1(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	// svc leaves orphans (one short-lived, one that lives on) and writes
	// a file when SIGTERM reaches it; churn leaves three short-lived
	// orphans on each of its runs.
	writeFile(t, dir+"/cltab", expand(dir, `
:::respawnwindow:100ms
g:svc:1:once:trap 'echo TERM > {dir}/svc.term; exit 0' TERM; (sleep 0.1 &); (sleep 1000 & echo $! > {dir}/orphan.pid); while :; do sleep 0.1; done
g:churn:1:respawn:echo $$ >> {dir}/churn; for i in 1 2 3; do (sleep 0.05 &); done; sleep 0.3
`))
	d := launchWith(t, dir, inPIDNamespace)
	d.waitReady()
	pid := d.cmd.Process.Pid
	if ns := strings.Fields(procStatus(pid)["NSpid"]); len(ns) != 2 || ns[1] != "1" {
		t.Fatalf("the daemon (host pid %d) is not PID 1 of a namespace of its own: NSpid %q", pid, ns)
	}

	d.tellDone("g", "1")

	// An orphan is reparented to PID 1, the daemon.
	orphan := hostPid(pid, readPid(t, d.path("orphan.pid"), 0))
	if orphan == 0 {
		t.Fatal("the orphan that lives on is not found in the namespace")
	}
	if pp := procStatus(orphan)["PPid"]; pp != strconv.Itoa(pid) {
		t.Fatalf("orphan %d has parent %s, want the daemon %d", orphan, pp, pid)
	}

	// Orphans keep coming and exiting; none stays a zombie. (A zombie may
	// be seen for the moment between its exit and its reaping, so the
	// case asks for a moment with none, after several runs of churn.)
	waitLines(t, d.path("churn"), 4)
	var zombies []int
	if !poll(hang, func() bool { zombies = zombieChildren(pid); return len(zombies) == 0 }) {
		t.Fatalf("zombies of PID 1 are not reaped: %v", zombies)
	}

	// SIGTERM stops every group gracefully; the daemon exits 0.
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.waitExit(); code != 0 {
		t.Fatalf("daemon exited %d after SIGTERM, want 0", code)
	}
	if !exists(d.path("svc.term")) {
		t.Error("svc did not get SIGTERM before the daemon exited")
	}
	for _, part := range []string{"signal: stopping", "every group stopped"} {
		if !d.logHas(part) {
			t.Errorf("no %q in the log", part)
		}
	}
	if exists(d.clstat) {
		t.Error("clstat left behind after a graceful stop")
	}
	waitGone(t, "the orphan", orphan)
}
