package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/internal/reaper"
	"github.com/clinit/clinit/keeper"
)

// keeperLink is the daemon's tie to its lease keeper (package keeper),
// as the cluster sees it (cluster.Keeper). The keeper is found, or
// started through the reaper, on first use; when its connection breaks
// (it died, or froze), a new one is found or started and told again the
// lease and every group held, so that whatever runs stays covered. Until
// then every request fails, and no HA group starts.
type keeperLink struct {
	dir, node string
	log       *zap.Logger

	mu       sync.Mutex // held across a request and a reconnection
	c        *keeper.Client
	deadline int64
	stop     time.Duration
	held     map[string]bool
}

func newKeeperLink(dir, node string, log *zap.Logger) *keeperLink {
	return &keeperLink{dir: dir, node: node, log: log.Named("keeper"), held: map[string]bool{}}
}

// startKeeper runs the keeper as a process of its own through the
// reaper: it outlives the daemon (reparented to init, or to a subreaper
// above), and the daemon reaps it if it ends first.
func startKeeper(argv []string) error {
	_, _, err := reaper.Start(argv, reaper.Attrs{})
	return err
}

// client returns a live keeper connection, making one when needed; mu
// is held.
func (k *keeperLink) client(ctx context.Context) (*keeper.Client, error) {
	if k.c != nil {
		select {
		case <-k.c.Done():
			k.log.Error("the keeper connection broke: finding or starting another", zap.Error(k.c.Err()))
			k.c.Close()
			k.c = nil
		default:
			return k.c, nil
		}
	}
	c, st, err := keeper.Ensure(ctx, k.dir, k.node, startKeeper)
	if err != nil {
		return nil, err
	}
	if st.Lapses > 0 && st.Last != nil {
		k.log.Warn("the keeper stopped HA groups at a lapsed lease while the daemon was away", zap.Int("lapses", st.Lapses))
	}
	k.log.Info("keeper", zap.Int("pid", st.Pid), zap.Strings("held", st.Held))
	// Tell a new keeper what the old one knew.
	if k.deadline > 0 {
		if err := c.Lease(ctx, k.deadline, k.stop); err != nil && !errors.Is(err, context.Canceled) {
			k.log.Warn("keeper: lease", zap.Error(err))
		}
	}
	for g := range k.held {
		if err := c.Hold(ctx, g); err != nil {
			k.log.Warn("keeper: hold", zap.String("group", g), zap.Error(err))
		}
	}
	k.c = c
	return c, nil
}

func (k *keeperLink) Lease(ctx context.Context, deadline int64, stop time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.deadline, k.stop = deadline, stop
	c, err := k.client(ctx)
	if err != nil {
		return err
	}
	return c.Lease(ctx, deadline, stop)
}

func (k *keeperLink) Hold(ctx context.Context, group string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := k.client(ctx)
	if err != nil {
		return err
	}
	if err := c.Hold(ctx, group); err != nil {
		return err
	}
	k.held[group] = true
	return nil
}

func (k *keeperLink) Release(ctx context.Context, group string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.held, group)
	c, err := k.client(ctx)
	if err != nil {
		return err
	}
	return c.Release(ctx, group)
}

// Close lets the keeper go once the daemon has stopped every group (the
// cluster closes last): it releases what it held and tells the keeper to
// exit; a keeper that still holds a group refuses, and goes on enforcing
// the lease of what the daemon left.
func (k *keeperLink) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c == nil {
		return
	}
	// Called once the engine has stopped every group: nothing is left
	// for the keeper to stop.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	for g := range k.held {
		if err := k.c.Release(ctx, g); err == nil {
			delete(k.held, g)
		}
	}
	cancel()
	if len(k.held) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := k.c.Exit(ctx); err != nil {
			k.log.Warn("keeper: exit", zap.Error(err))
		}
		cancel()
	}
	k.c.Close()
	k.c = nil
}
