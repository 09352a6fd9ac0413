package node

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/daemon"
)

// changeTimeout bounds one change of the cltab or the hactl.
const changeTimeout = time.Minute

// engineFiles is the engine as a change of the cltab sees it
// (daemon.Engine).
type engineFiles interface {
	Reread(ctx context.Context) (changed []string, err error)
	Tab(ctx context.Context) (*cltab.Tab, error)
}

// clusterFiles is the cluster as a change of the cltab or the hactl
// sees it (cluster.Cluster).
type clusterFiles interface {
	FileChanged(ctx context.Context, kind string) error
	SetTab(ctx context.Context, t *cltab.Tab) error
	EditHactl(ctx context.Context, group, level string, prefer []string) (uint64, error)
}

// change is one change of the cltab or the hactl, as asked.
type change struct {
	kind string // cluster.KindCltab or cluster.KindHactl
	// local: the file was edited here, and is versioned (and replicated)
	// first; else a version made elsewhere has been written here.
	local bool
	// cause says why, for the log; "" when the outcome goes back to the
	// one who asked, who reports it.
	cause string
	edit  *hactlEdit        // clinit --ha: one line of the hactl set, not read from the file
	done  chan changeResult // buffered; nil: nobody waits
}

type hactlEdit struct {
	group, level string
	prefer       []string
}

type changeResult struct {
	changed []string // the groups a cltab reread changed
	version uint64   // the hactl version an edit committed
	err     error
}

// changes serialises every change of the cltab and the hactl: its run
// goroutine alone reads, validates, versions and applies them, to the
// engine and to the cluster, in the order they were asked. Without it, a
// reread on SIGHUP, one asked on the socket, the file watcher's and one
// after a version from the cluster could interleave, and an older read
// be handed to the cluster after a newer one.
type changes struct {
	queue chan change
	done  chan struct{} // closed when run returns
	log   *zap.Logger
	nt    *notifier // nil: not under systemd
}

func newChanges(log *zap.Logger, nt *notifier) *changes {
	return &changes{queue: make(chan change, 64), done: make(chan struct{}), log: log, nt: nt}
}

// errNoChanges answers a change asked after the node stopped.
var errNoChanges = errors.New("clinit daemon is shutting down: no change of the cltab or the hactl is made")

// run applies the changes asked until stop is closed. It is given the
// parts it applies them to when it starts: the cluster is made after the
// queue (it posts to it), and the loop runs only once both exist.
func (c *changes) run(eng engineFiles, cl clusterFiles, stop <-chan struct{}) {
	defer close(c.done)
	for {
		select {
		case ch := <-c.queue:
			ctx, cancel := context.WithTimeout(context.Background(), changeTimeout)
			res := c.apply(ctx, eng, cl, ch)
			cancel()
			if ch.done != nil {
				ch.done <- res
			}
		case <-stop:
			return
		}
	}
}

// submit queues ch and returns once it is queued, with the channel its
// outcome comes on.
func (c *changes) submit(ch change) <-chan changeResult {
	ch.done = make(chan changeResult, 1)
	select {
	case c.queue <- ch:
	case <-c.done:
		ch.done <- changeResult{err: errNoChanges}
	}
	return ch.done
}

// wait submits ch and waits for its outcome, or for ctx to end (the
// change is carried out all the same).
func (c *changes) wait(ctx context.Context, ch change) changeResult {
	done := make(chan changeResult, 1)
	ch.done = done
	select {
	case c.queue <- ch:
	case <-c.done:
		return changeResult{err: errNoChanges}
	case <-ctx.Done():
		return changeResult{err: ctx.Err()}
	}
	select {
	case res := <-done:
		return res
	case <-c.done:
		return changeResult{err: errNoChanges}
	case <-ctx.Done():
		return changeResult{err: ctx.Err()}
	}
}

// post queues ch in the background: its outcome is logged.
func (c *changes) post(ch change) {
	select {
	case c.queue <- ch:
	case <-c.done:
	}
}

// waitLogged submits ch, whose outcome is logged, and waits until it is
// applied: a file watcher is not ahead of what it reported.
func (c *changes) waitLogged(ch change) {
	c.wait(context.Background(), ch)
}

// Reread is an explicit reread (the socket's, or before a request that
// depends on a changed cltab): a valid local edit is versioned and
// replicated, as the file watcher would, which may not see the file (a
// symlinked cltab).
func (c *changes) Reread(ctx context.Context) ([]string, error) {
	res := c.wait(ctx, change{kind: cluster.KindCltab, local: true})
	return res.changed, res.err
}

// EditHactl sets one group's line of the hactl (clinit --ha).
func (c *changes) EditHactl(ctx context.Context, group, level string, prefer []string) (uint64, error) {
	res := c.wait(ctx, change{kind: cluster.KindHactl, edit: &hactlEdit{group, level, prefer}})
	return res.version, res.err
}

// fromCluster is the cluster's OnFile: a version of kind made elsewhere
// has been written here. It only queues.
func (c *changes) fromCluster(kind string) {
	if kind == cluster.KindCltab {
		c.post(change{kind: kind, cause: "new version from the cluster"})
	}
}

func (c *changes) apply(ctx context.Context, eng engineFiles, cl clusterFiles, ch change) changeResult {
	switch {
	case ch.edit != nil:
		v, err := cl.EditHactl(ctx, ch.edit.group, ch.edit.level, ch.edit.prefer)
		return changeResult{version: v, err: err}
	case ch.kind == cluster.KindHactl:
		err := cl.FileChanged(ctx, cluster.KindHactl)
		var invalid cltab.Errors
		switch {
		case errors.As(err, &invalid):
			c.log.Error("hactl invalid: not replicated, keeping the last good one", zap.Strings("errors", invalid.Lines()))
		case err != nil:
			c.log.Error("hactl change", zap.Error(err))
		}
		return changeResult{err: err}
	}
	if ch.local {
		// Versioned (and replicated) first, when valid; an invalid file
		// is reported by the reread.
		if err := cl.FileChanged(ctx, cluster.KindCltab); err != nil && !errors.Is(err, cltab.ErrInvalid) {
			c.log.Error("cltab change", zap.Error(err))
		}
	}
	if ch.cause != "" && c.nt != nil {
		c.nt.reloading()
		defer c.nt.reloaded()
	}
	changed, err := eng.Reread(ctx)
	if ch.cause != "" {
		var invalid cltab.Errors
		switch {
		case errors.As(err, &invalid):
			c.log.Error("cltab invalid, keeping the last good one", zap.String("cause", ch.cause), zap.Strings("errors", invalid.Lines()))
		case err != nil && !errors.Is(err, daemon.ErrStopping):
			c.log.Error("cltab reread", zap.String("cause", ch.cause), zap.Error(err))
		}
	}
	// The cluster follows the engine, valid reread or not: it is handed
	// the cltab the engine now uses (its HA settings).
	if t, terr := eng.Tab(ctx); terr == nil {
		if err == nil {
			logWarnings(c.log, t)
		}
		if serr := cl.SetTab(ctx, t); serr != nil {
			c.log.Warn("cltab: handing it to the cluster", zap.Error(serr))
		}
	}
	return changeResult{changed: changed, err: err}
}
