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
	eng := testEngine(t, tab.String(), func(dir string, c *Config) {
		c.StateDir, c.RunDir = filepath.Join(dir, "state"), filepath.Join(dir, "run")
		c.OnStatus = func(api.Status) { persists.Add(1) }
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
