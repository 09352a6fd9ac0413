// Package testkit starts real `clinit -d` processes the way an operator
// runs them and reads the files they write, for the end-to-end tests
// (t/), the network-namespace bed (t/netbed) and the bench: one launcher
// (readiness by sd_notify, a tag in the environment to find every process
// a daemon started), one client runner, one reader of each file.
//
// Nothing here fails a test: every call returns an error that says what
// went wrong, for the caller to report its own way.
package testkit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Files are the paths of one daemon, every one in its own directory.
type Files struct {
	Dir, Cltab, Sock, Clstat, Hastat, Hactl, State string
}

// FilesIn names a daemon's files inside dir.
func FilesIn(dir string) Files {
	p := func(name string) string { return filepath.Join(dir, name) }
	return Files{Dir: dir, Cltab: p("cltab"), Sock: p("sock"), Clstat: p("clstat"),
		Hastat: p("hastat"), Hactl: p("hactl"), State: p("state")}
}

// DaemonArgs are the arguments of `clinit -d` on these files as node:
// every path given, so that no default outside Dir is used.
func (f Files) DaemonArgs(node string) []string {
	return []string{"-d", "-c", f.Cltab, "-s", f.Sock, "--clstat", f.Clstat, "--hastat", f.Hastat,
		"--hactl", f.Hactl, "--state-dir", f.State, "--node", node}
}

// Config says how to start one daemon.
type Config struct {
	Path string   // what runs: the clinit binary, or a wrapper of it (ip netns exec ...)
	Args []string // its arguments
	// Notify is the path of the sd_notify socket made for it: the daemon
	// is ready on READY=1 there. It must be on a filesystem the daemon
	// sees.
	Notify string
	// Env is set in the daemon's environment over what the caller's
	// holds; Unset names more variables not to pass on.
	Env   []string
	Unset []string
	// Output gets the daemon's stdout and stderr (nil: discarded).
	Output io.Writer
	// Prepare, if set, changes the command last (credentials, the
	// environment...), once the notify socket exists.
	Prepare func(cmd *exec.Cmd) error
	// Start, if set, starts the command instead of cmd.Start (to start
	// it from inside a namespace).
	Start func(cmd *exec.Cmd) error
}

// Daemon is one running (or ended) daemon process, in a process group of
// its own.
type Daemon struct {
	Cmd       *exec.Cmd
	ready     chan struct{} // closed on READY=1
	done      chan struct{} // closed once the process is reaped
	code      int           // its exit status, valid once done is closed
	watchdogs atomic.Int64  // WATCHDOG=1 messages received
	notesMu   sync.Mutex
	notes     []string // every sd_notify message, in order
}

// Launch starts a daemon without waiting for it (see WaitReady).
func Launch(cfg Config) (*Daemon, error) {
	d := &Daemon{ready: make(chan struct{}), done: make(chan struct{})}
	os.Remove(cfg.Notify)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: cfg.Notify, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("the notify socket of the daemon: %w", err)
	}
	// Reads sd_notify messages until the process is reaped.
	go func() {
		var once sync.Once
		buf := make([]byte, 4096)
		for {
			k, _, err := notify.ReadFromUnix(buf)
			if err != nil {
				return
			}
			d.notesMu.Lock()
			d.notes = append(d.notes, string(buf[:k]))
			d.notesMu.Unlock()
			for _, l := range strings.Split(string(buf[:k]), "\n") {
				switch l {
				case "WATCHDOG=1":
					d.watchdogs.Add(1)
				case "READY=1":
					once.Do(func() { close(d.ready) })
				}
			}
		}
	}()
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Env = environ(append([]string{"NOTIFY_SOCKET=" + cfg.Notify}, cfg.Env...), cfg.Unset)
	cmd.Stdout, cmd.Stderr = cfg.Output, cfg.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if cfg.Prepare != nil {
		if err := cfg.Prepare(cmd); err != nil {
			notify.Close()
			return nil, err
		}
	}
	start := cfg.Start
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if err := start(cmd); err != nil {
		notify.Close()
		return nil, fmt.Errorf("starting %s: %w", cfg.Path, err)
	}
	d.Cmd = cmd
	// The one waiter of the process.
	go func() {
		cmd.Wait()
		d.code = cmd.ProcessState.ExitCode()
		notify.Close()
		close(d.done)
	}()
	return d, nil
}

// environ is the caller's environment with set put over it and the
// variables of unset left out.
func environ(set, unset []string) []string {
	drop := map[string]bool{}
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	for _, k := range unset {
		drop[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}

// Ready is closed once the daemon said READY=1.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Done is closed once the process is reaped.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Code is the exit status, once Done is closed (-1 for a signal).
func (d *Daemon) Code() int {
	<-d.done
	return d.code
}

// Pid is the daemon's pid (a wrapper's, if Path is one that does not
// exec the daemon).
func (d *Daemon) Pid() int { return d.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Notifications are the sd_notify messages received so far, in order.
func (d *Daemon) Notifications() []string {
	d.notesMu.Lock()
	defer d.notesMu.Unlock()
	return append([]string{}, d.notes...)
}

// Watchdogs counts the WATCHDOG=1 messages received so far.
func (d *Daemon) Watchdogs() int64 { return d.watchdogs.Load() }

// ErrTimeout is matched by the error of a wait that ran out of time.
var ErrTimeout = errors.New("timed out")

// WaitReady waits for READY=1 and then for the socket sock to accept a
// connection ("" skips that check).
func (d *Daemon) WaitReady(sock string, timeout time.Duration) error {
	select {
	case <-d.ready:
	case <-d.done:
		return fmt.Errorf("the daemon exited with status %d before it was ready", d.code)
	case <-time.After(timeout):
		return fmt.Errorf("the daemon is not ready after %v: %w", timeout, ErrTimeout)
	}
	if sock == "" {
		return nil
	}
	c, err := net.DialTimeout("unix", sock, timeout)
	if err != nil {
		return fmt.Errorf("the daemon is ready but its socket does not answer: %w", err)
	}
	return c.Close()
}

// WaitExit waits for the process to end and returns its exit status.
func (d *Daemon) WaitExit(timeout time.Duration) (int, error) {
	select {
	case <-d.done:
		return d.code, nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("the daemon still runs after %v: %w", timeout, ErrTimeout)
	}
}

// Stop stops the daemon as an operator would: it runs the client with -k
// (client, from Client or a command of the caller's own) and waits for
// the daemon to exit with status 0. The error says which step failed; it
// matches ErrTimeout when the daemon did not exit, for the caller to
// kill it.
func (d *Daemon) Stop(client func(args ...string) Result, timeout time.Duration) error {
	if r := client("-k"); r.Err != nil || r.Code != 0 {
		return fmt.Errorf("clinit -k: %v", r)
	}
	code, err := d.WaitExit(timeout)
	if err != nil {
		return fmt.Errorf("after clinit -k: %w", err)
	}
	if code != 0 {
		return fmt.Errorf("the daemon exited with status %d after clinit -k", code)
	}
	return nil
}

// Buffer collects a daemon's output: exec's copier writes while a test
// reads.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartListening starts cmd, a stand-in daemon that prints "listening"
// on its stdout once it serves, and waits for that line. The channel gets
// cmd.Wait's result; a failure to start or to say it kills the process.
func StartListening(cmd *exec.Cmd) (<-chan error, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	if line != "listening\n" {
		cmd.Process.Kill()
		<-waited
		return nil, fmt.Errorf("%s does not say it listens: %q, %v", cmd.Path, line, err)
	}
	return waited, nil
}
