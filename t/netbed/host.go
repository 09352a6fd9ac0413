package netbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// hang bounds every wait for a daemon to get ready or to exit.
const hang = 20 * time.Second

// Host is one test host: a namespace, an address, a directory with its
// node-specific files, and at most one daemon at a time.
type Host struct {
	bed   *Bed
	Name  string // its node name: h1, h2...
	NS    string // its network namespace
	Addr  string // its address on the bed's subnet
	Port  string // its veth's end in the switch
	Dir   string // its cltab, socket, clstat, hastat, hactl, state
	seeds string // --join: every host

	// Guarded by mu: the test's goroutine starts and stops daemons while
	// the bed's watcher records views.
	mu       sync.Mutex
	cur      *proc     // the last daemon started (nil before the first)
	logs     []*logBuf // every daemon's log, oldest first
	runs     int       // daemons started
	views    []string  // hastat as it changed: "TIME LINE | LINE..."
	lastView string
}

// proc is one daemon process.
type proc struct {
	cmd    *exec.Cmd
	log    *logBuf
	ready  chan struct{} // READY=1 arrived
	done   chan struct{} // reaped
	code   int
	notify *net.UnixConn
}

// logBuf collects a daemon's output; exec's copier writes while a test
// reads.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Path names a file in the host's directory.
func (h *Host) Path(name string) string { return filepath.Join(h.Dir, name) }

// Sock is the daemon's socket (reachable from the test process: it is on
// the filesystem every namespace shares).
func (h *Host) Sock() string { return h.Path("sock") }

// Flags are the daemon's flags: node-specific paths, and the cluster
// bound to the host's address.
func (h *Host) Flags() []string {
	return []string{"-d", "-c", h.Path("cltab"), "-s", h.Sock(), "--clstat", h.Path("clstat"),
		"--hastat", h.Path("hastat"), "--hactl", h.Path("hactl"), "--state-dir", h.Path("state"),
		"--node", h.Name, "--bind", fmt.Sprintf("%s:%d", h.Addr, Port), "--join", h.seeds,
		"--keyfile", h.bed.Key}
}

// seen records the host's hastat as it is now, if it changed, with the
// time: the timeline of a failed test shows each host's view.
func (h *Host) seen() {
	data, _ := os.ReadFile(h.Path("hastat"))
	view := strings.ReplaceAll(strings.TrimSpace(string(data)), "\n", " | ")
	h.mu.Lock()
	defer h.mu.Unlock()
	if view != h.lastView {
		h.lastView = view
		h.views = append(h.views, time.Now().Format("15:04:05.000")+" "+view)
	}
}

// Start starts the host's daemon and waits until it is ready.
func (h *Host) Start() {
	h.bed.t.Helper()
	h.launch()
	h.waitReady()
}

// launch starts the daemon in the host's namespace without waiting.
func (h *Host) launch() {
	t := h.bed.t
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur != nil {
		select {
		case <-h.cur.done:
		default:
			t.Fatalf("netbed: %s: a daemon is running already", h.Name)
		}
	}
	h.runs++
	p := &proc{log: &logBuf{}, ready: make(chan struct{}), done: make(chan struct{})}
	// Readiness is sd_notify's READY=1 on a datagram socket: a path on
	// the shared filesystem, so it crosses the namespace.
	notifyPath := h.Path(fmt.Sprintf("notify%d", h.runs))
	os.Remove(notifyPath)
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	p.notify = nc
	go func() {
		var once sync.Once
		buf := make([]byte, 4096)
		for {
			k, _, err := nc.ReadFromUnix(buf)
			if err != nil {
				return
			}
			for _, l := range strings.Split(string(buf[:k]), "\n") {
				if l == "READY=1" {
					once.Do(func() { close(p.ready) })
				}
			}
		}
	}()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, tagEnv+"=") && !strings.HasPrefix(kv, "CLT_DAEMON=") {
			env = append(env, kv)
		}
	}
	env = append(env, "NOTIFY_SOCKET="+notifyPath, fmt.Sprintf("%s=%s/%s#%d", tagEnv, h.bed.id, h.Name, h.runs))
	// `ip netns exec` enters the namespace and execs the daemon: the pid
	// is the daemon's.
	flags := h.Flags()
	if os.Getenv("NETBED_DEBUG") != "" {
		flags = append(flags, "--debug")
	}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", h.NS, h.bed.cfg.Bin}, flags...)...)
	p.cmd.Env = env
	// The log goes to a file in the host's directory as well (kept with
	// NETBED_KEEP for a post-mortem).
	lf, err := os.Create(h.Path(fmt.Sprintf("log%d", h.runs)))
	if err != nil {
		t.Fatal(err)
	}
	w := io.MultiWriter(p.log, lf)
	p.cmd.Stdout, p.cmd.Stderr = w, w
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		nc.Close()
		t.Fatalf("netbed: %s: starting the daemon: %v", h.Name, err)
	}
	fmt.Fprintf(w, "netbed: started at %s, pid %d\n", time.Now().Format("15:04:05.000"), p.cmd.Process.Pid)
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		fmt.Fprintf(w, "netbed: exited at %s, status %d\n", time.Now().Format("15:04:05.000"), p.code)
		lf.Close()
		nc.Close()
		close(p.done)
	}()
	h.cur = p
	h.logs = append(h.logs, p.log)
}

func (h *Host) proc() *proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

func (h *Host) waitReady() {
	t := h.bed.t
	t.Helper()
	p := h.proc()
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatalf("netbed: %s: the daemon exited with status %d before it was ready:\n%s", h.Name, p.code, p.log.String())
	case <-time.After(hang):
		t.Fatalf("netbed: %s: the daemon is not ready after %v", h.Name, hang)
	}
}

// Running reports whether the host's daemon runs.
func (h *Host) Running() bool {
	p := h.proc()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid is the daemon's pid (0 if none runs).
func (h *Host) Pid() int {
	if !h.Running() {
		return 0
	}
	return h.proc().cmd.Process.Pid
}

// Log is the output of the host's current (or last) daemon.
func (h *Host) Log() string {
	p := h.proc()
	if p == nil {
		return ""
	}
	return p.log.String()
}

// Stop shuts the daemon down as an operator would (clinit -k) and waits
// for it to exit and for every process in the host to be gone; a
// failure fails the test.
func (h *Host) Stop() {
	t := h.bed.t
	t.Helper()
	p := h.proc()
	if p == nil {
		return
	}
	out, errOut, code, err := h.Clinit("-k")
	if err != nil || code != 0 {
		t.Fatalf("netbed: %s: clinit -k: status %d, %v: %s %s", h.Name, code, err, out, errOut)
	}
	select {
	case <-p.done:
	case <-time.After(hang):
		t.Fatalf("netbed: %s: the daemon still runs %v after -k", h.Name, hang)
	}
	if p.code != 0 {
		t.Errorf("netbed: %s: the daemon exited with status %d after -k", h.Name, p.code)
	}
	deadline := time.Now().Add(hang)
	for len(nsPids(h.NS)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("netbed: %s: processes left after the daemon stopped: %v", h.Name, nsPids(h.NS))
		}
		time.Sleep(15 * time.Millisecond)
	}
}

// Kill9 kills the host outright: SIGKILL to the daemon and to every
// process in its namespace (its services), at once, as a power loss
// would. It returns once all are gone, and notes "kill" in the events
// file then: the runs of the host end there.
func (h *Host) Kill9() {
	t := h.bed.t
	t.Helper()
	p := h.proc()
	if left := killNS(h.NS); len(left) > 0 {
		t.Fatalf("netbed: %s: processes survive SIGKILL: %v", h.Name, left)
	}
	if p != nil {
		select {
		case <-p.done:
		case <-time.After(hang):
			t.Fatalf("netbed: %s: the daemon is not reaped after SIGKILL", h.Name)
		}
	}
	h.bed.Note("kill", h.Name)
}

// stopForTeardown stops the daemon with -k if it runs, reporting a
// failure as an error (the teardown goes on), and kills it if -k does
// not end it.
func (h *Host) stopForTeardown() {
	t := h.bed.t
	p := h.proc()
	if p == nil || !h.Running() {
		return
	}
	_, errOut, code, err := h.Clinit("-k")
	if err != nil || code != 0 {
		t.Errorf("netbed: teardown: %s: clinit -k: status %d, %v: %s", h.Name, code, err, errOut)
	}
	select {
	case <-p.done:
		if p.code != 0 {
			t.Errorf("netbed: teardown: %s: the daemon exited with status %d after -k", h.Name, p.code)
		}
	case <-time.After(hang):
		t.Errorf("netbed: teardown: %s: the daemon still runs %v after -k; killing it", h.Name, hang)
		killNS(h.NS)
		<-p.done
	}
	if strings.Contains(p.log.String(), "WARNING: DATA RACE") {
		t.Errorf("netbed: %s: the daemon reported a data race", h.Name)
	}
}

// Clinit runs the client against the host's daemon (-c and -s given),
// from the test's own namespace; err is set only when it could not run
// or hung.
func (h *Host) Clinit(args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bed.cfg.Bin, append([]string{"-c", h.Path("cltab"), "-s", h.Sock()}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return o.String(), e.String(), -1, fmt.Errorf("clinit %q hung: %w", args, ctx.Err())
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitCode(), nil
	case err != nil:
		return o.String(), e.String(), -1, err
	}
	return o.String(), e.String(), 0, nil
}

// Hastat is the host's hastat file, parsed.
func (h *Host) Hastat() Hastat {
	data, _ := os.ReadFile(h.Path("hastat"))
	return ParseHastat(string(data))
}

// Hastat is a hastat file: where each HA group runs, and each member's
// state.
type Hastat struct {
	Groups map[string]HAGroup // by group
	Nodes  map[string]string  // node -> alive, dead, left...
}

// HAGroup is one group line: LEVEL STATE NODE ("-" when nowhere).
type HAGroup struct{ Level, State, Node string }

// ParseHastat reads the text of a hastat file (SPEC 6).
func ParseHastat(text string) Hastat {
	h := Hastat{Groups: map[string]HAGroup{}, Nodes: map[string]string{}}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "node":
			h.Nodes[f[1]] = f[2]
		case len(f) == 4:
			h.Groups[f[0]] = HAGroup{f[1], f[2], f[3]}
		}
	}
	return h
}

// Alive counts the members the hastat shows alive.
func (h Hastat) Alive() int {
	n := 0
	for _, s := range h.Nodes {
		if s == "alive" {
			n++
		}
	}
	return n
}

// Freeze stops the host's daemon alone (SIGSTOP), as a stuck host or a
// long pause would: its services and its keeper run on. Thaw undoes it.
func (h *Host) Freeze() { h.signalDaemon(syscall.SIGSTOP, "freeze") }

// Thaw lets a frozen daemon run again (SIGCONT).
func (h *Host) Thaw() { h.signalDaemon(syscall.SIGCONT, "thaw") }

// KillDaemon SIGKILLs the host's daemon alone, as the OOM killer would:
// its services and its keeper are left running, as adoption wants. It
// returns once the daemon is reaped.
func (h *Host) KillDaemon() {
	t := h.bed.t
	t.Helper()
	p := h.proc()
	h.signalDaemon(syscall.SIGKILL, "kill-daemon")
	if p != nil {
		select {
		case <-p.done:
		case <-time.After(hang):
			t.Fatalf("netbed: %s: the daemon is not reaped after SIGKILL", h.Name)
		}
	}
}

func (h *Host) signalDaemon(sig syscall.Signal, note string) {
	t := h.bed.t
	t.Helper()
	pid := h.Pid()
	if pid == 0 {
		t.Fatalf("netbed: %s: no daemon to %s", h.Name, note)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("netbed: %s: %s: %v", h.Name, note, err)
	}
	h.bed.Note(note, h.Name)
}
