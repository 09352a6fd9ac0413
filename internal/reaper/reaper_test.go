package reaper

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test process is a subreaper, as the daemon is: orphans of the
// commands started here are reparented to it, and the reaper must take
// them without taking the exits it owes to their starters.
func TestMain(m *testing.M) {
	if err := BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot become a child subreaper:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func await(t *testing.T, exits <-chan Exit) Exit {
	t.Helper()
	select {
	case x := <-exits:
		return x
	case <-time.After(10 * time.Second):
		t.Fatal("no exit posted")
		return Exit{}
	}
}

func TestStartPostsTheExit(t *testing.T) {
	for _, c := range []struct {
		script string
		code   int
		text   string
	}{
		{"exit 0", 0, "exit status 0"},
		{"exit 7", 7, "exit status 7"},
		{"exit 255", 255, "exit status 255"},
		{"kill -TERM $$", -1, "signal: terminated"},
	} {
		pid, exits, err := Start(sh(c.script), Attrs{})
		if err != nil {
			t.Fatal(err)
		}
		x := await(t, exits)
		if x.Pid != pid || x.Code() != c.code || x.String() != c.text {
			t.Errorf("%q: pid %d, code %d, %q; want pid %d, code %d, %q", c.script, x.Pid, x.Code(), x, pid, c.code, c.text)
		}
		if (x.Err() == nil) != (c.code == 0) {
			t.Errorf("%q: Err() = %v", c.script, x.Err())
		}
	}
}

func TestStartLeadsAProcessGroup(t *testing.T) {
	pid, exits, err := Start([]string{"/bin/sleep", "100"}, Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	pgid, err := unix.Getpgid(pid)
	if err != nil || pgid != pid {
		t.Errorf("pgid %d (%v), want %d", pgid, err, pid)
	}
	unix.Kill(-pid, unix.SIGKILL)
	if x := await(t, exits); x.Status.Signal() != syscall.SIGKILL {
		t.Errorf("exit %v, want killed", x)
	}
}

func TestStartAttrs(t *testing.T) {
	dir := t.TempDir()
	out, err := os.Create(dir + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// stdin is /dev/null when not given: read gets EOF at once.
	_, exits, err := Start(sh(`pwd; echo "$X"; cat; echo err >&2`), Attrs{Dir: dir, Env: []string{"X=y"}, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	if x := await(t, exits); !x.Success() {
		t.Fatal(x)
	}
	got, _ := os.ReadFile(dir + "/out")
	if want := dir + "\ny\nerr\n"; string(got) != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestStartError(t *testing.T) {
	_, _, err := Start([]string{"/nonexistent/cmd"}, Attrs{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/cmd") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v; want one naming the command, not found", err)
	}
	if _, _, err := Start(nil, Attrs{}); err == nil {
		t.Error("an empty argv started")
	}
}

func TestOrphansAreReaped(t *testing.T) {
	reaped := make(chan struct{}, 1)
	NotifyOrphans(reaped)
	defer StopOrphans(reaped)
	_, exits, err := Start(sh("/bin/sleep 0.05 & exit 0"), Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	await(t, exits)
	select {
	case <-reaped:
	case <-time.After(10 * time.Second):
		t.Fatal("the orphan's exit was not reported")
	}
	if z := zombies(); len(z) > 0 {
		t.Errorf("zombie children left: %v", z)
	}
}

// zombies lists the children of this process that exited and were not
// reaped.
func zombies() []string {
	var out []string
	names, _ := os.ReadDir("/proc")
	self := fmt.Sprintf(" %d ", os.Getpid())
	for _, n := range names {
		data, err := os.ReadFile("/proc/" + n.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(data), ')')
		if i > 0 && strings.HasPrefix(string(data[i:]), ") Z"+self) {
			out = append(out, n.Name())
		}
	}
	return out
}

// statStart is field 22 of /proc/PID/stat, read the plain way.
func statStart(t *testing.T, pid int) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	var v uint64
	if _, err := fmt.Sscan(f[19], &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The start time Start gives is /proc's, whenever it gives one; most
// forks take far less than a tick, so most starts have one.
func TestStartTicks(t *testing.T) {
	known := 0
	const n = 100
	for range n {
		var ticks uint64
		pid, exits, err := Start([]string{"/bin/sleep", "10"}, Attrs{StartTicks: &ticks})
		if err != nil {
			t.Fatal(err)
		}
		want := statStart(t, pid)
		unix.Kill(pid, syscall.SIGKILL)
		await(t, exits)
		if ticks != 0 {
			known++
			if ticks != want {
				t.Fatalf("StartTicks %d, /proc says %d", ticks, want)
			}
		}
	}
	if known < n/2 {
		t.Errorf("only %d of %d starts had their start time without /proc", known, n)
	}
}

// With OnExit, the exit comes to the function instead of a channel, and
// a callback may start a child itself (it runs outside the reaper's
// lock). Path runs another program than argv[0] names.
func TestStartOnExit(t *testing.T) {
	got := make(chan Exit, 2)
	var second int
	first, c, err := Start(sh("exit 3"), Attrs{OnExit: func(x Exit) {
		got <- x
		pid, _, err := Start([]string{"clinit-named", "-c", "exit 4"}, Attrs{Path: "/bin/sh", OnExit: func(x Exit) { got <- x }})
		if err != nil {
			t.Error(err)
		}
		second = pid
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		t.Error("Start returned a channel with OnExit set")
	}
	x := await(t, got)
	if x.Pid != first || x.Code() != 3 {
		t.Errorf("first exit: pid %d code %d, want pid %d code 3", x.Pid, x.Code(), first)
	}
	if x = await(t, got); x.Pid != second || x.Code() != 4 {
		t.Errorf("second exit: pid %d code %d, want pid %d code 4", x.Pid, x.Code(), second)
	}
}
