package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/store"
)

// Fencing (:::stomith:): the leader runs the command for a node that is
// silent and holds HA groups, one run at a time per node, retried with
// backoff until one succeeds, and commits its success.

// fencer runs fencing commands, one at a time per node, retried with
// backoff until one succeeds.
type fencer struct {
	mu      sync.Mutex
	running map[string]bool
	retry   map[string]time.Time     // node -> not before
	backoff map[string]time.Duration // node -> the last wait
}

func newFencer() *fencer {
	return &fencer{running: map[string]bool{}, retry: map[string]time.Time{}, backoff: map[string]time.Duration{}}
}

// isRunning reports whether node's fencing runs now (from its start to
// its commit, or its failure).
func (f *fencer) isRunning(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[node]
}

// busy is the nodes whose fencing runs or waits to be retried.
func (f *fencer) busy(now time.Time) map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for n := range f.running {
		out[n] = true
	}
	for n, t := range f.retry {
		if now.Before(t) {
			out[n] = true
		}
	}
	return out
}

// startFence runs the stomith command for a node, once at a time, and
// commits its success.
func (c *Cluster) startFence(node string) {
	f := c.fence
	f.mu.Lock()
	if f.running[node] || time.Now().Before(f.retry[node]) {
		f.mu.Unlock()
		return
	}
	f.running[node] = true
	f.mu.Unlock()
	cmd, _ := c.cfg.Tab.Setting("stomith")
	c.log.Warn("fencing a node that holds HA groups and is silent", zap.String("node", node), zap.String("command", cmd))
	c.Emit(api.Event{Kind: api.EventFencing, Time: time.Now().UTC(), Node: node, Why: "holds HA groups and is silent: running " + cmd})
	go func() {
		out, err := c.runFence(cmd, node)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var r store.Result
			r, err = c.propose(ctx, store.Command{Op: store.OpFenced, Node: node, At: time.Now().UnixMilli()})
			cancel()
			if err == nil && r.Err != nil {
				err = r.Err
			}
			if err == nil {
				c.fenceOK.Add(1)
				c.log.Info("fenced", zap.String("node", node))
			}
		} else {
			c.fenceFailed.Add(1)
		}
		f.mu.Lock()
		delete(f.running, node)
		if err != nil {
			wait := min(max(2*f.backoff[node], time.Second), 30*time.Second)
			f.backoff[node] = wait
			f.retry[node] = time.Now().Add(wait)
			c.log.Error("fencing failed; retrying", zap.String("node", node), zap.Error(err),
				zap.String("output", strings.TrimSpace(string(out))), zap.Duration("retry", wait))
			c.Emit(api.Event{Kind: api.EventFenceFailed, Time: time.Now().UTC(), Node: node, Why: fmt.Sprintf("%v; retrying in %v", err, wait)})
		} else {
			delete(f.backoff, node)
			delete(f.retry, node)
		}
		f.mu.Unlock()
		c.kickPlanner()
		if err != nil {
			time.AfterFunc(f.backoff[node], c.kickPlanner)
		}
	}()
}

// runFence runs the fencing command with the node's name as $1,
// through the daemon's reaper, killed after :::stomithtimeout:.
func (c *Cluster) runFence(cmd, node string) ([]byte, error) {
	return runStomith(c.cfg.Run, cmd, node, c.cfg.Tab.Duration("stomithtimeout", cltab.DefaultStomithTimeout))
}

// runStomith runs the fencing command cmd with the dead node's name as
// $1, through run (the daemon's reaper: the daemon reaps every child, so
// a command waited for anywhere else would lose its exit status to it).
// A command still running after timeout is killed with its process
// group, and counts as failed.
func runStomith(run func(ctx context.Context, argv []string) ([]byte, error), cmd, node string, timeout time.Duration) ([]byte, error) {
	if run == nil {
		return nil, errors.New("no command runner: the stomith command cannot run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := run(ctx, []string{"/bin/sh", "-c", cmd, "clinit-stomith", node})
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("still running after %v (:::stomithtimeout:): %w", timeout, err)
	}
	return out, err
}
