package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
)

// Tells that arrive together share one write of the state, and each
// answers only once its level is in the state file.
func TestTellsShareAStateWrite(t *testing.T) {
	const groups = 200
	var tab strings.Builder
	for i := range groups {
		fmt.Fprintf(&tab, "g%d:a%d:1:off:\n", i, i)
	}
	var persists atomic.Int64
	eng := newTestEngine(t, tab.String(), func(dir string, c *Config) {
		c.StateDir, c.RunDir = filepath.Join(dir, "state"), filepath.Join(dir, "run")
		c.OnStatus = func(api.Status) { persists.Add(1) }
	})
	// Calls wait in the channel's buffer instead of in blocked sends:
	// the loop takes them alike (a batch is what is waiting), and the
	// test can see when every tell is waiting.
	eng.reqs = make(chan func(), groups)
	runTestEngine(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Hold the loop while the tells queue up behind it.
	gate := make(chan struct{})
	held := make(chan error, 1)
	holding := make(chan struct{})
	go func() { held <- eng.call(ctx, func() { close(holding); <-gate }) }()
	<-holding
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for i := range groups {
		wg.Go(func() {
			g := fmt.Sprintf("g%d", i)
			if _, err := eng.Tell(ctx, g, "1"); err != nil {
				errs <- fmt.Errorf("tell %s: %w", g, err)
				return
			}
			// Answered: the level is in the state file.
			data, err := os.ReadFile(eng.statePath())
			if err != nil {
				errs <- err
				return
			}
			var st savedState
			if err := json.Unmarshal(data, &st); err != nil {
				errs <- err
				return
			}
			for _, sg := range st.Groups {
				if sg.Group == g && sg.Told && sg.Level == "1" {
					return
				}
			}
			errs <- fmt.Errorf("tell %s answered before its level was saved", g)
		})
	}
	// Every tell waiting behind the held loop.
	for deadline := time.Now().Add(30 * time.Second); len(eng.reqs) < groups; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tells waiting after 30s", len(eng.reqs), groups)
		}
	}
	before := persists.Load()
	close(gate)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := persists.Load() - before
	t.Logf("%d tells, %d writes of the state", groups, n)
	// All waiting at once, they are one batch of the loop (maxBatch is
	// more): one write, two if the heartbeat fell in.
	if n > 2 {
		t.Errorf("%d tells waiting together made %d writes of the state, want them to share one", groups, n)
	}
}

// A state write that takes its time (a sync on a loaded disk) holds back
// the tells it answers, not the loop: another group's child starts
// meanwhile. A start is in a journal file until a snapshot that has it
// is durable, and that file goes once it is.
func TestSlowStateWriteDoesNotHoldTheLoop(t *testing.T) {
	var dir string
	eng := newTestEngine(t, "g:a:1:once:exec sleep 100\nh:b:1:once:exec sleep 100\n", func(d string, c *Config) {
		dir = d
		c.StateDir, c.RunDir = filepath.Join(d, "state"), filepath.Join(d, "run")
		if err := os.Mkdir(c.StateDir, 0o700); err != nil { // as LockStateDir does
			t.Fatal(err)
		}
	})
	gate := make(chan struct{})
	var slow atomic.Bool
	write := eng.writeFile
	eng.writeFile = func(path string, data []byte, mode os.FileMode) error {
		if slow.Load() {
			<-gate
		}
		return write(path, data, mode)
	}
	runTestEngine(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pidOf := func(group string) int {
		st, err := eng.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range st.Groups {
			if g.Group == group && len(g.Entries) > 0 {
				return g.Entries[0].Pid
			}
		}
		return 0
	}
	waitPid := func(group string) int {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if pid := pidOf(group); pid > 0 {
				return pid
			}
		}
		t.Fatalf("%s: no child started", group)
		return 0
	}

	slow.Store(true)
	told := make(chan error, 2)
	go func() { _, err := eng.Tell(ctx, "g", "1"); told <- err }()
	gpid := waitPid("g")
	go func() { _, err := eng.Tell(ctx, "h", "1"); told <- err }()
	hpid := waitPid("h")
	select {
	case err := <-told:
		t.Fatalf("a tell answered before its state was written (%v)", err)
	default:
	}
	journals, _ := filepath.Glob(filepath.Join(dir, "run", "journal.*"))
	var text strings.Builder
	for _, j := range journals {
		b, _ := os.ReadFile(j)
		text.Write(b)
	}
	for _, pid := range []int{gpid, hpid} {
		if !strings.Contains(text.String(), fmt.Sprintf(`"pid":%d,`, pid)) {
			t.Errorf("while the state write is held, no journal records pid %d: %q", pid, text.String())
		}
	}

	slow.Store(false)
	close(gate)
	for range 2 {
		if err := <-told; err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(eng.statePath())
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{gpid, hpid} {
		if !strings.Contains(string(data), fmt.Sprintf(`"pid":%d,`, pid)) {
			t.Errorf("both tells answered, and the state does not have pid %d: %s", pid, data)
		}
	}
	for _, j := range journals {
		if _, err := os.Stat(j); err == nil {
			t.Errorf("%s is still there once a snapshot that has its starts is durable", j)
		}
	}
}
