package netbed

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/internal/testkit"
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
	cur      *proc             // the last daemon started (nil before the first)
	logs     []*testkit.Buffer // every daemon's log, oldest first
	runs     int               // daemons started
	views    []string          // hastat as it changed: "TIME LINE | LINE..."
	lastView string
}

// proc is one daemon process and its log.
type proc struct {
	*testkit.Daemon
	log *testkit.Buffer
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
	if h.cur != nil && !h.cur.Exited() {
		t.Fatalf("netbed: %s: a daemon is running already", h.Name)
	}
	h.runs++
	// `ip netns exec` enters the namespace and execs the daemon: the pid
	// is the daemon's.
	flags := h.Flags()
	if os.Getenv("NETBED_DEBUG") != "" {
		flags = append(flags, "--debug")
	}
	// The log goes to a file in the host's directory as well (kept with
	// NETBED_KEEP for a post-mortem).
	lf, err := os.Create(h.Path(fmt.Sprintf("log%d", h.runs)))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{log: &testkit.Buffer{}}
	w := io.MultiWriter(p.log, lf)
	// Readiness is sd_notify's READY=1 on a datagram socket: a path on
	// the shared filesystem, so it crosses the namespace.
	p.Daemon, err = testkit.Launch(testkit.Config{
		Path:   "ip",
		Args:   append([]string{"netns", "exec", h.NS, h.bed.cfg.Bin}, flags...),
		Notify: h.Path(fmt.Sprintf("notify%d", h.runs)),
		Env:    []string{fmt.Sprintf("%s=%s/%s#%d", tagEnv, h.bed.id, h.Name, h.runs)},
		Unset:  []string{"CLT_DAEMON"},
		Output: w,
	})
	if err != nil {
		lf.Close()
		t.Fatalf("netbed: %s: starting the daemon: %v", h.Name, err)
	}
	fmt.Fprintf(w, "netbed: started at %s, pid %d\n", time.Now().Format("15:04:05.000"), p.Pid())
	go func() {
		code := p.Code()
		fmt.Fprintf(w, "netbed: exited at %s, status %d\n", time.Now().Format("15:04:05.000"), code)
		lf.Close()
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
	if err := p.WaitReady("", hang); err != nil {
		t.Fatalf("netbed: %s: %v:\n%s", h.Name, err, p.log.String())
	}
}

// Running reports whether the host's daemon runs.
func (h *Host) Running() bool {
	p := h.proc()
	return p != nil && !p.Exited()
}

// Pid is the daemon's pid (0 if none runs).
func (h *Host) Pid() int {
	if !h.Running() {
		return 0
	}
	return h.proc().Pid()
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
	if err := p.Stop(h.client, hang); err != nil {
		t.Fatalf("netbed: %s: %v", h.Name, err)
	}
	if !testkit.Poll(hang, func() bool { return len(nsPids(h.NS)) == 0 }) {
		t.Fatalf("netbed: %s: processes left after the daemon stopped: %v", h.Name, nsPids(h.NS))
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
		if _, err := p.WaitExit(hang); err != nil {
			t.Fatalf("netbed: %s: after SIGKILL: %v", h.Name, err)
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
	if err := p.Stop(h.client, hang); err != nil {
		t.Errorf("netbed: teardown: %s: %v", h.Name, err)
		if !p.Exited() {
			killNS(h.NS)
			<-p.Done()
		}
	}
	if strings.Contains(p.log.String(), "WARNING: DATA RACE") {
		t.Errorf("netbed: %s: the daemon reported a data race", h.Name)
	}
}

// Clinit runs the client against the host's daemon (-c and -s given),
// from the test's own namespace; err is set only when it could not run
// or hung.
func (h *Host) Clinit(args ...string) (stdout, stderr string, code int, err error) {
	r := h.client(args...)
	return r.Stdout, r.Stderr, r.Code, r.Err
}

func (h *Host) client(args ...string) testkit.Result {
	return testkit.Clinit(h.bed.cfg.Bin, append([]string{"-c", h.Path("cltab"), "-s", h.Sock()}, args...)...)
}

// Hastat is the host's hastat file, parsed; a malformed one is an error
// of the test (and reads as empty).
func (h *Host) Hastat() api.Hastat {
	v, err := testkit.ReadHastat(h.Path("hastat"))
	if err != nil {
		h.bed.t.Errorf("netbed: %s: %v", h.Name, err)
	}
	return v
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
		if _, err := p.WaitExit(hang); err != nil {
			t.Fatalf("netbed: %s: after SIGKILL: %v", h.Name, err)
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
