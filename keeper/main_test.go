package keeper

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/internal/testkit"
)

// The test binary is also the keeper (as clinit is) and the stand-in
// daemon of helper_test.go.
func TestMain(m *testing.M) {
	if Wanted(os.Args[1:]) {
		os.Exit(Main(os.Args[1:], os.Stderr))
	}
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperDaemon())
	}
	if sock := os.Getenv(dialEnv); sock != "" {
		os.Exit(dialOnce(sock))
	}
	// Children of a killed stand-in daemon come to us, to be waited for.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// bound is the generous limit on "at once" in these tests: it catches a
// keeper that does not act, not one that is a little slow.
const bound = 5 * time.Second

// runningKeeper is a keeper process started by a test.
type runningKeeper struct {
	dir  string
	cmd  *exec.Cmd
	log  *testkit.Buffer
	exit chan error // receives cmd.Wait's result once
}

// keeperDir makes a directory for a keeper's socket.
func keeperDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "k")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startKeeper starts a keeper for node through Ensure, as the daemon
// will, and returns it with a client connected.
func startKeeper(t *testing.T, node string, extra ...string) (*runningKeeper, *Client) {
	t.Helper()
	k := &runningKeeper{dir: keeperDir(t), log: &testkit.Buffer{}, exit: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, st, err := Ensure(ctx, k.dir, node, func(argv []string) error {
		k.cmd = exec.Command(argv[0], append(argv[1:], extra...)...)
		k.cmd.Stderr = k.log
		k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := k.cmd.Start(); err != nil {
			return err
		}
		go func() { k.exit <- k.cmd.Wait() }()
		return nil
	})
	if err != nil {
		t.Fatalf("Ensure: %v\nkeeper log:\n%s", err, k.log)
	}
	if k.cmd == nil || st.Pid != k.cmd.Process.Pid {
		t.Fatalf("Ensure did not start a keeper, or answered from another one (state pid %d)", st.Pid)
	}
	t.Cleanup(func() {
		c.Close()
		k.cmd.Process.Kill()
		<-k.exit
		// Under -race the keeper is instrumented too: its reports go to
		// its log.
		if strings.Contains(k.log.String(), "DATA RACE") {
			t.Error("the keeper reported a data race")
		}
		if t.Failed() {
			t.Logf("keeper log:\n%s", k.log)
		}
	})
	return k, c
}

// keeperHoldingWeb starts a keeper for n1 (extra: more flags) that holds
// web under a lease of an hour (long enough for any setup, however slow
// the machine), with stop as the stop timeout; it returns the keeper, its
// client and a context for requests.
func keeperHoldingWeb(t *testing.T, stop time.Duration, extra ...string) (*runningKeeper, *Client, context.Context) {
	t.Helper()
	k, c := startKeeper(t, "n1", extra...)
	ctx := ctxT(t)
	must(t, c.Lease(ctx, BoottimeNow()+int64(time.Hour), stop))
	must(t, c.Hold(ctx, "web"))
	return k, c, ctx
}

// waitExit fails the test unless the keeper exits with status 0 within
// limit; what names the keeper in the failure.
func (k *runningKeeper) waitExit(t *testing.T, limit time.Duration, what string) {
	t.Helper()
	select {
	case err := <-k.exit:
		k.exit <- err // for the cleanup
		if err != nil {
			t.Fatalf("%s: %v, want exit status 0", what, err)
		}
	case <-time.After(limit):
		t.Fatalf("%s: did not exit within %s", what, limit)
	}
}

// ctxT is a test's context for requests: a guard against hangs only.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// child is a process in its own process group, waited for by a test.
type child struct {
	pid   int
	start uint64
	exit  chan childExit // receives once
}

type childExit struct {
	at     int64 // CLOCK_BOOTTIME ns when the wait returned
	signal syscall.Signal
	status unix.WaitStatus
}

// startChild runs argv in its own process group with the CLINIT_*
// variables in env (node, group; empty: left out), and returns once it
// runs its own program (so its /proc environ is its own).
func startChild(t *testing.T, node, group, comm string, argv ...string) *child {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if node != "" {
		cmd.Env = append(cmd.Env, "CLINIT_NODE="+node)
	}
	if group != "" {
		cmd.Env = append(cmd.Env, "CLINIT_GROUP="+group, "CLINIT_TAG=t", "CLINIT_LEVEL=start")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{pid: cmd.Process.Pid, exit: make(chan childExit, 1)}
	go func() {
		cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		e := childExit{at: BoottimeNow(), status: unix.WaitStatus(ws)}
		if ws.Signaled() {
			e.signal = ws.Signal()
		}
		c.exit <- e
	}()
	t.Cleanup(func() { unix.Kill(-c.pid, unix.SIGKILL) })
	var err error
	if c.start, err = ProcStartTime(c.pid); err != nil {
		t.Fatal(err)
	}
	waitExec(t, c.pid, comm)
	return c
}

// sleeper starts `sleep 1000` for node and group.
func sleeper(t *testing.T, node, group string) *child {
	return startChild(t, node, group, "sleep", "sleep", "1000")
}

// termIgnorer starts a `sleep` that ignores SIGTERM.
func termIgnorer(t *testing.T, node, group string) *child {
	t.Helper()
	return startChild(t, node, group, "sleep", "sh", "-c", "trap '' TERM; exec sleep 1000")
}

// waitExec waits (polling /proc, with a deadline) until pid runs the
// program named comm: then its environment is its own, and a shell's
// trap is set.
func waitExec(t *testing.T, pid int, comm string) {
	t.Helper()
	end := time.Now().Add(bound)
	for time.Now().Before(end) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(b)) == comm {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("pid %d did not exec %s within %s", pid, comm, bound)
}

// waitExit returns how c ended, failing the test after limit.
func (c *child) waitExit(t *testing.T, limit time.Duration) childExit {
	t.Helper()
	select {
	case e := <-c.exit:
		return e
	case <-time.After(limit):
		t.Fatalf("pid %d still runs after %s", c.pid, limit)
		return childExit{}
	}
}

// running reports whether c has not exited.
func (c *child) running() bool {
	select {
	case e := <-c.exit:
		c.exit <- e
		return false
	default:
	}
	// A pidfd turns readable at the exit, before the wait reaps it.
	fd, err := unix.PidfdOpen(c.pid, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	return n == 0
}

// readLine reads one line of a stand-in daemon's stdout.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	s, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the stand-in daemon's output: %v", err)
	}
	return strings.TrimSpace(s)
}
