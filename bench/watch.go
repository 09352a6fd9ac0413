package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The bench learns that N services run, or that they are gone, from
// events, not by polling: polling would take CPU from the very processes
// being timed on a small machine.

// dirWatch reports the names created in (or renamed into) one directory:
// a multiWatch (cluster.go) of that one directory.
type dirWatch = multiWatch

// watchDir starts watching dir. The kernel queues up to
// fs.inotify.max_queued_events (16384 by default) events: enough for the
// 1,000 markers of the scale figures.
func watchDir(dir string) (*dirWatch, error) { return watchDirs(dir) }

// waitCount waits until n distinct names have appeared and returns when
// the last one was seen.
func (w *dirWatch) waitCount(n int, timeout time.Duration) (int64, error) {
	seen := map[string]bool{}
	deadline := time.Now().Add(timeout)
	for {
		ev, err := w.next(deadline)
		if errors.Is(err, errTimeout) {
			return 0, fmt.Errorf("%d of %d markers after %v: %w", len(seen), n, timeout, errTimeout)
		}
		if err != nil {
			return 0, err
		}
		seen[ev.name] = true
		if len(seen) >= n {
			return ev.ns, nil
		}
	}
}

// waitFile waits until name appears and ok(its content) holds, and
// returns when that was seen.
func (w *dirWatch) waitFile(dir, name string, ok func([]byte) bool, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		ev, err := w.next(deadline)
		if errors.Is(err, errTimeout) {
			data, _ := os.ReadFile(filepath.Join(dir, name))
			return 0, fmt.Errorf("%s after %v: %q: %w", filepath.Join(dir, name), timeout, data, errTimeout)
		}
		if err != nil {
			return 0, err
		}
		if ev.name != name {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil && ok(data) {
			return ev.ns, nil
		}
	}
}

// pidsGone watches processes through pidfds (they need not be our
// children): a pidfd turns readable when its process exits.
type pidsGone struct {
	epfd int
	fds  []int
	left int // processes not seen to exit yet
}

func watchPids(pids []int) (*pidsGone, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	w := &pidsGone{epfd: epfd}
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue // gone already
		}
		if err != nil {
			w.close()
			return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
		}
		w.fds = append(w.fds, fd)
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			w.close()
			return nil, err
		}
		w.left++
	}
	return w, nil
}

// wait blocks until every process has exited and returns when the last
// exit was seen. A pidfd stays readable, so each is taken out of the
// epoll set once seen.
func (w *pidsGone) wait(timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	evs := make([]unix.EpollEvent, 256)
	last := monotonic()
	for w.left > 0 {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms <= 0 {
			return 0, fmt.Errorf("%d processes still alive after %v: %w", w.left, timeout, errTimeout)
		}
		n, err := unix.EpollWait(w.epfd, evs, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		last = monotonic()
		for _, ev := range evs[:n] {
			unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(ev.Fd), nil)
			w.left--
		}
	}
	return last, nil
}

func (w *pidsGone) close() {
	for _, fd := range w.fds {
		unix.Close(fd)
	}
	unix.Close(w.epfd)
}
