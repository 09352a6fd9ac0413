package keeper

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// target is one process the keeper may signal, named by a pidfd so that
// a pid reused after the process is reaped is never signalled.
type target struct {
	Signalled
	fd    int // pidfd; -1 once closed
	start uint64
}

// openTarget opens a pidfd of pid and checks, after the open, that pid is
// still the process that started at start: if the pid was reused before
// the open the start time differs, and after it the pidfd names the
// process we checked for good.
func openTarget(pid int, start uint64, s Signalled) (*target, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pid %d is not running", pid)
		}
		return nil, fmt.Errorf("pidfd_open(%d): %w", pid, err)
	}
	st, err := readStat(pid)
	switch {
	case err != nil:
		err = fmt.Errorf("pid %d is not running", pid)
	case st.dead:
		err = fmt.Errorf("pid %d has exited", pid)
	case st.start != start:
		err = fmt.Errorf("pid %d started at %d, not %d: another process has its pid", pid, st.start, start)
	case s.Whole && st.pgid != pid:
		err = fmt.Errorf("pid %d does not lead its process group (%d)", pid, st.pgid)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s.Pid = pid
	return &target{Signalled: s, fd: fd, start: start}, nil
}

// reaped reports whether the process is gone for good (its pid may be
// someone else's by now).
func (t *target) reaped() bool {
	return t.fd < 0 || unix.PidfdSendSignal(t.fd, 0, nil, 0) != nil
}

// alive reports whether the process, or for a whole target any member of
// its process group, still runs (a zombie does not). groups gives the
// process groups with a live member; it is called only for a whole
// target whose leader has exited, as when a frozen daemon has not reaped
// its children.
func (t *target) alive(groups func() map[int]bool) bool {
	if t.reaped() {
		return false
	}
	st, err := readStat(t.Pid)
	if err == nil && !st.dead {
		return true
	}
	return t.Whole && groups()[t.Pid]
}

// signal sends sig to the process, or to its whole process group. The
// group is signalled only while its leader is not reaped: until then no
// other process can have its number as a process group.
func (t *target) signal(sig unix.Signal) error {
	if t.reaped() {
		return unix.ESRCH
	}
	if t.Whole {
		return unix.Kill(-t.Pid, sig)
	}
	return unix.PidfdSendSignal(t.fd, sig, nil, 0)
}

// dup returns a copy of t with a pidfd of its own.
func (t *target) dup() (*target, error) {
	fd, err := unix.FcntlInt(uintptr(t.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c := *t
	c.fd = fd
	return &c, nil
}

func (t *target) close() {
	if t.fd >= 0 {
		unix.Close(t.fd)
		t.fd = -1
	}
}

// liveGroups returns, in one pass over /proc, every process group that
// has a member that has not exited.
func liveGroups() map[int]bool {
	groups := map[int]bool{}
	eachPid(func(pid int) bool {
		if st, err := readStat(pid); err == nil && !st.dead {
			groups[st.pgid] = true
		}
		return true
	})
	return groups
}
