package daemon

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reaper collects orphans. The daemon is a child subreaper (and may be
// PID 1), so every process orphaned below it is reparented to it and must
// be reaped here; the exits of its direct children belong to their own
// Wait goroutines and are never taken.
type reaper struct {
	// mu is held across a spawn, so that a new child is in ours before it
	// can exit and be mistaken for an orphan.
	mu   sync.Mutex
	ours map[int]bool
	// reaped is signalled (never blocking) when orphans were collected:
	// a stopped process group may be empty now.
	reaped chan struct{}
}

func newReaper() *reaper {
	return &reaper{ours: map[int]bool{}, reaped: make(chan struct{}, 1)}
}

// BecomeSubreaper makes orphaned descendants of this process its
// children rather than init's, so that none escapes supervision.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// watch reaps on every SIGCHLD until stop is closed.
func (r *reaper) watch(stop <-chan struct{}) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	for {
		select {
		case <-sigs:
			r.reap()
		case <-stop:
			return
		}
	}
}

// spawn runs start with mu held and records the child's pid as ours.
func (r *reaper) spawn(start func() (int, error)) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err == nil {
		r.ours[pid] = true
	}
	return pid, err
}

// waited is called once a child of ours has been waited for. An orphan
// zombie may have been queued behind it, so look again.
func (r *reaper) waited(pid int) {
	r.mu.Lock()
	delete(r.ours, pid)
	r.mu.Unlock()
	r.reap()
}

// reap collects every exited child that is not ours and reports whether
// it collected any. It peeks (WNOWAIT) before reaping, so a child of ours
// is left for its Wait goroutine; reap runs again once that has waited.
func (r *reaper) reap() bool {
	r.mu.Lock()
	n := 0
	for {
		var info unix.Siginfo
		if unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil) != nil {
			break // ECHILD: no child at all
		}
		pid := siginfoPid(&info)
		if pid <= 0 || r.ours[pid] {
			break
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err != nil {
			break
		}
		n++
	}
	r.mu.Unlock()
	if n > 0 {
		select {
		case r.reaped <- struct{}{}:
		default:
		}
	}
	return n > 0
}

// siginfoPid reads si_pid, the first field of siginfo's union, which
// x/sys leaves opaque: it follows three int32s, aligned to a pointer.
func siginfoPid(info *unix.Siginfo) int {
	off := uintptr(12)
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 16
	}
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), off)))
}
