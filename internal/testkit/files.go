package testkit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clinit/clinit/api"
)

// ReadHastat reads a hastat file (api.ParseHastat). A file not there yet
// (or removed as its daemon exited) reads as an empty view.
func ReadHastat(path string) (api.Hastat, error) { return readParsed(path, api.ParseHastat) }

// ReadClstat reads a clstat file (api.ParseClstat), a missing one as no
// group.
func ReadClstat(path string) (api.Status, error) { return readParsed(path, api.ParseClstat) }

// readParsed reads the file at path with parse; a missing one is read as
// empty text.
func readParsed[T any](path string, parse func(string) (T, error)) (T, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		var zero T
		return zero, err
	}
	v, err := parse(string(data))
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Lines returns the complete lines of a file: none if it is missing, and
// not a last line still being written (no newline yet).
func Lines(path string) []string {
	data, _ := os.ReadFile(path)
	s := string(data)
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(s[:i], "\n")
}

// Poll calls cond every 15 ms until it holds (true) or timeout passes
// (false): for what the daemon shows only in a file or a process table.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(15 * time.Millisecond)
	}
}

// Alive reports whether pid is a live process; a zombie is not.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	switch b[i+2] {
	case 'Z', 'X', 'x':
		return false
	}
	return true
}

// Pids lists every process of the machine (of the pid namespace).
func Pids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Tagged lists the live processes whose environment sets name to a value
// match accepts: a launcher puts a tag in a daemon's environment, and
// every process the daemon starts inherits it.
func Tagged(name string, match func(value string) bool) []int {
	want := []byte(name + "=")
	self := os.Getpid()
	var out []int
	for _, pid := range Pids() {
		if pid == self {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, want); ok {
				if match(string(v)) && Alive(pid) {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out
}

// Describe is "PID(command line)", for a message about a process.
func Describe(pid int) string {
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return fmt.Sprintf("%d(%s)", pid, bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '}))
}

// DescribeAll describes each of pids.
func DescribeAll(pids []int) []string {
	var out []string
	for _, p := range pids {
		out = append(out, Describe(p))
	}
	return out
}

// KillTagged SIGKILLs the processes Tagged finds, each with its process
// group (but the caller's), in rounds until none is left or five rounds
// have passed (a process may fork while the first ones die); it returns
// how many it found alive the first time.
func KillTagged(name string, match func(value string) bool) int {
	own := syscall.Getpgrp()
	n := 0
	for round := range 5 {
		pids := Tagged(name, match)
		if round == 0 {
			n = len(pids)
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if pg, err := syscall.Getpgid(pid); err == nil && pg > 1 && pg != own {
				syscall.Kill(-pg, syscall.SIGKILL)
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n
}
