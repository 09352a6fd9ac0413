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

// A watched process exits and its pid is reused, by a process that
// leads a process group of the same number: the lapse leaves it alone.
func TestReusedPidNotSignalled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to choose the next pid through ns_last_pid")
	}
	_, c := startKeeper(t, "n1")
	ctx := ctxT(t)
	must(t, c.Lease(ctx, BoottimeNow()+int64(time.Hour), 100*time.Millisecond))
	must(t, c.Hold(ctx, "web"))
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
