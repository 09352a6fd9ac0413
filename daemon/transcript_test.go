package daemon

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
)

// TestTranscripts runs the runlevel rules of SPEC 3 as transcripts
// (testdata/transcripts/*.txt, in the datadriven format of etcd-io/raft's
// testdata): each file drives one engine, through its real loop, with a
// fake child starter and a fake clock, and holds after every command what
// the engine must have done. Commands:
//
//	cltab                 the cltab (given as the command's input) to start with; first
//	tell GROUP LEVEL      tell(GROUP, LEVEL)
//	exit WHO CODE         a child ends: WHO is a tag or a pid name (TAG.N, the
//	                      Nth start of TAG); CODE an exit status or a signal (TERM)
//	leave WHO CODE        a child ends as exit says, leaving others in its process group
//	empty WHO             the last of the process group a leader left (WHO: TAG.N or
//	                      TAG) exit, and the engine hears that orphans were reaped
//	reread                the cltab is replaced by the input and reread
//	tick DURATION         the clock moves on; timers due meanwhile fire in order
//	failstart TAG         the next start of TAG fails (as a fork or exec can)
//	entries               every told entry: pid, restarts, last exit, rest
//	running               the children alive, and the process groups left (TAG.N (group))
//
// Each step's output is what the engine did, in order: starts (start
// TAG.N), signals to a process group (kill -SIG -TAG.N), timers armed,
// stopped and fired (times since the clock's start), group state changes,
// warnings; then the clstat lines. Run with -rewrite (or CLINIT_REWRITE=1)
// to write the outputs of the engine in place of the expected ones.
func TestTranscripts(t *testing.T) {
	if os.Getenv("CLINIT_REWRITE") != "" {
		if err := flag.Set("rewrite", "true"); err != nil {
			t.Fatal(err)
		}
	}
	datadriven.Walk(t, filepath.Join("testdata", "transcripts"), func(t *testing.T, path string) {
		s := &script{t: t, dir: t.TempDir()}
		defer s.close()
		datadriven.RunTestAny(t, path, s.step)
	})
}

// script is one transcript's engine and fakes.
type script struct {
	t     testing.TB
	dir   string
	eng   *Engine
	fx    *effects
	kids  *fakeStarter
	clock *fakeClock
}

func (s *script) cltabPath() string { return filepath.Join(s.dir, "cltab") }

func (s *script) step(t testing.TB, d *datadriven.TestData) string {
	if d.Cmd != "cltab" && s.eng == nil {
		d.Fatalf(t, "%s before cltab: a transcript starts with its cltab", d.Cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	switch d.Cmd {
	case "cltab":
		s.args(t, d, 0)
		if s.eng != nil {
			d.Fatalf(t, "a second cltab: use reread")
		}
		if err := s.start(d.Input); err != nil {
			return "error: " + err.Error() + "\n"
		}
		return "ok\n"
	case "tell":
		a := s.args(t, d, 2)
		g, err := s.eng.Tell(ctx, a[0], a[1])
		if err != nil {
			out = append(out, "error: "+err.Error())
		} else if g != a[0] {
			out = append(out, "told "+g)
		}
	case "exit", "leave":
		a := s.args(t, d, 2)
		c, x, err := s.kids.exit(a[0], a[1], d.Cmd == "leave")
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		// As the reaper does: from a goroutine other than the loop.
		c.onExit(x)
	case "empty":
		a := s.args(t, d, 1)
		if err := s.kids.empty(a[0]); err != nil {
			d.Fatalf(t, "%v", err)
		}
	case "failstart":
		a := s.args(t, d, 1)
		s.kids.failNext(a[0])
		return "ok\n"
	case "reread":
		s.args(t, d, 0)
		if err := os.WriteFile(s.cltabPath(), []byte(d.Input), 0o644); err != nil {
			d.Fatalf(t, "%v", err)
		}
		changed, err := s.eng.Reread(ctx)
		if err != nil {
			out = append(out, strings.Split(strings.ReplaceAll(err.Error(), s.dir+"/", ""), "\n")...)
		} else {
			if len(changed) == 0 {
				changed = []string{"none"}
			}
			out = append(out, "changed: "+strings.Join(changed, " "))
		}
	case "tick":
		a := s.args(t, d, 1)
		dur, err := time.ParseDuration(a[0])
		if err != nil || dur < 0 {
			d.Fatalf(t, "tick %s: want a duration such as 10s or 1m", a[0])
		}
		until := s.clock.Now().Add(dur)
		// One timer at a time, each handled by the loop before the next
		// fires: a timer armed by what another's firing did can fall
		// within the same tick.
		for s.clock.fireNext(until) {
			s.settle(t, d, ctx)
		}
		out = append(out, "now "+s.clock.rel(until))
	case "entries":
		s.args(t, d, 0)
		s.settle(t, d, ctx)
		return strings.Join(s.entries(t, d, ctx), "\n") + "\n"
	case "running":
		s.args(t, d, 0)
		s.settle(t, d, ctx)
		names := s.kids.running()
		if len(names) == 0 {
			return "none\n"
		}
		return strings.Join(names, " ") + "\n"
	default:
		d.Fatalf(t, "unknown command %q (want cltab, tell, exit, leave, empty, reread, tick, failstart, entries or running)", d.Cmd)
	}
	s.settle(t, d, ctx)
	out = append(s.fx.take(), out...)
	st, err := s.eng.Status(ctx)
	if err != nil {
		d.Fatalf(t, "status: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(st.Clstat(), "\n"), "\n") {
		if line != "" {
			out = append(out, "clstat: "+line)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// args checks that the command has n positional arguments and returns them.
func (s *script) args(t testing.TB, d *datadriven.TestData, n int) []string {
	var a []string
	for _, arg := range d.CmdArgs {
		if len(arg.Vals) > 0 {
			d.Fatalf(t, "%s: unexpected %s", d.Cmd, arg)
		}
		a = append(a, arg.Key)
	}
	if len(a) != n {
		d.Fatalf(t, "%s takes %d arguments, got %d", d.Cmd, n, len(a))
	}
	if n == 0 && d.Cmd != "cltab" && d.Cmd != "reread" && d.Input != "" {
		d.Fatalf(t, "%s takes no input", d.Cmd)
	}
	return a
}

// start builds the engine on the cltab text and runs its loop.
func (s *script) start(text string) error {
	if err := os.WriteFile(s.cltabPath(), []byte(text), 0o644); err != nil {
		return err
	}
	tab, err := cltab.Load(s.cltabPath())
	if err != nil {
		return err
	}
	s.fx = &effects{}
	eng, err := NewEngine(Config{CltabPath: s.cltabPath(), Tab: tab, Clstat: filepath.Join(s.dir, "clstat"),
		Node: "n1", Log: zap.New(&logCore{fx: s.fx})})
	if err != nil {
		return err
	}
	s.kids, s.clock = newFakeStarter(s.fx), newFakeClock(s.fx)
	eng.child, eng.clock = s.kids, s.clock
	s.eng = eng
	go eng.Run()
	return nil
}

// settle returns once the loop has handled every event posted so far:
// exits and timers post before settle is called, and the loop runs what
// is queued before it takes a call.
func (s *script) settle(t testing.TB, d *datadriven.TestData, ctx context.Context) {
	err := s.eng.call(ctx, func() {
		for len(s.eng.events) > 0 {
			(<-s.eng.events)()
		}
	})
	if err != nil {
		d.Fatalf(t, "engine: %v", err)
	}
}

// entries describes every entry of every told group, in file order.
func (s *script) entries(t testing.TB, d *datadriven.TestData, ctx context.Context) []string {
	st, err := s.eng.Status(ctx)
	if err != nil {
		d.Fatalf(t, "status: %v", err)
	}
	var out []string
	for _, g := range st.Groups {
		for _, e := range g.Entries {
			line := fmt.Sprintf("%s/%s %s", g.Group, e.Tag, e.Mode)
			if e.Pid != 0 {
				line += " pid=" + s.kids.nameOf(e.Pid)
			}
			if e.Restarts > 0 {
				line += fmt.Sprintf(" restarts=%d", e.Restarts)
			}
			if e.Exit != nil {
				line += fmt.Sprintf(" exit=%d", *e.Exit)
			}
			if e.Signal != "" {
				line += " signal=" + strings.TrimPrefix(e.Signal, "SIG")
			}
			if e.Throttled {
				line += " resting-until=" + s.clock.rel(e.ThrottledUntil)
			}
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// close stops the engine: every child ends on its first signal.
func (s *script) close() {
	if s.eng == nil {
		return
	}
	s.kids.endOnSignal()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.eng.Shutdown(ctx); err != nil {
		s.t.Errorf("shutdown: %v", err)
	}
	s.kids.stop()
}

// A mistake in a transcript is reported with its file and line.
func TestTranscriptErrors(t *testing.T) {
	const tab = "cltab\ng:a:1:respawn:a\n----\nok\n\n"
	for _, tc := range []struct{ script, want string }{
		{"tell g 1\n----\n", "<string>:1: tell before cltab"},
		{tab + "tell g\n----\n", "<string>:6: tell takes 2 arguments, got 1"},
		{tab + "frob\n----\n", `<string>:6: unknown command "frob"`},
		{tab + "exit a 0\n----\n", "<string>:6: no child of a is running"},
		{tab + "empty a\n----\n", "<string>:6: no process group of a lingers"},
		{tab + "tell g 1\n----\nstart a.1 (g level 1: a)\nstate g 1 DONE\nclstat: g 1 DONE\n\nexit a seven\n----\n", "<string>:12: exit a seven: want an exit status"},
		{tab + "tick soon\n----\n", "<string>:6: tick soon: want a duration"},
		{tab + "tell g 1\n----\nclstat: g 1 DONE\n", "<string>:6:"},
		{tab + "cltab\n----\n", "<string>:6: a second cltab"},
	} {
		msgs := runFailing(t, tc.script)
		if !strings.Contains(msgs, tc.want) {
			t.Errorf("script\n%s\nreported %q, want %q in it", tc.script, msgs, tc.want)
		}
	}
}

// runFailing runs a transcript that must fail and returns what it
// reported.
func runFailing(t *testing.T, text string) string {
	tb := &failTB{TB: t}
	s := &script{t: t, dir: t.TempDir()}
	defer s.close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		datadriven.RunTestFromStringAny(tb, text, s.step)
	}()
	<-done
	if !tb.Failed() {
		t.Errorf("script\n%s\ndid not fail", text)
	}
	return strings.Join(tb.msgs, "\n")
}

// failTB records the failures of a transcript run instead of failing the
// test; a fatal one ends the goroutine, as testing's does.
type failTB struct {
	testing.TB
	mu     sync.Mutex
	msgs   []string
	failed bool
}

func (f *failTB) record(msg string) {
	f.mu.Lock()
	f.msgs, f.failed = append(f.msgs, msg), true
	f.mu.Unlock()
}

func (f *failTB) Errorf(format string, args ...any) { f.record(fmt.Sprintf(format, args...)) }
func (f *failTB) Error(args ...any)                 { f.record(fmt.Sprint(args...)) }
func (f *failTB) Fatalf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *failTB) Fatal(args ...any)   { f.record(fmt.Sprint(args...)); runtime.Goexit() }
func (f *failTB) Fail()               { f.record("failed") }
func (f *failTB) FailNow()            { f.record("failed"); runtime.Goexit() }
func (f *failTB) Logf(string, ...any) {}
func (f *failTB) Log(...any)          {}

func (f *failTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}
