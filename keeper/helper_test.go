package keeper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The stand-in daemon: the test binary run with helperEnv set to a
// keeper directory. It does what the daemon does before it starts an HA
// group (Ensure a keeper, lease, hold, start, watch), prints what it
// did, and waits on stdin; the tests then kill or freeze it.
const helperEnv = "KEEPER_TEST_DAEMON"

func helperDaemon() int {
	dir := os.Getenv(helperEnv)
	lease, _ := time.ParseDuration(os.Getenv("KEEPER_TEST_LEASE"))
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "stand-in daemon:", err); return 1 }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if os.Getenv("KEEPER_TEST_UPGRADE") != "" {
		// Our binary is being replaced: wait until it is gone.
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fail(err)
		}
	}
	// The keeper's stderr is a pipe this process reads, as the daemon's
	// reaper captures its children's output: it breaks when we die.
	c, _, err := Ensure(ctx, dir, "n1", func(argv []string) error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		r, err := cmd.StderrPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		go io.Copy(os.Stderr, r)
		fmt.Printf("keeper %d\n", cmd.Process.Pid)
		return nil
	})
	if err != nil {
		return fail(err)
	}
	// A long lease for the setup, however slow the machine; the short
	// one once everything runs.
	if err := c.Lease(ctx, BoottimeNow()+int64(time.Hour), 200*time.Millisecond); err != nil {
		return fail(err)
	}
	if err := c.Hold(ctx, "web"); err != nil {
		return fail(err)
	}
	start := func(argv ...string) (*exec.Cmd, error) {
		if len(argv) == 0 {
			argv = []string{"sleep", "1000"}
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{"CLINIT_NODE=n1", "CLINIT_GROUP=web", "CLINIT_TAG=srv"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd, cmd.Start()
	}
	startWatched := func(argv ...string) (*exec.Cmd, error) {
		cmd, err := start(argv...)
		if err != nil {
			return nil, err
		}
		st, err := ProcStartTime(cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		return cmd, c.Watch(ctx, "web", cmd.Process.Pid, st)
	}
	for range 2 {
		cmd, err := startWatched()
		if err != nil {
			return fail(err)
		}
		fmt.Printf("watched %d\n", cmd.Process.Pid)
	}
	// Started, and the daemon "dies" before its watch: only the
	// environment names it.
	cmd, err := start()
	if err != nil {
		return fail(err)
	}
	fmt.Printf("unwatched %d\n", cmd.Process.Pid)
	// The unwatched one must run its own program before the lapse, for
	// its environment to be found: like waitExec, poll /proc.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(b)) == "sleep" {
			break
		}
	}
	if os.Getenv("KEEPER_TEST_GROUPED") != "" {
		// A watched shell whose child, in its process group, clears its
		// environment and ignores SIGTERM: only the group names it.
		cmd, err := startWatched("sh", "-c", `env -i sh -c 'trap "" TERM; exec sleep 1000' & wait`)
		if err != nil {
			return fail(err)
		}
		member := 0
		for end := time.Now().Add(10 * time.Second); member == 0 && time.Now().Before(end); time.Sleep(time.Millisecond) {
			eachPid(func(pid int) bool {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				if st, err := readStat(pid); err == nil && st.pgid == cmd.Process.Pid && pid != st.pgid && strings.TrimSpace(string(b)) == "sleep" {
					member = pid
				}
				return member == 0
			})
		}
		fmt.Printf("grouped %d\n", cmd.Process.Pid)
		fmt.Printf("member %d\n", member)
	}
	deadline := BoottimeNow() + int64(lease)
	if err := c.Lease(ctx, deadline, 200*time.Millisecond); err != nil {
		return fail(err)
	}
	fmt.Printf("deadline %d\n", deadline)
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// standIn is a running stand-in daemon, as the test sees it.
type standIn struct {
	cmd       *exec.Cmd
	keeper    int
	children  []int // watched, then the unwatched one
	unwatched int
	deadline  int64
	// With grouped: the watched shell and its environment-less member.
	grouped, member int
}

// startStandIn runs the stand-in daemon with lease and reads what it
// did. Its children and its keeper come to this process (a subreaper)
// when it dies; cleanup kills them all.
func startStandIn(t *testing.T, dir string, lease time.Duration) *standIn {
	t.Helper()
	return startStandInWith(t, standInOpts{}, dir, lease)
}

// standInOpts vary the stand-in daemon.
type standInOpts struct {
	// bin is the binary to run (default: this test binary); with
	// upgrade it is removed once the stand-in runs, before it starts its
	// keeper, as an upgrade replaces the binary under a running daemon.
	bin     string
	upgrade bool
	grouped bool // also start the group of standIn.grouped
}

func startStandInWith(t *testing.T, o standInOpts, dir string, lease time.Duration) *standIn {
	t.Helper()
	bin := o.bin
	if bin == "" {
		bin = os.Args[0]
	}
	upgrade := o.upgrade
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir, "KEEPER_TEST_LEASE="+lease.String())
	if upgrade {
		cmd.Env = append(cmd.Env, "KEEPER_TEST_UPGRADE=1")
	}
	if o.grouped {
		cmd.Env = append(cmd.Env, "KEEPER_TEST_GROUPED=1")
	}
	cmd.Stderr = &testLog{t: t, prefix: "stand-in daemon: "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	must(t, err)
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	if upgrade {
		must(t, os.Remove(bin))
		_, err := io.WriteString(stdin, "go\n")
		must(t, err)
	}
	s := &standIn{cmd: cmd}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		unix.Kill(cmd.Process.Pid, unix.SIGCONT)
		cmd.Wait()
		for _, p := range append(s.children, s.grouped, s.member) {
			if p > 0 {
				unix.Kill(-p, unix.SIGKILL)
				unix.Wait4(p, nil, unix.WNOHANG, nil)
			}
		}
		if s.keeper > 0 {
			unix.Kill(s.keeper, unix.SIGKILL)
			unix.Wait4(s.keeper, nil, 0, nil)
		}
	})
	r := bufio.NewReader(out)
	for {
		f := strings.Fields(readLine(t, r))
		if len(f) != 2 {
			t.Fatalf("stand-in daemon said %q", f)
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		must(t, err)
		switch f[0] {
		case "keeper":
			s.keeper = int(n)
		case "watched":
			s.children = append(s.children, int(n))
		case "unwatched":
			s.children = append(s.children, int(n))
			s.unwatched = int(n)
		case "grouped":
			s.grouped = int(n)
		case "member":
			s.member = int(n)
		case "deadline":
			s.deadline = n
			return s
		}
	}
}

// testLog passes a child's stderr to t.Log.
type testLog struct {
	t      *testing.T
	prefix string
}

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Log(l.prefix + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitGone waits for pid (not necessarily our child) to exit, through a
// pidfd, and returns the CLOCK_BOOTTIME instant it did. It reaps pid if
// it has become our child.
func waitGone(t *testing.T, pid int, limit time.Duration) int64 {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	defer unix.Close(fd)
	end := time.Now().Add(limit)
	var n int
	for {
		n, err = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(time.Until(end)/time.Millisecond))
		if err != unix.EINTR {
			break
		}
	}
	at := BoottimeNow()
	if n != 1 {
		t.Fatalf("pid %d still runs after %s (%v)", pid, limit, err)
	}
	unix.Wait4(pid, nil, unix.WNOHANG, nil)
	return at
}

// dialEnv makes the test binary a peer that sends one state request to
// the socket it names and prints the reply, or "closed".
const dialEnv = "KEEPER_TEST_DIAL"

func dialOnce(sock string) int {
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(c, `{"id":1,"op":"state"}`)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Println("closed")
		return 0
	}
	fmt.Print(line)
	return 0
}
