package keeper

import (
	"fmt"
	"strings"
	"unicode"
)

// maxStopTimeout bounds a lease's stop timeout: a larger one is taken
// for a unit mistake (seconds where nanoseconds are meant).
const maxStopTimeout = int64(24 * 3600 * 1e9)

// validate checks what a request carries against its op, before anything
// is changed: a bad request changes nothing.
func validate(r *Request) error {
	has := func(name string, set bool, want bool) error {
		switch {
		case set && !want:
			return fmt.Errorf("%s: unexpected %s", r.Op, name)
		case !set && want:
			return fmt.Errorf("%s: %s missing", r.Op, name)
		}
		return nil
	}
	var want struct{ deadline, group, pid, start bool }
	switch r.Op {
	case OpLease:
		want.deadline = true
	case OpHold, OpRelease:
		want.group = true
	case OpWatch:
		want.group, want.pid, want.start = true, true, true
	case OpUnwatch:
		want.pid = true
	case OpState, OpExit:
	case "":
		return fmt.Errorf("op missing (want one of %s)", opList)
	default:
		return fmt.Errorf("unknown op %q (want one of %s)", r.Op, opList)
	}
	for _, c := range []error{
		has("deadline", r.Deadline != 0, want.deadline),
		has("stop_timeout", r.StopTimeout != 0, want.deadline),
		has("group", r.Group != "", want.group),
		has("pid", r.Pid != 0, want.pid),
		has("start", r.Start != 0, want.start),
	} {
		if c != nil {
			return c
		}
	}
	switch {
	case r.Deadline < 0:
		return fmt.Errorf("lease: deadline %d is negative (want CLOCK_BOOTTIME ns)", r.Deadline)
	case r.StopTimeout < 0 || r.StopTimeout > maxStopTimeout:
		return fmt.Errorf("lease: stop_timeout %d ns is not within 1 ns to 24 h", r.StopTimeout)
	case r.Pid < 0:
		return fmt.Errorf("%s: pid %d is negative", r.Op, r.Pid)
	case r.Pid == 1:
		return fmt.Errorf("%s: pid 1 is init, never a group's process", r.Op)
	}
	if r.Group != "" {
		if err := checkName(r.Group); err != nil {
			return fmt.Errorf("%s: group %w", r.Op, err)
		}
	}
	return nil
}

const opList = "lease, hold, watch, unwatch, release, state, exit"

// checkName accepts what the cltab accepts as a group or node name: one
// or more characters, none of them ':', ',', whitespace or a control
// character (a NUL would break the environment match).
func checkName(s string) error {
	if len(s) > 255 {
		return fmt.Errorf("name of %d bytes is too long (at most 255)", len(s))
	}
	if i := strings.IndexFunc(s, func(c rune) bool {
		return c == ':' || c == ',' || unicode.IsSpace(c) || unicode.IsControl(c) || c == unicode.ReplacementChar
	}); i >= 0 {
		return fmt.Errorf("%q has a bad character at byte %d", s, i)
	}
	return nil
}
