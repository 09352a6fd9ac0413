package daemon

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The two /proc readers here (procStart, liveProcs) are kept rather than
// github.com/prometheus/procfs: procfs compiles some twenty regular
// expressions at package initialisation, measured at 0.27 ms of
// GODEBUG=inittrace=1 (median of 60 runs of clinit --version), which
// every clinit process but a plain tell would pay, the command-line
// client's --status, -v and --hastat included, for two fields of one
// line (internal/promtext reads /proc/self/stat for the same reason).

// procStart reads a process's start time (clock ticks since boot) and
// process group from /proc/PID/stat. With the pid, the start time names a
// process for good: a reused pid has another start time. It runs after
// every start (the journal records the start time), so it reads with
// three system calls into a buffer of its own, not os.ReadFile's five and
// a file object.
func procStart(pid int) (start uint64, pgid int, err error) {
	var buf [statMax]byte
	st, err := readStat(pid, &buf)
	if err != nil {
		return 0, 0, err
	}
	if st.state == 'Z' {
		return 0, 0, fmt.Errorf("process %d has exited", pid)
	}
	return st.start, st.pgid, nil
}

// statMax bounds what readStat reads of /proc/PID/stat: some 52 numbers
// and a command name of at most 64 bytes, escaped.
const statMax = 2048

// statFields is what the daemon uses of /proc/PID/stat.
type statFields struct {
	state           byte
	ppid, pgid, sid int
	start           uint64
}

// readStat reads and parses /proc/PID/stat.
func readStat(pid int, buf *[statMax]byte) (statFields, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return statFields{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return statFields{}, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	unix.Close(fd)
	if n == len(buf) {
		return statFields{}, fmt.Errorf("%s: over %d bytes", path, statMax)
	}
	return parseStat(path, buf[:n])
}

// parseStat parses a /proc/PID/stat line. The command name, field 2, is
// in parentheses and may hold spaces or parentheses itself: the fields
// that follow start after the last ')'.
func parseStat(path string, data []byte) (statFields, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return statFields{}, fmt.Errorf("%s: unexpected format", path)
	}
	f := bytes.Fields(data[i+1:])
	// f[0] is field 3 (state); ppid is field 4, pgrp field 5, session
	// field 6, starttime field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return statFields{}, fmt.Errorf("%s: unexpected format", path)
	}
	pp, err1 := strconv.Atoi(string(f[1]))
	pg, err2 := strconv.Atoi(string(f[2]))
	sid, err4 := strconv.Atoi(string(f[3]))
	st, err3 := strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return statFields{}, fmt.Errorf("%s: unexpected format", path)
	}
	return statFields{state: f[0][0], ppid: pp, pgid: pg, sid: sid, start: st}, nil
}

// watchPid calls onExit once process pid (which need not be our child)
// has exited, if it is still the process that started at start and leads
// its own process group. The exit is learned from a pidfd through the
// runtime's poller: no thread blocks and nothing polls.
func watchPid(pid int, start uint64, onExit func()) error {
	return watchProc(pid, start, pid, onExit)
}

// watchProc is watchPid for any member of process group pgid.
func watchProc(pid int, start uint64, pgid int, onExit func()) error {
	f, err := openPidfd(pid)
	if err != nil {
		return err
	}
	// Checked after the open: if the pid was reused before it, the start
	// time differs; after it, the pidfd still names the process we mean.
	if st, pg, err := procStart(pid); err != nil || st != start || pg != pgid {
		f.Close()
		if err == nil {
			err = fmt.Errorf("pid %d is another process now", pid)
		}
		return err
	}
	go func() {
		awaitExit(f)
		onExit()
	}()
	return nil
}

// openPidfd opens a pidfd of pid, to wait for its exit in the runtime's
// poller.
func openPidfd(pid int) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid)), nil
}

// awaitExit returns once the process of pidfd f has exited, and closes f.
// The calling goroutine is parked in the poller: it holds no thread, so a
// thousand children do not make a thousand threads.
func awaitExit(f *os.File) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// A pidfd turns readable when its process exits.
	rc.Read(func(fd uintptr) bool {
		n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return n > 0
	})
}

// procInfo is what the daemon reads of a process in /proc/PID/stat.
type procInfo struct {
	pid, ppid, pgid, sid int
	start                uint64
}

// liveProcs calls f for every process that has not exited (zombies are
// left out) until f returns false.
func liveProcs(f func(procInfo) bool) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	defer d.Close()
	var buf [statMax]byte
	for {
		names, err := d.Readdirnames(256)
		for _, name := range names {
			pid, err := strconv.Atoi(name)
			if err != nil || pid <= 0 {
				continue
			}
			st, err := readStat(pid, &buf)
			if err != nil || st.state == 'Z' || st.state == 'X' {
				continue
			}
			if !f(procInfo{pid: pid, ppid: st.ppid, pgid: st.pgid, sid: st.sid, start: st.start}) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// groupAlive reports whether process group pgid has a live member. kill
// finds zombies too: orphans are reaped by us before we ask, but an
// adopted process is not our child, and its zombie waits for its own
// parent; so when kill finds the group, /proc has the last word.
func groupAlive(pgid int) bool {
	_, _, ok := groupMember(pgid)
	return ok
}

// groupMember returns a live member of process group pgid.
//
// A scan reads /proc's listing in batches, then each process's stat: a
// member that forks a child and exits between the two hides the child,
// which was not listed yet (a double-forking daemon's group looked empty
// while its grandchild ran, and the entry was started again). So while
// kill(-pgid, 0) says the group has members, a scan that finds none is
// made again, a few times: what it then still misses are zombies, which
// keep their group until they are reaped, and a group of zombies only
// is empty.
func groupMember(pgid int) (pid int, start uint64, ok bool) {
	for range 3 {
		if pgid <= 0 || unix.Kill(-pgid, 0) != nil {
			return 0, 0, false
		}
		liveProcs(func(p procInfo) bool {
			if p.pgid == pgid {
				pid, start, ok = p.pid, p.start, true
			}
			return !ok
		})
		if ok {
			return pid, start, true
		}
	}
	return 0, 0, false
}

// entryEnv is what a process started for an entry, and its descendants
// unless they changed it, carry in their environment.
func entryEnv(group, tag string) [][]byte {
	return [][]byte{[]byte("CLINIT_GROUP=" + group + "\x00"), []byte("CLINIT_TAG=" + tag + "\x00")}
}

// hasEnv reports whether pid's initial environment holds every one of
// kvs, each "NAME=value\x00".
func hasEnv(pid int, kvs [][]byte) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	env = append([]byte{0}, env...)
	for _, kv := range kvs {
		if !bytes.Contains(env, append([]byte{0}, kv...)) {
			return false
		}
	}
	return true
}

// groupOf reports whether process group pgid still has a live member
// started for the entry group/tag: a process group number the daemon
// remembers from before a restart may since have been taken by others.
func groupOf(pgid int, group, tag string) bool {
	if pgid <= 0 || unix.Kill(-pgid, 0) != nil {
		return false
	}
	env := entryEnv(group, tag)
	found := false
	liveProcs(func(p procInfo) bool {
		found = p.pgid == pgid && hasEnv(p.pid, env)
		return !found
	})
	return found
}

// strays lists the live orphans reparented to this daemon (its subreaper
// role) that were started for the entry group/tag and left the process
// groups the daemon knows (setsid): it can neither watch nor stop them.
func strays(group, tag string, known map[int]bool) []int {
	self := os.Getpid()
	env := entryEnv(group, tag)
	var out []int
	liveProcs(func(p procInfo) bool {
		if p.ppid == self && !known[p.pgid] && hasEnv(p.pid, env) {
			out = append(out, p.pid)
		}
		return true
	})
	return out
}

// leader is a live process group leader found by its environment: the
// first process of a run of entry group/tag.
type leader struct {
	group, tag string
	pid        int
	start      uint64
}

// entryLeaders lists the live process group leaders whose environment
// names keeper (CLINIT_KEEPER: this daemon's state directory, so not
// another daemon's on the same machine) and an entry, leaving out the
// pids in known. After a crash they are the runs our predecessor started
// and did not live to record. Left out too, as descendants of a run that
// made process groups of their own: a session leader (the daemon starts
// a run in a process group of its own within its session, so one that
// leads a session left with setsid), and one whose parent carries the
// same mark (a run's parent was the daemon, dead now).
func entryLeaders(keeper string, known map[int]bool) []leader {
	if keeper == "" {
		return nil
	}
	mark := []byte("\x00CLINIT_KEEPER=" + keeper + "\x00")
	marked := func(pid int) ([]byte, bool) {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			return nil, false
		}
		env = append(append([]byte{0}, env...), 0)
		return env, bytes.Contains(env, mark)
	}
	var out []leader
	liveProcs(func(p procInfo) bool {
		if p.pid != p.pgid || p.pid == p.sid || known[p.pid] {
			return true
		}
		env, ok := marked(p.pid)
		if !ok {
			return true
		}
		if _, parentOurs := marked(p.ppid); parentOurs {
			return true
		}
		group, ok1 := envValue(env, "CLINIT_GROUP")
		tag, ok2 := envValue(env, "CLINIT_TAG")
		if ok1 && ok2 {
			out = append(out, leader{group: group, tag: tag, pid: p.pid, start: p.start})
		}
		return true
	})
	return out
}

// envValue is NAME's value in env, a NUL-separated list that starts and
// ends with NUL.
func envValue(env []byte, name string) (string, bool) {
	i := bytes.Index(env, []byte("\x00"+name+"="))
	if i < 0 {
		return "", false
	}
	v := env[i+len(name)+2:]
	return string(v[:bytes.IndexByte(v, 0)]), true
}
