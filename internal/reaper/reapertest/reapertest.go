// Package reapertest gives the tests of code that runs commands through
// the reaper the load the daemon lives with: orphans, reaped beside the
// commands under test.
package reapertest

import (
	"sync"
	"testing"

	"github.com/clinit/clinit/internal/reaper"
)

// Orphans starts commands that leave orphans behind, back to back, until
// stop is called: their exits come to the reaper mixed with everyone
// else's. stop returns once the last has exited. The test process must be
// a subreaper (reaper.BecomeSubreaper), as the daemon is.
func Orphans(t testing.TB) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			_, exits, err := reaper.Start([]string{"/bin/sh", "-c", "/bin/true & /bin/true & /bin/true & exit 0"}, reaper.Attrs{})
			if err != nil {
				t.Error(err)
				return
			}
			<-exits
		}
	}()
	return func() { close(done); wg.Wait() }
}
