package t

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clinit/clinit/internal/testkit"
	"github.com/clinit/clinit/keeper"
)

// The real binary runs the keeper under its hidden --keeper flag: at the
// lease's deadline it stops a watched group and an unwatched process of
// a held group, and, once released and alone, exits by itself.
func TestKeeperBinary(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t) + "/keeper"
	var log testkit.Buffer
	k := exec.Command(clinitBin, "--keeper", dir, "--node", "n1", "--idle", "300ms")
	k.Stderr = &log
	k.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- k.Wait() }()
	t.Cleanup(func() {
		k.Process.Kill()
		if t.Failed() {
			t.Logf("keeper log:\n%s", log.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, _, err := keeper.Ensure(ctx, dir, "n1", func([]string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// A long lease for the setup, the short one once both sleeps run.
	if err := c.Lease(ctx, keeper.BoottimeNow()+int64(time.Hour), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Hold(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	var exits []chan *os.ProcessState
	for i := range 2 {
		cmd := exec.Command("sleep", "1000")
		cmd.Env = []string{"CLINIT_NODE=n1", "CLINIT_GROUP=web"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		ch := make(chan *os.ProcessState, 1)
		go func() { cmd.Wait(); ch <- cmd.ProcessState }()
		exits = append(exits, ch)
		if i == 0 {
			start, err := keeper.ProcStartTime(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Watch(ctx, "web", cmd.Process.Pid, start); err != nil {
				t.Fatal(err)
			}
		} else {
			// The unwatched one is found by its environment: let it exec.
			eventually(t, hang, func() bool {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
				return strings.TrimSpace(string(b)) == "sleep"
			}, "sleep to exec")
		}
	}
	deadline := keeper.BoottimeNow() + int64(300*time.Millisecond)
	if err := c.Lease(ctx, deadline, time.Second); err != nil {
		t.Fatal(err)
	}
	for i, ch := range exits {
		select {
		case ps := <-ch:
			ws := ps.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("sleep %d: %v, want killed by SIGTERM", i, ps)
			}
		case <-time.After(hang):
			t.Fatalf("sleep %d still runs %s after the deadline", i, hang)
		}
	}
	if at := keeper.BoottimeNow(); at < deadline {
		t.Errorf("stopped %s before the deadline", time.Duration(deadline-at))
	}
	if err := c.Release(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("keeper exit: %v, want status 0", err)
		}
	case <-time.After(hang):
		t.Fatal("the idle keeper did not exit")
	}
	for _, want := range []string{"\tlapse\t", `"why": "watched"`, `"why": "environ"`, "\texit\t"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("keeper log lacks %q", want)
		}
	}
}
