package daemon

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// procStart reads a process's start time (clock ticks since boot) and
// process group from /proc/PID/stat. With the pid, the start time names a
// process for good: a reused pid has another start time.
func procStart(pid int) (start uint64, pgid int, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces
	// or parentheses itself: the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := bytes.Fields(data[i+1:])
	// f[0] is field 3 (state); pgrp is field 5, starttime field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	if f[0][0] == 'Z' {
		return 0, 0, fmt.Errorf("process %d has exited", pid)
	}
	pg, err1 := strconv.Atoi(string(f[2]))
	st, err2 := strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return st, pg, nil
}

// watchPid calls onExit once process pid (which need not be our child)
// has exited, if it is still the process that started at start. The exit
// is learned from a pidfd through the runtime's poller: no thread blocks
// and nothing polls.
func watchPid(pid int, start uint64, onExit func()) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return err
	}
	// Checked after the open: if the pid was reused before it, the start
	// time differs; after it, the pidfd still names the process we mean.
	if st, pgid, err := procStart(pid); err != nil || st != start || pgid != pid {
		unix.Close(fd)
		if err == nil {
			err = fmt.Errorf("pid %d is another process now", pid)
		}
		return err
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid))
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	go func() {
		defer f.Close()
		// A pidfd turns readable when its process exits.
		rc.Read(func(fd uintptr) bool {
			n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			return n > 0
		})
		onExit()
	}()
	return nil
}

// groupAlive reports whether process group pgid has a live member. kill
// finds zombies too: orphans are reaped by us before we ask, but an
// adopted process is not our child, and its zombie waits for its own
// parent; so when kill finds the group, /proc has the last word.
func groupAlive(pgid int) bool {
	if unix.Kill(-pgid, 0) != nil {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(data[i+1:])
		if len(f) < 3 || f[0][0] == 'Z' || f[0][0] == 'X' {
			continue
		}
		if pg, err := strconv.Atoi(string(f[2])); err == nil && pg == pgid && pid > 0 {
			return true
		}
	}
	return false
}
