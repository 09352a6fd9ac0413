package keeper

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// procStat is what the keeper reads of /proc/PID/stat.
type procStat struct {
	pgid  int
	start uint64 // field 22, clock ticks since boot
	dead  bool   // a zombie: exited, not yet reaped
}

// readStat reads /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses itself: the other fields follow the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := bytes.Fields(data[i+1:])
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22.
	if len(f) < 20 || len(f[0]) == 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	pg, err1 := strconv.Atoi(string(f[2]))
	st, err2 := strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: bad pgrp or starttime", pid)
	}
	return procStat{pgid: pg, start: st, dead: f[0][0] == 'Z' || f[0][0] == 'X'}, nil
}

// envMatch is a process found by its environment.
type envMatch struct {
	pid, pgid int
	start     uint64
	group     string
}

// scanEnv lists every live process whose initial environment (what
// /proc/PID/environ shows) has CLINIT_NODE=node and CLINIT_GROUP set to
// one of groups, and no CLINIT_KEEPER but dir: several daemons may run
// on one machine under one node name (test beds in network namespaces
// share the PID namespace), and each one's children name its keeper. A
// process that rewrote its environment in place, or that was started
// with another one, is not found.
func scanEnv(node, dir string, groups map[string]bool, self int) []envMatch {
	if len(groups) == 0 {
		return nil
	}
	nodeKV := []byte("\x00CLINIT_NODE=" + node + "\x00")
	var out []envMatch
	eachPid(func(pid int) bool {
		if pid == self {
			return true
		}
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil || len(env) == 0 {
			return true
		}
		env = append(append([]byte{0}, env...), 0)
		if !bytes.Contains(env, nodeKV) {
			return true
		}
		g, ok := envValue(env, "CLINIT_GROUP")
		if !ok || !groups[g] {
			return true
		}
		if d, ok := envValue(env, "CLINIT_KEEPER"); ok && d != dir {
			return true // another daemon's
		}
		if st, err := readStat(pid); err == nil && !st.dead {
			out = append(out, envMatch{pid: pid, pgid: st.pgid, start: st.start, group: g})
		}
		return true
	})
	return out
}

// eachPid calls f with every pid in /proc until f returns false.
func eachPid(f func(pid int) bool) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(512)
		for _, name := range names {
			if pid, err := strconv.Atoi(name); err == nil && pid > 0 && !f(pid) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// envValue finds NAME's value in env, a NUL-separated list that starts
// and ends with NUL.
func envValue(env []byte, name string) (string, bool) {
	key := []byte("\x00" + name + "=")
	i := bytes.Index(env, key)
	if i < 0 {
		return "", false
	}
	v := env[i+len(key):]
	return string(v[:bytes.IndexByte(v, 0)]), true
}
