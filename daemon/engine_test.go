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

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// Tells that arrive together share one write of the state, and each
// answers only once its level is in the state file.
func TestTellsShareAStateWrite(t *testing.T) {
	const groups = 200
	dir := t.TempDir()
	var tab strings.Builder
	for i := range groups {
		fmt.Fprintf(&tab, "g%d:a%d:1:off:\n", i, i)
	}
	path := filepath.Join(dir, "cltab")
	if err := os.WriteFile(path, []byte(tab.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	parsed, err := cltab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var persists atomic.Int64
	eng, err := NewEngine(Config{CltabPath: path, Tab: parsed, Clstat: filepath.Join(dir, "clstat"),
		StateDir: filepath.Join(dir, "state"), RunDir: filepath.Join(dir, "run"), Node: "n1", Log: zap.NewNop(),
		OnStatus: func(api.Status) { persists.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	go eng.Run()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Hold the loop while the tells queue up behind it.
	gate := make(chan struct{})
	held := make(chan error, 1)
	go func() { held <- eng.call(ctx, func() { <-gate }) }()
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
	time.Sleep(300 * time.Millisecond) // for the tells to be waiting
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
	if n > groups/10 {
		t.Errorf("%d tells made %d writes of the state, want them to share a few", groups, n)
	}
}
