package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/client"
	"github.com/clinit/clinit/internal/testkit"
)

// benchEnv is put in the environment of every process the bench starts
// (daemons, which pass it on to their children, and the bare loop's
// children), valued with a path under the bench's temporary directory:
// whatever is left at the end is found by it and killed. (A name starting
// with CLINIT_ would not reach the daemon's children.)
const benchEnv = "CLBENCH_RUN"

// daemon is one `clinit -d` of the bench.
type daemon struct {
	b       *bench
	name    string
	dir     string // everything of this daemon is under it
	cltab   string
	sock    string
	clstat  string
	logPath string
	kd      *testkit.Daemon
	pid     int
	done    <-chan struct{} // closed once the process is reaped
	cl      *client.Client
	stopped bool
	uid     int // the user it runs as; -1: the bench's own
}

// command is a clinit client command to this daemon (the binary, -s, then
// args), run as the daemon's user: a client talks only to root's daemon
// or its own user's.
func (d *daemon) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.b.bin, append([]string{"-s", d.sock}, args...)...)
	if d.uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(d.uid), Gid: uint32(d.uid)}}
	}
	return cmd
}

// startDaemon writes cltabText ({dir} is the daemon's directory, {stamp}
// the timestamp helper) and runs `clinit -d` on it with every path in its
// directory. It returns once the daemon has sent READY=1 (sd_notify) and
// answers on its socket.
func (b *bench) startDaemon(name, cltabText string) (*daemon, error) {
	dir := filepath.Join(b.tmp, name)
	files := testkit.FilesIn(dir)
	d := &daemon{b: b, name: name, dir: dir, cltab: files.Cltab, sock: filepath.Join(b.run, name+".sock"),
		clstat: files.Clstat, logPath: filepath.Join(dir, "log"), uid: -1}
	files.Sock = d.sock
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	text := strings.NewReplacer("{dir}", d.dir, "{stamp}", b.stamp).Replace(cltabText)
	if err := os.WriteFile(d.cltab, []byte(text), 0o644); err != nil {
		return nil, err
	}
	if err := d.launch(files.DaemonArgs("benchnode"), 30*time.Second, nil, nil); err != nil {
		return nil, err
	}
	return d, nil
}

// launch starts `clinit -d ARGS` tagged with the daemon's directory, its
// log appended to logPath, and waits up to within for READY=1 and then
// for an answer on its socket. prepare and start are testkit.Config's.
func (d *daemon) launch(args []string, within time.Duration, prepare, start func(*exec.Cmd) error) error {
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	kd, err := testkit.Launch(testkit.Config{Path: d.b.bin, Args: args, Notify: filepath.Join(d.dir, "notify"),
		Env: []string{benchEnv + "=" + d.dir}, Output: logf, Prepare: prepare, Start: start})
	if err != nil {
		return err
	}
	d.kd, d.pid, d.done = kd, kd.Pid(), kd.Done()
	d.b.onCleanup(d.kill)
	d.cl = client.New(d.sock)
	d.cl.TrustUID = d.uid
	if err := kd.WaitReady("", within); err != nil {
		d.kill()
		return fmt.Errorf("daemon %s: %v: %s", d.name, err, d.logTail())
	}
	ctx, cancel := context.WithTimeout(context.Background(), within/2)
	defer cancel()
	if _, err := d.cl.Status(ctx); err != nil {
		d.kill()
		return fmt.Errorf("daemon %s ready but not answering: %v", d.name, err)
	}
	return nil
}

// cleanEnv is the bench's environment without what it sets itself.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, benchEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// stop shuts the daemon down the operator's way, `clinit -s SOCK -k`, and
// kills whatever is left if that fails.
func (d *daemon) stop() error {
	if d.stopped {
		return nil
	}
	d.stopped = true
	defer d.kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := d.command(ctx, "-k").CombinedOutput()
	if err != nil {
		return fmt.Errorf("clinit -k on %s: %v: %s", d.name, err, out)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("daemon %s still running 30s after clinit -k", d.name)
	}
	if n := countTagged(d.dir); n > 0 {
		return fmt.Errorf("daemon %s left %d processes behind after clinit -k", d.name, n)
	}
	return nil
}

// kill ends the daemon and everything it started, at once.
func (d *daemon) kill() {
	select {
	case <-d.done:
	default:
		syscall.Kill(-d.pid, syscall.SIGKILL)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
		}
	}
	killTagged(d.dir)
}

// logTail is the end of the daemon's log, for an error message.
func (d *daemon) logTail() string {
	data, _ := os.ReadFile(d.logPath)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// tell is a tell through the Go client.
func (d *daemon) tell(group, level string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.cl.Tell(ctx, group, level)
	return err
}

// status asks for the daemon's groups.
func (d *daemon) status() (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return d.cl.Status(ctx)
}

// waitState waits until group is at level in state, asking every few
// milliseconds (used between measurements only).
func (d *daemon) waitState(group, level, state string, timeout time.Duration) (api.GroupStatus, error) {
	deadline := time.Now().Add(timeout)
	var last api.GroupStatus
	for {
		st, err := d.status()
		if err != nil {
			return last, err
		}
		for _, g := range st.Groups {
			if g.Group == group {
				last = g
				if g.Level == level && g.State == state {
					return g, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("%s: group %s not %s at level %s within %v (it is %s at %s)",
				d.name, group, state, level, timeout, last.State, last.Level)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tagged matches the tag of the processes of the daemon (or the
// directory of daemons) at prefix.
func tagged(prefix string) func(string) bool {
	return func(v string) bool { return v == prefix || strings.HasPrefix(v, prefix+"/") }
}

// countTagged counts the live processes tagged under prefix.
func countTagged(prefix string) int { return len(testkit.Tagged(benchEnv, tagged(prefix))) }

// killTagged SIGKILLs every process tagged under prefix, with its
// process group, and returns how many it found alive.
func killTagged(prefix string) int { return testkit.KillTagged(benchEnv, tagged(prefix)) }

// procStat returns the fields of /proc/PID/stat after the command name:
// f[0] is field 3 (state).
func procStat(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f, nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procCPU is the process's user plus system CPU time (fields 14 and 15 of
// /proc/PID/stat, every thread, exited ones included), in seconds.
func procCPU(pid int) (float64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return float64(ut+st) / clockTicks, nil
}

// procStatus reads kB fields (VmRSS, VmHWM) of /proc/PID/status, in MiB.
func procStatus(pid int, names ...string) (map[string]float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		for _, n := range names {
			if k == n {
				f := strings.Fields(v)
				if len(f) == 2 && f[1] == "kB" {
					kb, err := strconv.ParseFloat(f[0], 64)
					if err == nil {
						out[n] = kb / 1024
					}
				}
			}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("/proc/%d/status: no %s", pid, n)
		}
	}
	return out, nil
}

// procThreads is the process's thread count (/proc/PID/status Threads).
func procThreads(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no Threads", pid)
}

// procWakeups sums the context switches (voluntary and not) of every
// thread of pid: each one is a time a thread went to sleep or was put
// off the CPU. An idle process that polls wakes up; one that waits for
// events does not.
func procWakeups(pid int) (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread ended
		}
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err == nil {
					total += n
				}
			}
		}
	}
	return total, nil
}

// monotonic is CLOCK_MONOTONIC in nanoseconds: the clock the timestamp
// helper reads, so the two can be subtracted.
func monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }

var errTimeout = errors.New("timed out")
