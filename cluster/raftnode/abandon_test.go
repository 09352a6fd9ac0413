package raftnode

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// Calls given up at every point (timeouts of 1 to 30 ms: in the middle
// of a request's record, of a reply) leave the server nothing it cannot
// read: no "bad record MAC", which a TLS close_notify sent after a cut
// record would cause, and which must keep meaning a forgery or damage.
func TestAbandonedCallsLeaveNoBadRecord(t *testing.T) {
	tc := startCluster(t, 3)
	tc.leader()
	var wg sync.WaitGroup
	end := time.Now().Add(3 * time.Second)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tc.client()
			defer c.Close()
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rand.IntN(30))*time.Millisecond)
				c.Renew(ctx, "x")
				cancel()
			}
		}()
	}
	wg.Wait()
	if _, err := tc.client().Renew(ctx(t), "x"); err != nil {
		t.Fatalf("a renewal after the storm: %v", err)
	}
	bad := 0
	for _, e := range tc.logs.All() {
		for _, f := range e.Context {
			if f.Interface != nil {
				if err, ok := f.Interface.(error); ok && strings.Contains(err.Error(), "bad record MAC") {
					bad++
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d connections ended with a bad record", bad)
	}
}
