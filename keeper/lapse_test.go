package keeper

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// At the deadline the watched groups get SIGTERM; one that ignores it
// gets SIGKILL after the stop timeout; the record says so; the group
// stays held.
func TestLapseStopsWatchedGroups(t *testing.T) {
	const stop = 400 * time.Millisecond
	_, c, ctx := keeperHoldingWeb(t, stop)
	a := sleeper(t, "n1", "web")
	b := termIgnorer(t, "n1", "web")
	must(t, c.Watch(ctx, "web", a.pid, a.start))
	must(t, c.Watch(ctx, "web", b.pid, b.start))
	deadline := BoottimeNow() + int64(300*time.Millisecond)
	must(t, c.Lease(ctx, deadline, stop))

	ea := a.waitExit(t, 300*time.Millisecond+bound)
	eb := b.waitExit(t, 300*time.Millisecond+stop+bound)
	if ea.signal != syscall.SIGTERM || ea.at < deadline || ea.at > deadline+int64(bound) {
		t.Errorf("plain sleep: signal %v at deadline%+v, want SIGTERM within [0, %s]", ea.signal, time.Duration(ea.at-deadline), bound)
	}
	if eb.signal != syscall.SIGKILL || eb.at < deadline+int64(stop) || eb.at > deadline+int64(stop+bound) {
		t.Errorf("TERM-ignoring sleep: signal %v at deadline%+v, want SIGKILL within [%s, %s]", eb.signal, time.Duration(eb.at-deadline), stop, stop+bound)
	}
	t.Logf("SIGTERM'd %s after the deadline, SIGKILL'd %s after the deadline (stop timeout %s)",
		time.Duration(ea.at-deadline), time.Duration(eb.at-deadline), stop)

	st, err := c.State(ctx)
	must(t, err)
	if st.Lapses != 1 || st.Last == nil || !st.Last.Done || st.Last.Deadline != deadline {
		t.Fatalf("state after the lapse: %+v, last %+v", st, st.Last)
	}
	termed := pids(st.Last.Termed)
	if !slices.Equal(termed, sorted(a.pid, b.pid)) || !slices.Equal(pids(st.Last.Killed), []int{b.pid}) {
		t.Errorf("lapse termed %v killed %v, want termed %v killed [%d]", termed, pids(st.Last.Killed), sorted(a.pid, b.pid), b.pid)
	}
	for _, s := range st.Last.Termed {
		if !s.Whole || s.Why != "watched" || s.Group != "web" {
			t.Errorf("termed %+v, want the whole group, why watched, group web", s)
		}
	}
	if !slices.Equal(st.Held, []string{"web"}) {
		t.Errorf("held after the lapse: %v, want [web]", st.Held)
	}
	// A lease that lapsed cannot be renewed into a start: hold refuses.
	if err := c.Hold(ctx, "db"); err == nil {
		t.Errorf("hold after the lapse succeeded, want a refusal")
	}
}

// Renewals move the deadline: the group runs past the first deadlines.
// Then they stop, and the group is stopped.
func TestRenewalsKeepGroupsRunning(t *testing.T) {
	_, c := startKeeper(t, "n1")
	ctx := ctxT(t)
	const lease = time.Second
	first := BoottimeNow() + int64(lease)
	must(t, c.Lease(ctx, first, time.Second))
	must(t, c.Hold(ctx, "web"))
	a := sleeper(t, "n1", "web")
	must(t, c.Watch(ctx, "web", a.pid, a.start))
	// Renew every 100 ms until a lease past the first deadline.
	tick := time.NewTicker(100 * time.Millisecond)
	var last int64
	for BoottimeNow() < first+int64(lease) {
		<-tick.C
		last = BoottimeNow() + int64(lease)
		must(t, c.Lease(ctx, last, time.Second))
	}
	tick.Stop()
	st, err := c.State(ctx)
	must(t, err)
	if !a.running() || st.Lapses != 0 || st.Deadline != last {
		t.Fatalf("with renewals: running %t, lapses %d, deadline %d (want %d)", a.running(), st.Lapses, st.Deadline, last)
	}
	e := a.waitExit(t, lease+bound)
	if e.signal != syscall.SIGTERM || e.at < last {
		t.Errorf("after the renewals stopped: signal %v at deadline%+v", e.signal, time.Duration(e.at-last))
	}
}

// A lease may move the deadline earlier, into the past: the lapse is at
// once. A process watched after that is stopped at once too.
func TestEarlierDeadlineAndLateWatch(t *testing.T) {
	_, c, ctx := keeperHoldingWeb(t, 100*time.Millisecond)
	a := sleeper(t, "n1", "web")
	must(t, c.Watch(ctx, "web", a.pid, a.start))
	now := BoottimeNow()
	must(t, c.Lease(ctx, now-1, 100*time.Millisecond))
	if e := a.waitExit(t, bound); e.signal != syscall.SIGTERM {
		t.Errorf("after an earlier deadline: %v, want SIGTERM", e.signal)
	}
	// The daemon did not notice and started another: it is stopped too.
	b := sleeper(t, "n1", "other")
	must(t, c.Watch(ctx, "web", b.pid, b.start))
	if e := b.waitExit(t, bound); e.signal != syscall.SIGTERM {
		t.Errorf("watched after the deadline: %v, want SIGTERM", e.signal)
	}
	st, err := c.State(ctx)
	must(t, err)
	if st.Lapses != 2 {
		t.Errorf("lapses %d, want 2 (the deadline, then the late watch)", st.Lapses)
	}
}

// A watch whose start time is not the pid's is refused, and that
// process is not signalled at the lapse; the environment scan finds an
// unwatched process of a held group on this node, and leaves alone
// other nodes', other groups' and unmarked processes.
func TestLapseSignalsOnlyTheHeldGroupsProcesses(t *testing.T) {
	_, c, ctx := keeperHoldingWeb(t, 100*time.Millisecond)
	reused := sleeper(t, "", "")
	if err := c.Watch(ctx, "web", reused.pid, reused.start+1); err == nil {
		t.Fatalf("watch with a wrong start time succeeded")
	} else {
		t.Logf("wrong start time: %v", err)
	}
	unwatched := sleeper(t, "n1", "web")
	// A shell and its child: the group is signalled whole.
	member := startChild(t, "n1", "web", "sh", "sh", "-c", "sleep 1000 & wait")
	otherNode := sleeper(t, "n2", "web")
	otherGroup := sleeper(t, "n1", "db")
	sameNameNoNode := sleeper(t, "", "web")
	must(t, c.Lease(ctx, BoottimeNow()+int64(200*time.Millisecond), 100*time.Millisecond))

	if e := unwatched.waitExit(t, bound); e.signal != syscall.SIGTERM {
		t.Errorf("unwatched process of web on n1: %v, want SIGTERM", e.signal)
	}
	member.waitExit(t, bound)
	st := waitLapseDone(t, c)
	for name, ch := range map[string]*child{"reused pid": reused, "other node": otherNode,
		"other group": otherGroup, "no node": sameNameNoNode} {
		if !ch.running() {
			t.Errorf("%s (pid %d) was stopped", name, ch.pid)
		}
	}
	for _, s := range st.Last.Termed {
		if s.Why != "environ" || s.Group != "web" {
			t.Errorf("termed %+v, want only processes found by environ in web", s)
		}
	}
	if got := pids(st.Last.Termed); !slices.Contains(got, unwatched.pid) || !slices.Contains(got, member.pid) {
		t.Errorf("termed %v, want %d and %d among them", got, unwatched.pid, member.pid)
	}
}

// waitLapseDone polls the keeper's state (with a deadline) until a lapse
// has run its SIGKILL round.
func waitLapseDone(t *testing.T, c *Client) *State {
	t.Helper()
	end := time.Now().Add(2 * bound)
	for time.Now().Before(end) {
		st, err := c.State(ctxT(t))
		must(t, err)
		if st.Last != nil && st.Last.Done {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no lapse done within %s", 2*bound)
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pids(ss []Signalled) []int {
	var out []int
	for _, s := range ss {
		out = append(out, s.Pid)
	}
	slices.Sort(out)
	return out
}

func sorted(p ...int) []int {
	slices.Sort(p)
	return p
}

// A keeper told to go while it holds a group stops the group first:
// after it, nothing would bound the group.
func TestSignalledKeeperStopsHeldGroups(t *testing.T) {
	k, c, ctx := keeperHoldingWeb(t, 200*time.Millisecond)
	a := termIgnorer(t, "n1", "web")
	must(t, c.Watch(ctx, "web", a.pid, a.start))
	must(t, k.cmd.Process.Signal(syscall.SIGTERM))
	if e := a.waitExit(t, bound); e.signal != syscall.SIGKILL {
		t.Errorf("group of a SIGTERMed keeper: %v, want SIGKILL after the stop timeout", e.signal)
	}
	k.waitExit(t, bound, "SIGTERMed keeper, after stopping the group")
}

// A process of a held group that starts between the SIGTERM round and
// the SIGKILL round, never watched, gets SIGKILL at the end of the grace
// while the lease is still lapsed.
func TestLapseKillsLateStarters(t *testing.T) {
	const stop = 500 * time.Millisecond
	_, c, ctx := keeperHoldingWeb(t, stop)
	a := sleeper(t, "n1", "web")
	must(t, c.Watch(ctx, "web", a.pid, a.start))
	deadline := BoottimeNow() + int64(200*time.Millisecond)
	must(t, c.Lease(ctx, deadline, stop))
	a.waitExit(t, bound)
	// Answered once the loop is done with the lapse's SIGTERM round.
	st, err := c.State(ctx)
	must(t, err)
	if st.Lapses != 1 {
		t.Fatalf("lapses %d after the watched sleep was stopped", st.Lapses)
	}
	late := sleeper(t, "n1", "web")
	e := late.waitExit(t, stop+bound)
	if e.signal != syscall.SIGKILL || e.at < deadline+int64(stop) {
		t.Errorf("late starter: %v at deadline%+v, want SIGKILL after the stop timeout %s", e.signal, time.Duration(e.at-deadline), stop)
	}
}

// A watched process exits and its pid is reused, by a process that
// leads a process group of the same number: the lapse leaves it alone.
func TestReusedPidNotSignalled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to choose the next pid through ns_last_pid")
	}
	_, c, ctx := keeperHoldingWeb(t, 100*time.Millisecond)
	old := sleeper(t, "", "") // no CLINIT_ variables: only its watch names it
	must(t, c.Watch(ctx, "web", old.pid, old.start))
	canary := sleeper(t, "", "")
	must(t, c.Watch(ctx, "web", canary.pid, canary.start))
	must(t, syscall.Kill(old.pid, syscall.SIGKILL))
	old.waitExit(t, bound) // and reaped
	reuser := startAtPid(t, old.pid)
	if reuser == nil {
		t.Skip("the machine forks too much to get one pid back")
	}
	must(t, c.Lease(ctx, BoottimeNow()-1, 100*time.Millisecond))
	canary.waitExit(t, bound)
	st := waitLapseDone(t, c)
	if !reuser.running() {
		t.Errorf("the process that reused pid %d was stopped", old.pid)
	}
	if got := pids(st.Last.Termed); !slices.Equal(got, []int{canary.pid}) {
		t.Errorf("termed %v, want only the canary %d", got, canary.pid)
	}
}

// startAtPid starts `sleep 1000` in a process group of its own as pid,
// by setting the pid namespace's last pid just before; other processes
// forking meanwhile take it, so it retries, and gives up with nil.
func startAtPid(t *testing.T, pid int) *child {
	t.Helper()
	for range 200 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(fmt.Sprint(pid-1)), 0); err != nil {
			t.Skipf("ns_last_pid: %v", err)
		}
		cmd := exec.Command("sleep", "1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		must(t, cmd.Start())
		if cmd.Process.Pid != pid {
			cmd.Process.Kill()
			cmd.Wait()
			continue
		}
		ch := &child{pid: pid, exit: make(chan childExit, 1)}
		go func() {
			cmd.Wait()
			ch.exit <- childExit{at: BoottimeNow()}
		}()
		t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
		return ch
	}
	return nil
}
