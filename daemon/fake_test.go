package daemon

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/reaper"
)

// The fakes of the transcript tests: a child starter that runs nothing and
// a clock that moves only when told. Both write what the engine asks of
// them to one effects log, in the order it asked.

// effects is the ordered record of what the engine did in one step.
type effects struct {
	mu    sync.Mutex
	lines []string
}

func (r *effects) add(format string, args ...any) {
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// take returns the effects recorded since the last take.
func (r *effects) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.lines = nil
	return out
}

// fakePidBase puts fake pids above any pid_max (2^22): were one to reach
// the kernel by mistake, it would name no process.
const fakePidBase = 1 << 30

// fakeChild is one child the fake starter pretends to run.
type fakeChild struct {
	pid    int
	name   string // TAG.N: the Nth start of entry TAG
	tag    string
	onExit func(*reaper.Exit)
	// signalled: the engine has sent its process group a signal.
	signalled bool
}

// fakeStarter stands in for the spawner: spawn records the start and
// returns a fake pid; the script ends a child with exit. A process group
// has no members but its leader, unless the script says the leader left
// some (leave): then the group lingers until the script empties it.
type fakeStarter struct {
	fx *effects
	// orphanc is the engine's notice that orphans were reaped: unbuffered,
	// so that a send returns once the loop has taken it, and what the
	// loop does with it falls within the script's step.
	orphanc chan struct{}
	// quit ends the notices still pending when the engine stops.
	quit chan struct{}

	mu     sync.Mutex
	next   int
	starts map[string]int     // starts by tag
	live   map[int]*fakeChild // by pid
	names  map[int]string     // every pid ever given, by pid
	groups map[int]*fakeChild // process groups whose leader exited, by pgid
	// failing holds the tags whose next start fails.
	failing map[string]bool
	// exitOnSignal makes every signal end its child at once (for the
	// shutdown at the end of a transcript).
	exitOnSignal bool
}

func newFakeStarter(fx *effects) *fakeStarter {
	return &fakeStarter{fx: fx, orphanc: make(chan struct{}), quit: make(chan struct{}),
		starts: map[string]int{}, live: map[int]*fakeChild{}, names: map[int]string{}, groups: map[int]*fakeChild{}, failing: map[string]bool{}}
}

func (f *fakeStarter) spawn(ent *cltab.Entry, level, exitFile, outFifo string, onExit func(*reaper.Exit)) (int, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing[ent.Tag] {
		delete(f.failing, ent.Tag)
		f.fx.add("start %s fails (%s level %s: %s)", ent.Tag, ent.Group, level, ent.Command)
		return 0, 0, syscall.ENOEXEC
	}
	f.next++
	f.starts[ent.Tag]++
	c := &fakeChild{pid: fakePidBase + f.next, name: fmt.Sprintf("%s.%d", ent.Tag, f.starts[ent.Tag]), tag: ent.Tag, onExit: onExit}
	f.live[c.pid], f.names[c.pid] = c, c.name
	f.fx.add("start %s (%s level %s: %s)", c.name, ent.Group, level, ent.Command)
	return c.pid, uint64(f.next), nil
}

func (f *fakeStarter) readOutput() {} // a fake child writes nothing

func (f *fakeStarter) kill(pgid int, sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.live[pgid]
	if c == nil && f.groups[pgid] != nil {
		f.fx.add("kill -%s -%s (group)", sigName(sig), f.name(pgid))
		f.groups[pgid].signalled = true
		if f.exitOnSignal {
			delete(f.groups, pgid)
			go f.notifyOrphans()
		}
		return nil
	}
	if c == nil {
		f.fx.add("kill -%s -%s (no such process)", sigName(sig), f.name(pgid))
		return syscall.ESRCH
	}
	f.fx.add("kill -%s -%s", sigName(sig), c.name)
	c.signalled = true
	if f.exitOnSignal {
		delete(f.live, pgid)
		// From a goroutine of its own, as the reaper reports exits: the
		// engine loop is the caller.
		go c.onExit(&reaper.Exit{Pid: pgid, Status: unix.WaitStatus(sig)})
	}
	return nil
}

func (f *fakeStarter) groupAlive(pgid int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live[pgid] != nil || f.groups[pgid] != nil
}

func (f *fakeStarter) orphans() (<-chan struct{}, func()) { return f.orphanc, func() {} }

// notifyOrphans tells the engine, as the reaper does, that orphans were
// reaped; it returns once the loop has taken the notice.
func (f *fakeStarter) notifyOrphans() {
	select {
	case f.orphanc <- struct{}{}:
	case <-f.quit:
	}
}

// empty ends the last members of the lingering process group named (by
// its leader, TAG.N, or TAG when one group of TAG lingers).
func (f *fakeStarter) empty(who string) error {
	f.mu.Lock()
	c, err := named(f.groups, who, "no process group of %s lingers")
	if err != nil {
		f.mu.Unlock()
		return err
	}
	delete(f.groups, c.pid)
	f.mu.Unlock()
	f.notifyOrphans()
	return nil
}

// named is the one child in in that who names (TAG.N, or TAG when one
// child only has it); none formats the error when who names nothing.
func named(in map[int]*fakeChild, who, none string) (*fakeChild, error) {
	var found []*fakeChild
	for _, c := range in {
		if c.name == who || c.tag == who {
			found = append(found, c)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf(none, who)
	case len(found) > 1:
		var names []string
		for _, c := range found {
			names = append(names, c.name)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%s names %s: say which", who, strings.Join(names, ", "))
	}
	return found[0], nil
}

// exit ends the live child named (TAG.N) or of entry TAG with how,
// an exit status or a signal name; it returns what it ended, or an error
// for the script. With leave, others of its process group live on.
func (f *fakeStarter) exit(who, how string, leave bool) (*fakeChild, *reaper.Exit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := named(f.live, who, "no child of %s is running")
	if err != nil {
		return nil, nil, err
	}
	var status unix.WaitStatus
	if code, err := parseCode(how); err == nil {
		status = unix.WaitStatus(code << 8)
	} else if sig := unix.SignalNum("SIG" + strings.TrimPrefix(strings.ToUpper(how), "SIG")); sig != 0 {
		status = unix.WaitStatus(sig)
	} else {
		return nil, nil, fmt.Errorf("exit %s %s: want an exit status 0-255 or a signal name", who, how)
	}
	delete(f.live, c.pid)
	if leave {
		f.groups[c.pid] = c
	}
	return c, &reaper.Exit{Pid: c.pid, Status: status}, nil
}

// failNext makes the next start of tag fail, as a fork or exec can.
func (f *fakeStarter) failNext(tag string) {
	f.mu.Lock()
	f.failing[tag] = true
	f.mu.Unlock()
}

// endOnSignal makes every child end on its next signal, and ends at once
// those that had one already: the engine, shutting down, stops them all.
func (f *fakeStarter) endOnSignal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exitOnSignal = true
	for pid, c := range f.live {
		if c.signalled {
			delete(f.live, pid)
			go c.onExit(&reaper.Exit{Pid: pid, Status: unix.WaitStatus(syscall.SIGTERM)})
		}
	}
	for pgid, c := range f.groups {
		if c.signalled {
			delete(f.groups, pgid)
			go f.notifyOrphans()
		}
	}
}

// stop ends the notices the engine will not take any more.
func (f *fakeStarter) stop() { close(f.quit) }

// running lists the live children by name, sorted, and the process
// groups that linger after their leader, as "TAG.N (group)".
func (f *fakeStarter) running() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.live {
		out = append(out, c.name)
	}
	for _, c := range f.groups {
		out = append(out, c.name+" (group)")
	}
	sort.Strings(out)
	return out
}

// name is the fake pid's name, for output.
func (f *fakeStarter) name(pid int) string {
	if n, ok := f.names[pid]; ok {
		return n
	}
	return fmt.Sprint(pid)
}

func (f *fakeStarter) nameOf(pid int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.name(pid)
}

func parseCode(s string) (int, error) {
	var code int
	if _, err := fmt.Sscanf(s, "%d", &code); err != nil || fmt.Sprint(code) != s || code < 0 || code > 255 {
		return 0, fmt.Errorf("not an exit status: %s", s)
	}
	return code, nil
}

func sigName(sig syscall.Signal) string { return strings.TrimPrefix(signalName(sig), "SIG") }

// fakeClock is a clock whose time moves only by advance; its timers fire
// there, in the order they are due.
type fakeClock struct {
	fx    *effects
	start time.Time

	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // pending, in the order they were armed
}

type fakeTimer struct {
	c   *fakeClock
	due time.Time
	f   func()
}

func newFakeClock(fx *effects) *fakeClock {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &fakeClock{fx: fx, start: start, now: start}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// rel is t as the time since the clock's start.
func (c *fakeClock) rel(t time.Time) string { return t.Sub(c.start).String() }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, due: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.fx.add("timer %v, due at %s", d, c.rel(t.due))
	return t
}

func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.timers {
		if p == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			c.fx.add("timer due at %s stopped", c.rel(t.due))
			return true
		}
	}
	return false
}

// fireNext moves the clock to the first timer due by until and fires it
// (its f posts to the engine, as a real timer's does), or moves the clock
// to until and reports false when none is.
func (c *fakeClock) fireNext(until time.Time) bool {
	c.mu.Lock()
	var next *fakeTimer
	at := -1
	for i, t := range c.timers {
		if !t.due.After(until) && (next == nil || t.due.Before(next.due)) {
			next, at = t, i
		}
	}
	if next == nil {
		c.now = until
		c.mu.Unlock()
		return false
	}
	c.timers = append(c.timers[:at], c.timers[at+1:]...)
	c.now = next.due
	c.fx.add("timer due at %s fires", c.rel(next.due))
	c.mu.Unlock()
	next.f()
	return true
}

// logCore is a zap core that writes to the effects the engine's log lines
// that a transcript shows: group state changes and every warning and
// error.
type logCore struct {
	fx     *effects
	fields []zapcore.Field
}

func (l *logCore) Enabled(zapcore.Level) bool { return true }

func (l *logCore) With(fs []zapcore.Field) zapcore.Core {
	return &logCore{fx: l.fx, fields: append(l.fields[:len(l.fields):len(l.fields)], fs...)}
}

func (l *logCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(ent, l)
}

func (l *logCore) Write(ent zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(l.fields, fs...) {
		f.AddTo(enc)
	}
	switch {
	case ent.Message == "group state":
		line := fmt.Sprintf("state %v %v %v", enc.Fields["group"], enc.Fields["level"], enc.Fields["state"])
		if enc.Fields["state"] == api.StateFailed {
			line += fmt.Sprintf(" (%v)", enc.Fields["why"])
		}
		l.fx.add("%s", line)
	case ent.Level >= zapcore.WarnLevel:
		line := ent.Level.String() + ": " + ent.Message
		if tag, ok := enc.Fields["tag"]; ok && !strings.HasPrefix(ent.Message, fmt.Sprint(tag)+" ") {
			line += fmt.Sprintf(" (%v)", tag)
		}
		l.fx.add("%s", line)
	}
	return nil
}

func (l *logCore) Sync() error { return nil }
