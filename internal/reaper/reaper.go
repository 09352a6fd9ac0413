// Package reaper owns every child process of clinit: it is the only
// place that starts one and the only place that waits for one. One
// goroutine reaps every exited child on SIGCHLD (wait4 on any pid, as
// s6-supervise does) and posts each exit to whoever started that child;
// orphans reparented to the daemon (a child subreaper, maybe PID 1) are
// reaped and dropped. Nothing else may wait: a second waiter would take
// exits that are not its own (os/exec's Wait racing a reaper misreports
// a successful command as failed).
//
// Processes that are not our children (adopted after a daemon restart)
// cannot be waited for at all; their exits come from a pidfd, elsewhere.
package reaper

import (
	"errors"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Attrs is how a child starts. Every child leads a process group of its
// own (its pgid is its pid), so that it and what it starts can be
// signalled as a whole.
type Attrs struct {
	// Path is the program to execute, with argv as its arguments (argv[0]
	// is the name it is told it has); "" is argv[0] itself.
	Path string
	Dir  string   // working directory; "" keeps the daemon's
	Env  []string // environment; nil passes the daemon's own
	// The child's stdin, stdout and stderr; nil is /dev/null.
	Stdin, Stdout, Stderr *os.File
	// OnExit, when set, is called with the child's exit on the reaping
	// goroutine, instead of the exit being sent on the channel Start
	// returns (it is then nil): no goroutine of the caller's waits for
	// each child. It must not block for long: other exits wait for it.
	OnExit func(Exit)
	// StartTicks, when not nil, is set to the child's start time as
	// /proc/PID/stat's field 22 has it (clock ticks since boot), or to 0
	// when it could not be known without reading /proc (see Start).
	StartTicks *uint64
}

// tickNanos is a clock tick of /proc/PID/stat's start time: USER_HZ is
// 100 on every Linux architecture Go runs on.
const tickNanos = 1e9 / 100

// bootNanos reads CLOCK_BOOTTIME, the clock of a process's start time.
func bootNanos() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return -1
	}
	return ts.Nano()
}

// the is the one reaper of this process: waiting is process-wide, so
// there can be no other.
var the = struct {
	once    sync.Once
	devnull *os.File
	err     error // from opening /dev/null

	// mu is held across a fork and the recording of its pid, and across
	// a reaping pass and the lookups of the pids it reaped: so a child is
	// recorded before its exit can be looked up, and a pid reaped as an
	// orphan cannot be reused by a new child before the lookup is done.
	mu      sync.Mutex
	waiting map[int]waiter           // children started and not yet reaped
	orphans map[chan<- struct{}]bool // told when orphans were reaped
}{}

// begin starts the reaping goroutine once, on first use. The maps are
// made here, not at init: every clinit command links this package, and
// the client must start doing nothing (t/startup_test.go).
func begin() error {
	the.once.Do(func() {
		the.mu.Lock()
		the.waiting, the.orphans = map[int]waiter{}, map[chan<- struct{}]bool{}
		the.mu.Unlock()
		the.devnull, the.err = os.Open(os.DevNull)
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGCHLD)
		go loop(sigs)
	})
	return the.err
}

// loop is the reaping goroutine: a pass at start (children may have
// exited before the signal was asked for), then one per SIGCHLD. Signals
// coalesce, so each pass reaps until no exited child is left.
func loop(sigs <-chan os.Signal) {
	for {
		reap()
		<-sigs
	}
}

// reap collects every exited child, then posts the exits of ours: so
// when an exit is posted, every orphan that had exited before it (those
// its process left behind) has been collected too.
func reap() {
	the.mu.Lock()
	var exits []Exit
	orphans := false
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no child; 0: none exited
			break
		}
		if _, ours := the.waiting[pid]; ours {
			exits = append(exits, Exit{Pid: pid, Status: ws})
		} else {
			orphans = true
		}
	}
	var calls []func()
	for _, x := range exits {
		w := the.waiting[x.Pid]
		delete(the.waiting, x.Pid)
		if w.f != nil {
			calls = append(calls, func() { w.f(x) })
		} else {
			w.c <- x // buffered for this one exit: never blocks
		}
	}
	if orphans {
		for c := range the.orphans {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
	the.mu.Unlock()
	// Outside the lock: a callback may start a child.
	for _, call := range calls {
		call()
	}
}

// waiter is who is told of a child's exit: a channel, or a function.
type waiter struct {
	c chan Exit
	f func(Exit)
}

// Start starts a.Path, or else argv[0] (a path: no $PATH lookup), with
// argv. The child's exit is sent once on the returned channel, which is
// never closed.
//
// The kernel stamps a child's start (CLOCK_BOOTTIME, shown in /proc in
// 10 ms ticks) during the fork: when the clock read before the fork and
// the one after are in the same tick, so is the start, and a.StartTicks
// is that tick; else (a fork across a tick boundary, one in ten or so) it
// is 0, and the caller reads /proc. A start costs two clock reads
// instead of opening and reading /proc/PID/stat, which the kernel builds
// anew each time.
func Start(argv []string, a Attrs) (pid int, exits <-chan Exit, err error) {
	if len(argv) == 0 {
		return 0, nil, errors.New("reaper: no command")
	}
	if err := begin(); err != nil {
		return 0, nil, err
	}
	files := []*os.File{a.Stdin, a.Stdout, a.Stderr}
	fds := make([]uintptr, len(files))
	for i, f := range files {
		if f == nil {
			f = the.devnull
		}
		fds[i] = f.Fd()
	}
	env := a.Env
	if env == nil {
		env = os.Environ()
	}
	attr := &syscall.ProcAttr{Dir: a.Dir, Env: env, Files: fds, Sys: &syscall.SysProcAttr{Setpgid: true}}
	var w waiter
	if a.OnExit != nil {
		w.f = a.OnExit
	} else {
		w.c = make(chan Exit, 1)
	}
	the.mu.Lock()
	var before int64
	if a.StartTicks != nil {
		before = bootNanos()
	}
	path := a.Path
	if path == "" {
		path = argv[0]
	}
	pid, err = syscall.ForkExec(path, argv, attr)
	if err == nil {
		the.waiting[pid] = w
		if a.StartTicks != nil {
			*a.StartTicks = 0
			if after := bootNanos(); before >= 0 && after >= 0 && before/tickNanos == after/tickNanos {
				*a.StartTicks = uint64(before / tickNanos)
			}
		}
	}
	the.mu.Unlock()
	runtime.KeepAlive(files)
	if err != nil {
		return 0, nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	return pid, w.c, nil
}

// NotifyOrphans makes the reaper signal c, without blocking, whenever a
// pass reaped orphans: a process group that was waited on may be empty
// now. Like signal.Notify, c should be buffered.
func NotifyOrphans(c chan<- struct{}) {
	begin()
	the.mu.Lock()
	the.orphans[c] = true
	the.mu.Unlock()
}

// StopOrphans undoes NotifyOrphans.
func StopOrphans(c chan<- struct{}) {
	the.mu.Lock()
	delete(the.orphans, c)
	the.mu.Unlock()
}

// signalGroup signals the process group of child pid, if pid has not
// been reaped yet: until then its number can belong to no one else.
func signalGroup(pid int, sig syscall.Signal) {
	the.mu.Lock()
	defer the.mu.Unlock()
	if _, ok := the.waiting[pid]; ok {
		unix.Kill(-pid, sig)
	}
}

// BecomeSubreaper makes orphaned descendants of this process its
// children rather than init's, so that none escapes supervision; the
// reaper collects them.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
