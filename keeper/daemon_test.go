package keeper

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The daemon is SIGKILLed, or frozen with SIGSTOP, after it started its
// group: the keeper stops the group at the deadline all the same, the
// process it never watched included, and a new client reads what
// happened.
func TestDaemonKilledOrFrozen(t *testing.T) {
	for name, sig := range map[string]syscall.Signal{"SIGKILL": syscall.SIGKILL, "SIGSTOP": syscall.SIGSTOP} {
		t.Run(name, func(t *testing.T) {
			dir := keeperDir(t)
			d := startStandIn(t, dir, 500*time.Millisecond)
			must(t, unix.Kill(d.cmd.Process.Pid, sig))
			for _, p := range d.children {
				at := waitGone(t, p, time.Duration(d.deadline-BoottimeNow())+bound)
				if at < d.deadline || at > d.deadline+int64(bound) {
					t.Errorf("pid %d gone at deadline%+v, want within [0, %s]", p, time.Duration(at-d.deadline), bound)
				}
			}
			c, err := Dial(dir)
			must(t, err)
			defer c.Close()
			st, err := c.State(ctxT(t))
			must(t, err)
			if st.Pid != d.keeper || st.Lapses != 1 || st.Last.Deadline != d.deadline {
				t.Fatalf("state: %+v, want the stand-in's keeper %d after one lapse at %d", st, d.keeper, d.deadline)
			}
			if got := pids(st.Last.Termed); !slices.Equal(got, sorted(d.children...)) {
				t.Errorf("termed %v, want %v", got, sorted(d.children...))
			}
			for _, s := range st.Last.Termed {
				if want := map[bool]string{true: "environ", false: "watched"}[s.Pid == d.unwatched]; s.Why != want {
					t.Errorf("pid %d termed as %s, want %s", s.Pid, s.Why, want)
				}
			}
			if sig == syscall.SIGKILL {
				// The keeper's stderr was a pipe to the dead daemon: its
				// lines, the lapse's, went to its file instead.
				waitFileHas(t, filepath.Join(dir, LogName), "stderr failed", "\tlapse\t")
			}
		})
	}
}

// A daemon restarted within the lease takes the keeper over: it finds
// the same keeper, its held group and watched processes, and renews; the
// group outlives the old deadline and stops at the renewed one.
func TestRestartedDaemonReadopts(t *testing.T) {
	dir := keeperDir(t)
	d := startStandIn(t, dir, 2*time.Second)
	must(t, unix.Kill(d.cmd.Process.Pid, syscall.SIGKILL))
	ctx := ctxT(t)
	c, st, err := Ensure(ctx, dir, "n1", func([]string) error {
		t.Fatal("Ensure started a keeper while one runs")
		return nil
	})
	must(t, err)
	defer c.Close()
	var watched []int
	for _, w := range st.Watched {
		watched = append(watched, w.Pid)
	}
	if st.Pid != d.keeper || st.Deadline != d.deadline || !slices.Equal(st.Held, []string{"web"}) ||
		!slices.Equal(watched, sorted(d.children[:2]...)) || st.Lapses != 0 {
		t.Fatalf("re-adopted state %+v, want keeper %d, deadline %d, web held, %v watched, no lapse", st, d.keeper, d.deadline, d.children[:2])
	}
	renewed := d.deadline + int64(500*time.Millisecond)
	must(t, c.Lease(ctx, renewed, time.Second))
	for _, p := range d.children {
		at := waitGone(t, p, time.Duration(renewed-BoottimeNow())+bound)
		if at < renewed {
			t.Errorf("pid %d stopped at the old deadline%+v, before the renewed one (+500ms)", p, time.Duration(at-d.deadline))
		}
	}
	st, err = c.State(ctx)
	must(t, err)
	if st.Lapses != 1 || st.Last.Deadline != renewed {
		t.Errorf("lapses %d at %d, want one, at the renewed deadline %d", st.Lapses, st.Last.Deadline, renewed)
	}
}

// A new daemon connection replaces the old one at its first request for
// a change (not at a state request), and the old one learns it at once;
// a keeper that dies breaks the connection too.
func TestBrokenConnection(t *testing.T) {
	k, c1 := startKeeper(t, "n1")
	ctx := ctxT(t)
	c2, err := Dial(k.dir)
	must(t, err)
	defer c2.Close()
	if _, err := c2.State(ctx); err != nil {
		t.Fatal(err)
	}
	// Only reading: the daemon's connection stays.
	if err := c1.Lease(ctx, BoottimeNow()+int64(time.Hour), time.Second); err != nil {
		t.Fatalf("the daemon's connection after another's state request: %v", err)
	}
	must(t, c2.Lease(ctx, BoottimeNow()+int64(time.Hour), time.Second))
	select {
	case <-c1.Done():
	case <-time.After(bound):
		t.Fatal("the replaced connection did not learn it")
	}
	if err := c1.Hold(context.Background(), "web"); err == nil || !errors.Is(err, ErrBroken) {
		t.Errorf("request on a replaced connection: %v, want ErrBroken", err)
	}
	k.cmd.Process.Kill()
	select {
	case <-c2.Done():
		t.Logf("after the keeper died: %v", c2.Err())
	case <-time.After(bound):
		t.Fatal("the connection to a dead keeper did not break")
	}
}

// Ensure refuses a keeper that serves another node, and one that never
// answers, with the socket's name.
func TestEnsureRefuses(t *testing.T) {
	k, _ := startKeeper(t, "n1")
	_, _, err := Ensure(ctxT(t), k.dir, "n2", func([]string) error {
		t.Fatal("Ensure started a keeper while one runs")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "serves node n1, not n2") {
		t.Errorf("Ensure for another node: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	dir := keeperDir(t)
	_, _, err = Ensure(ctx, dir, "n1", func([]string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "did not answer") || !strings.Contains(err.Error(), dir) {
		t.Errorf("Ensure with a keeper that never starts: %v", err)
	}
}

// A frozen keeper answers nothing: the request's deadline breaks the
// connection, so that the daemon learns it from Done as from a dead one.
func TestFrozenKeeperBreaksTheConnection(t *testing.T) {
	k, c := startKeeper(t, "n1")
	must(t, k.cmd.Process.Signal(syscall.SIGSTOP))
	defer k.cmd.Process.Signal(syscall.SIGCONT)
	waitState(t, k.cmd.Process.Pid, 'T')
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.Lease(ctx, BoottimeNow()+int64(time.Hour), time.Second)
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "did not answer lease") {
		t.Errorf("lease to a frozen keeper: %v, want ErrBroken naming the request", err)
	}
	select {
	case <-c.Done():
	case <-time.After(bound):
		t.Fatal("Done did not close after a request went unanswered")
	}
	if !errors.Is(c.Err(), ErrBroken) {
		t.Errorf("Err after the break: %v", c.Err())
	}
}

// waitFileHas polls path (with a deadline) until it holds every one of
// wants.
func waitFileHas(t *testing.T, path string, wants ...string) {
	t.Helper()
	end := time.Now().Add(bound)
	var b []byte
	for time.Now().Before(end) {
		b, _ = os.ReadFile(path)
		all := true
		for _, w := range wants {
			all = all && bytes.Contains(b, []byte(w))
		}
		if all {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s lacks one of %q after %s:\n%s", path, wants, bound, b)
}

// waitState polls /proc (with a deadline) until pid is in state s.
func waitState(t *testing.T, pid int, s byte) {
	t.Helper()
	end := time.Now().Add(bound)
	for time.Now().Before(end) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := bytes.LastIndexByte(b, ')'); err == nil && i >= 0 && i+2 < len(b) && b[i+2] == s {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("pid %d not in state %c within %s", pid, s, bound)
}

// Ensure refuses a keeper of another protocol version. The old keeper
// is a mock (a listener that answers one state request): no other
// version of the real one exists yet.
func TestEnsureRefusesOtherProtocol(t *testing.T) {
	dir := keeperDir(t)
	ln, err := net.Listen("unix", filepath.Join(dir, SocketName))
	must(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		fmt.Fprintln(c, `{"id":1,"state":{"protocol":0,"node":"n1","pid":4242}}`)
	}()
	_, _, err = Ensure(ctxT(t), dir, "n1", func([]string) error {
		t.Fatal("Ensure started a keeper while one answers")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "(pid 4242) speaks protocol 0, not 1") {
		t.Errorf("Ensure with a protocol 0 keeper: %v", err)
	}
}

// A daemon whose binary was replaced on disk (an upgrade) still starts a
// keeper: its own binary, through /proc/self/exe.
func TestEnsureAfterUpgrade(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "clinit")
	data, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	d := startStandInWith(t, standInOpts{bin: bin, upgrade: true}, keeperDir(t), 200*time.Millisecond)
	for _, p := range d.children {
		waitGone(t, p, time.Duration(d.deadline-BoottimeNow())+bound)
	}
}

// A frozen daemon does not reap its children: at the end of the grace a
// watched leader that died of SIGTERM is a zombie, and its group's
// member that ignores SIGTERM, with a cleared environment, is found only
// as that group. It gets SIGKILL with the group.
func TestFrozenDaemonZombieLeader(t *testing.T) {
	dir := keeperDir(t)
	d := startStandInWith(t, standInOpts{grouped: true}, dir, 300*time.Millisecond)
	if d.member == 0 {
		t.Fatal("the stand-in found no member in its shell's group")
	}
	must(t, unix.Kill(d.cmd.Process.Pid, syscall.SIGSTOP))
	const stop = 200 * time.Millisecond // the stand-in's stop timeout
	at := waitGone(t, d.member, time.Duration(d.deadline-BoottimeNow())+stop+bound)
	if at < d.deadline+int64(stop) {
		t.Errorf("the member died at deadline%+v, before the stop timeout %s", time.Duration(at-d.deadline), stop)
	}
	c, err := Dial(dir)
	must(t, err)
	defer c.Close()
	st := waitLapseDone(t, c)
	killed := false
	for _, s := range st.Last.Killed {
		killed = killed || (s.Pid == d.grouped && s.Whole)
	}
	if !killed {
		t.Errorf("killed %+v, want the group of %d", st.Last.Killed, d.grouped)
	}
}
