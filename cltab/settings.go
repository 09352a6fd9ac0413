package cltab

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Built-in defaults of the settings that have one; callers pass them to
// Duration and Int so flag > cltab > default precedence stays in one place.
const (
	DefaultStopTimeout   = 10 * time.Second
	DefaultRespawnWindow = 1 * time.Second
	DefaultRespawnPause  = 60 * time.Second
	DefaultRespawnLimit  = 5
	DefaultFenceTime     = 10 * time.Second

	// A fencing command still running then is killed and counts as
	// failed (Pacemaker's stonith-timeout has the same default).
	DefaultStomithTimeout = 60 * time.Second

	// DefaultSettle is how long a forming cluster waits for every
	// expected member before it places its HA groups: Pacemaker's
	// dc-deadtime has the same default, enough for machines powered on
	// together to boot a few seconds apart.
	DefaultSettle = 20 * time.Second
	// MinSettle is the shortest settle time other than 0 (off): below a
	// second the wait covers no start-up skew worth waiting for, and
	// looks like a typo for seconds.
	MinSettle = time.Second
	// MaxSettle bounds the wait: placement is delayed, never stopped.
	MaxSettle = time.Hour
)

// settings are every known setting with the check of its value, sorted
// by name. A slice, not a map: the linker lays it out, so it costs the
// process nothing at start (every clinit command, the client included,
// links this package).
var settings = []struct {
	name  string
	check func(string) error
}{
	{"clstat", nonEmpty},
	// whether HA groups go back to a more preferred node when it returns
	{"failback", onOff},
	{"fencetime", checkDuration},
	{"hactl", nonEmpty},
	{"hastat", nonEmpty},
	// how long a renewal holds a node's right to run its HA groups
	{"lease", leaseDuration},
	{"log", nonEmpty},
	{"nodes", positiveInt},
	{"quorum", positiveInt},
	{"respawnlimit", positiveInt},
	{"respawnpause", checkDuration},
	{"respawnwindow", respawnWindow},
	// the raft voters, by node name: 1 to 5 of them
	{"servers", nodeList},
	// how long a forming cluster waits for its expected members
	{"settle", settleDuration},
	{"socket", nonEmpty},
	{"statedir", nonEmpty},
	{"stomith", nonEmpty},
	// see DefaultStomithTimeout; 0 would kill every fencing command at once
	{"stomithtimeout", positiveDuration},
	{"stoptimeout", checkDuration},
	// voters that hold no HA group: a tie-breaker for two machines
	{"witness", nodeList},
}

// settingCheck is the check of the setting name; false for an unknown one.
func settingCheck(name string) (func(string) error, bool) {
	for _, s := range settings {
		if s.name == name {
			return s.check, true
		}
	}
	return nil, false
}

// KnownSettings returns the sorted names of every setting the cltab accepts.
func KnownSettings() []string {
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = s.name
	}
	return names
}

func nonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func checkDuration(v string) error {
	_, err := ParseDuration(v)
	return err
}

var errNotPositive = errors.New("must be more than 0")

func positiveDuration(v string) error {
	d, err := ParseDuration(v)
	if err == nil && d <= 0 {
		return errNotPositive
	}
	return err
}

// MinLease is the shortest lease: raft's heartbeat is a quarter of it
// (cluster/raftnode), and below 250 ms an election does not settle
// within a lease on a loaded machine.
const MinLease = time.Second

func leaseDuration(v string) error {
	d, err := ParseDuration(v)
	if err == nil && d < MinLease {
		return fmt.Errorf("must be at least %v", MinLease)
	}
	return err
}

func settleDuration(v string) error {
	d, err := ParseDuration(v)
	switch {
	case err != nil:
		return err
	case d != 0 && d < MinSettle:
		return fmt.Errorf("must be 0 (no wait) or at least %v", MinSettle)
	case d > MaxSettle:
		return fmt.Errorf("must be at most %v", MaxSettle)
	}
	return nil
}

func onOff(v string) error {
	if _, ok := ParseOnOff(v); !ok {
		return errors.New("want on or off")
	}
	return nil
}

// ParseOnOff reads an on/off value (failback): "on" or "off".
func ParseOnOff(v string) (on, ok bool) {
	switch v {
	case "on":
		return true, true
	case "off":
		return false, true
	}
	return false, false
}

// Failback reports the cltab's failback setting (on unless set off).
func (t *Tab) Failback() bool {
	if t == nil {
		return true
	}
	v, ok := t.Setting("failback")
	if !ok {
		return true
	}
	on, ok := ParseOnOff(v)
	return on || !ok
}

// SplitNames is the names of a node list setting (servers, witness):
// comma-separated, blanks around them and empty ones dropped.
func SplitNames(v string) []string {
	var names []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// nodeList: comma-separated node names, each by the name rule, 1 to 5
// (more voters slow every commit and buy nothing a sysadmin's cluster
// needs).
func nodeList(v string) error {
	n := 0
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if err := CheckName(name); err != nil {
			return fmt.Errorf("node %q: %w", name, err)
		}
		n++
	}
	if n < 1 || n > 5 {
		return fmt.Errorf("names %d nodes; want 1 to 5 voters", n)
	}
	return nil
}

// respawnWindow: a window of 0 makes no exit rapid, so the throttle
// never rests a crashing entry (1,490 restarts in 2 s).
func respawnWindow(v string) error {
	err := positiveDuration(v)
	if errors.Is(err, errNotPositive) {
		return fmt.Errorf("%w: with 0 no restart counts as rapid, and a crashing entry restarts without end", err)
	}
	return err
}

func positiveInt(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return errors.New("want an integer")
	}
	if n < 1 {
		return errors.New("must be at least 1")
	}
	return nil
}

// ParseDuration accepts a Go duration ("10s", "1m30s", "500ms") or a bare
// non-negative number meaning seconds ("10", "0.5"), the form the Perl
// original's settings used. Negative durations are an error.
func ParseDuration(s string) (time.Duration, error) {
	if isDecimal(s) {
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || secs*float64(time.Second) >= math.MaxInt64 {
			return 0, errors.New("out of range")
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if d < 0 || err != nil && strings.HasPrefix(s, "-") && isDecimal(s[1:]) {
		return 0, errors.New("must not be negative")
	}
	if err != nil {
		return 0, errors.New("want a duration like 10s, 1m30s or 500ms, or a number of seconds")
	}
	return d, nil
}

// isDecimal reports whether s is digits with at most one '.', so that
// ParseFloat's other forms (1e3, inf, 0x1p4) are not taken as seconds.
func isDecimal(s string) bool {
	digits := false
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits = true
		} else if r != '.' {
			return false
		}
	}
	return digits && strings.Count(s, ".") <= 1
}

// Duration returns a duration setting's value, or def when unset (or when
// t is nil: no cltab).
func (t *Tab) Duration(name string, def time.Duration) time.Duration {
	if t == nil {
		return def
	}
	v, ok := t.Setting(name)
	if !ok {
		return def
	}
	d, err := ParseDuration(v)
	if err != nil { // only for a Tab not built by Parse
		return def
	}
	return d
}

// Int returns an integer setting's value, or def when unset (or when t is
// nil: no cltab).
func (t *Tab) Int(name string, def int) int {
	if t == nil {
		return def
	}
	v, ok := t.Setting(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil { // only for a Tab not built by Parse
		return def
	}
	return n
}
