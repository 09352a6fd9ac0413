package testkit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeEnv makes the test binary a stand-in daemon: it says WATCHDOG=1
// twice and READY=1 on NOTIFY_SOCKET, prints its environment's tag, starts
// a child that sleeps, and exits with the status in the variable once it
// gets SIGTERM (or at once, before READY=1, for "early").
const fakeEnv = "TESTKIT_FAKE_DAEMON"

func TestMain(m *testing.M) {
	if v := os.Getenv(fakeEnv); v != "" {
		os.Exit(fakeDaemon(v))
	}
	os.Exit(m.Run())
}

func fakeDaemon(how string) int {
	if how == "early" {
		return 7
	}
	c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
	if err != nil {
		return 9
	}
	child := exec.Command("sleep", "1000")
	if err := child.Start(); err != nil {
		return 9
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	fmt.Println("tag", os.Getenv("TESTKIT_TAG"), "unset", os.Getenv("TESTKIT_UNSET"))
	c.Write([]byte("WATCHDOG=1\nWATCHDOG=1"))
	c.Write([]byte("STATUS=x\nREADY=1\n"))
	<-sigs
	child.Process.Kill()
	child.Wait()
	code, _ := strconv.Atoi(how)
	return code
}

func launchFake(t *testing.T, how string, out io.Writer) (*Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TESTKIT_UNSET", "inherited")
	d, err := Launch(Config{
		Path:   os.Args[0],
		Notify: filepath.Join(dir, "notify"),
		Env:    []string{fakeEnv + "=" + how, "TESTKIT_TAG=" + dir},
		Unset:  []string{"TESTKIT_UNSET"},
		Output: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-d.Pid(), syscall.SIGKILL)
		<-d.Done()
	})
	return d, dir
}

func TestLaunchReadyAndStop(t *testing.T) {
	var out Buffer
	d, dir := launchFake(t, "3", &out)
	if err := d.WaitReady("", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := d.Watchdogs(); n != 2 {
		t.Errorf("%d WATCHDOG=1 counted before READY=1, want 2", n)
	}
	tagged := func() []int { return Tagged("TESTKIT_TAG", func(v string) bool { return v == dir }) }
	// The daemon and its child: found by the tag they both carry.
	if !Poll(10*time.Second, func() bool { return len(tagged()) == 2 }) {
		t.Fatalf("tagged processes %v, want the daemon and its child", DescribeAll(tagged()))
	}
	if d.Exited() {
		t.Fatal("Exited before the daemon stopped")
	}
	var asked []string
	err := d.Stop(func(args ...string) Result {
		asked = args
		syscall.Kill(d.Pid(), syscall.SIGTERM)
		return Result{}
	}, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited with status 3 after clinit -k") || strings.Join(asked, " ") != "-k" {
		t.Fatalf("Stop = %v (asked %q), want the status 3 told", err, asked)
	}
	if d.Code() != 3 || !d.Exited() {
		t.Errorf("Code %d, Exited %v", d.Code(), d.Exited())
	}
	if got := out.String(); got != "tag "+dir+" unset \n" {
		t.Errorf("the daemon printed %q: want its tag, and no unset variable", got)
	}
	if left := tagged(); len(left) != 0 {
		t.Errorf("left after the daemon: %v", DescribeAll(left))
	}
}

func TestLaunchExitsBeforeReady(t *testing.T) {
	d, _ := launchFake(t, "early", nil)
	err := d.WaitReady("", 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited with status 7 before it was ready") {
		t.Fatalf("WaitReady = %v", err)
	}
}

func TestWaitsTimeOut(t *testing.T) {
	d, dir := launchFake(t, "0", nil)
	if err := d.WaitReady("", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitExit(10 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("WaitExit of a running daemon = %v, want ErrTimeout", err)
	}
	err := d.Stop(func(...string) Result { return Result{Code: 3, Stderr: "no daemon"} }, time.Second)
	if err == nil || !strings.Contains(err.Error(), `clinit -k: status 3`) {
		t.Fatalf("Stop with a failing client = %v", err)
	}
	if err := d.Stop(func(...string) Result { return Result{} }, 10*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Stop of a daemon that does not exit = %v, want ErrTimeout", err)
	}
	if n := KillTagged("TESTKIT_TAG", func(v string) bool { return v == dir }); n < 1 {
		t.Fatalf("KillTagged found %d processes", n)
	}
	if code := d.Code(); code != -1 {
		t.Errorf("a SIGKILLed daemon's status: %d, want -1", code)
	}
}

func TestClinit(t *testing.T) {
	if r := Clinit("sh", "-c", "echo out; echo err >&2; exit 4"); r.Err != nil || r.Code != 4 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("Clinit = %v", r)
	}
	if r := Clinit(filepath.Join(t.TempDir(), "none")); r.Err == nil || r.Code != -1 {
		t.Errorf("Clinit of no binary = %v, want an error", r)
	}
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	f := FilesIn(dir)
	if h, err := ReadHastat(f.Hastat); err != nil || len(h.Groups)+len(h.Nodes) != 0 {
		t.Fatalf("a missing hastat: %+v, %v", h, err)
	}
	os.WriteFile(f.Hastat, []byte("web start DONE n1\nnode n1 alive 0.00\n"), 0o644)
	if h, err := ReadHastat(f.Hastat); err != nil || h.Alive() != 1 {
		t.Fatalf("ReadHastat = %+v, %v", h, err)
	}
	os.WriteFile(f.Clstat, []byte("a 1 DONE\nbad\n"), 0o644)
	if _, err := ReadClstat(f.Clstat); err == nil || !strings.Contains(err.Error(), f.Clstat+": clstat line 2") {
		t.Fatalf("ReadClstat of a bad file = %v, want the path and line", err)
	}
	os.WriteFile(f.Cltab, []byte("one\ntwo\nthr"), 0o644)
	if got := Lines(f.Cltab); strings.Join(got, ",") != "one,two" {
		t.Errorf("Lines = %q, want the complete ones", got)
	}
	if got := strings.Join(f.DaemonArgs("n1"), " "); got != "-d -c "+f.Cltab+" -s "+f.Sock+" --clstat "+f.Clstat+
		" --hastat "+f.Hastat+" --hactl "+f.Hactl+" --state-dir "+f.State+" --node n1" {
		t.Errorf("DaemonArgs = %s", got)
	}
}
