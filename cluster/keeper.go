package cluster

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The link to the keeper, the process that enforces this node's lease
// when the daemon cannot: the deadline of each lease, and each HA group
// before its first process starts.

// Keeper is what the cluster needs of the node's lease keeper (package
// keeper): the deadline it enforces, the groups it holds.
type Keeper interface {
	Lease(ctx context.Context, deadline int64, stopTimeout time.Duration) error
	Hold(ctx context.Context, group string) error
	Release(ctx context.Context, group string) error
	// Close lets it go when the daemon stops (it exits if it holds
	// nothing).
	Close()
}

// keeperState serialises what is sent to the keeper.
type keeperState struct {
	mu   sync.Mutex
	sent int64 // the latest deadline sent
}

// keeperLease sends a new deadline to the keeper. Deadlines only grow:
// an older one arriving late would shorten the lease for nothing.
func (c *Cluster) keeperLease(deadline int64) {
	if c.cfg.Keeper == nil {
		return
	}
	stop := c.ha.stop
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.sendKeeperLease(ctx, deadline, stop); err != nil {
			c.log.Error("the keeper did not take the lease", zap.Error(err))
		}
	}()
}

// sendKeeperLease makes sure the keeper has a deadline at least as late
// as deadline: sends it unless a later one went already.
func (c *Cluster) sendKeeperLease(ctx context.Context, deadline int64, stop time.Duration) error {
	c.keeper.mu.Lock()
	defer c.keeper.mu.Unlock()
	if deadline <= c.keeper.sent {
		return nil
	}
	if err := c.cfg.Keeper.Lease(ctx, deadline, stop); err != nil {
		return err
	}
	c.keeper.sent = deadline
	return nil
}

func (c *Cluster) keeperRelease(g string) {
	if c.cfg.Keeper == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.cfg.Keeper.Release(ctx, g); err != nil {
			c.log.Warn("keeper release", zap.String("group", g), zap.Error(err))
		}
	}()
}
