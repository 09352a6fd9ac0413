package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/store"
	"github.com/clinit/clinit/internal/atomicfile"
)

// Edits of the replicated files: a change on disk or a clinit --ha is
// validated, then proposed on the committed version it was made from; a
// stale base is refused, and the text kept aside.

// FileChanged reports that this node's copy of a replicated file changed
// on disk. A valid new content becomes the next version, replicated to
// every member; an invalid one is refused (its errors are returned) and
// not replicated. Content equal to the current version is no change. The
// file is read by the loop, the only writer of versions from elsewhere,
// so an edit is never judged on content that replication has replaced.
func (c *Cluster) FileChanged(ctx context.Context, kind string) error {
	if c.fileCopy(kind) == nil {
		return fmt.Errorf("not a replicated file: %s", kind)
	}
	_, err := c.proposeFile(ctx, kind, readCopy)
	if errors.Is(err, ErrNotReplicated) {
		// A local file, as on a single node: its hactl is what it shows.
		if kind == KindHactl {
			return c.call(ctx, func() {
				c.parseHactl()
				c.flushes.Mark()
			})
		}
		return nil
	}
	return err
}

// EditHactl sets one group's line of the committed hactl (clinit --ha)
// and returns once it is committed, with its version. A nil prefer
// keeps the preferred nodes.
func (c *Cluster) EditHactl(ctx context.Context, group, level string, prefer []string) (uint64, error) {
	if c.fileCopy(KindHactl) == nil {
		return 0, errors.New("no hactl is configured")
	}
	// From the copy as it is when the base is taken (proposeFile).
	return c.proposeFile(ctx, KindHactl, func(r *fileCopy) ([]byte, error) {
		if r.Path == "" {
			return nil, errors.New("no hactl is configured")
		}
		return cltab.SetHactl([]byte(r.text), group, level, prefer), nil
	})
}

// ErrRefused is what an edit the committed state refused (a stale
// base) is: errors.Is(err, ErrRefused).
var ErrRefused = errors.New("edit refused")

type refusal struct{ msg string }

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == ErrRefused }

// ErrNotReplicated: the cltab names no voters, so an edit stays local.
var ErrNotReplicated = errors.New("not replicated: the cltab names no voters (:::nodes: or :::servers:) or the node runs alone")

// proposeFile proposes the next text of a file, which edit makes from
// this node's copy, based on the committed version of that copy. It
// returns the committed version ("" and 0 when the text is the
// committed one).
//
// edit runs on the loop, with the base taken in the same step: a text
// read (from disk, or from the copy) before a newer version is written
// here, and proposed on that newer version's base, would be committed
// over it and undo it without a word. That happened on three daemons
// whose planner committed often: a file change read the old text, the
// loop then wrote the newer version, and the old text was proposed on
// the newer base.
func (c *Cluster) proposeFile(ctx context.Context, kind string, edit func(r *fileCopy) ([]byte, error)) (uint64, error) {
	var r *fileCopy
	var base uint64
	var same bool
	var data []byte
	var editErr error
	if err := c.call(ctx, func() {
		r = c.fileCopy(kind)
		if r != nil {
			base = r.version
			data, editErr = edit(r)
			same = string(data) == r.text
		}
	}); err != nil {
		return 0, err
	}
	if editErr != nil {
		return 0, editErr
	}
	if r == nil {
		return 0, fmt.Errorf("not a replicated file: %s", kind)
	}
	if same {
		return base, nil
	}
	if err := r.Validate(r.Path, data); err != nil {
		return 0, err
	}
	if c.rn == nil && c.rc == nil {
		return 0, ErrNotReplicated
	}
	res, err := c.propose(ctx, store.Command{Op: store.OpSetFile, Kind: kind, Text: string(data), Base: base})
	if err != nil {
		return 0, fmt.Errorf("%s edit not committed: %w", kind, err)
	}
	if res.Err != nil {
		c.call(ctx, func() { c.keepAside(r, data, res.Err.Error()) })
		return 0, &refusal{fmt.Sprintf("%v; your text is kept in %s.rejected", res.Err, r.Path)}
	}
	c.log.Info("edit committed", zap.String("file", kind), zap.Uint64("version", res.Version))
	// The commit reaches this node's state before long; record it now so
	// that the caller's next read sees it. The copy on disk is written
	// here too, on the loop, unless a newer version came first: written
	// after that one, the older text would be read back as an edit.
	var werr error
	c.call(ctx, func() {
		if r.version < res.Version {
			r.version, r.text = res.Version, string(data)
			if local, err := os.ReadFile(r.Path); err != nil || string(local) != r.text {
				werr = atomicfile.Write(r.Path, data, 0o644)
			}
			c.saveVersions()
			if kind == KindHactl {
				c.parseHactl()
				c.flushes.Mark()
			}
		}
	})
	if werr != nil {
		return res.Version, fmt.Errorf("committed as version %d, but writing the local copy: %w", res.Version, werr)
	}
	return res.Version, nil
}

// readCopy is the edit of a file changed on disk: its text there.
func readCopy(r *fileCopy) ([]byte, error) {
	data, err := os.ReadFile(r.Path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot read %s: %w", r.Kind, err)
	}
	return data, nil
}

// learnWait bounds how long a copy edited while the daemon was down
// waits for the committed version before it is proposed all the same.
const learnWait = 30 * time.Second

// learnCommitted waits until this node has the version of r's file that
// its lease's grant names as committed (none: nothing to wait for on a
// voter; on a node that does not vote, a voter's first commit), and
// reports whether the copy on disk is that version's text. A node
// started without its state directory (a new machine, a reinstalled
// one) finds every copy "edited": proposed before the committed text
// reached it, each one went through the leader, the log and every
// voter's state machine only to change nothing. A hundred such nodes
// proposing a 100 KB cltab at once kept the leader decoding them while
// its renewals waited.
func (c *Cluster) learnCommitted(r *fileCopy) bool {
	timeout := time.NewTimer(learnWait)
	defer timeout.Stop()
	for {
		var learned, same bool
		var moved <-chan struct{}
		c.call(context.Background(), func() {
			moved = c.learned
			g := c.ha.lease.Grant
			switch {
			case g.Leader == "", r.version < g.Files[r.Kind]:
				return // no grant yet, or the version it names is on its way
			case g.Files[r.Kind] == 0 && c.rn == nil:
				// Nothing committed: the cluster is forming, and its
				// voters propose their copies. One that does not vote
				// waits for theirs rather than send the leader one
				// more (97 more at 100 nodes).
				return
			}
			learned = true
			local, err := os.ReadFile(r.Path)
			same = err == nil && r.version > 0 && string(local) == r.text
		})
		if learned {
			return same
		}
		select {
		case <-c.stop:
			return false
		case <-timeout.C:
			return false
		case <-moved: // a lease or a version came: look again
		}
	}
}

// noteLearned wakes learnCommitted: the lease or a file's committed
// version moved. The loop's only.
func (c *Cluster) noteLearned() {
	close(c.learned)
	c.learned = make(chan struct{})
}

// proposeEditedWhileDown proposes a copy edited while the daemon was
// down, once the cluster has a leader; a refusal keeps it aside.
func (c *Cluster) proposeEditedWhileDown(r *fileCopy) {
	if _, err := os.Stat(r.Path); err != nil {
		return
	}
	if c.learnCommitted(r) {
		c.log.Info("the copy on disk is the committed version", zap.String("file", r.Kind), zap.Uint64("version", r.version))
		return
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := c.proposeFile(ctx, r.Kind, readCopy)
		cancel()
		switch {
		case err == nil:
			c.log.Info("edited while the daemon was down: committed", zap.String("file", r.Kind), zap.Uint64("version", v))
			return
		case errors.Is(err, ErrNotReplicated), errors.Is(err, ErrClosed):
			return
		case errors.Is(err, cltab.ErrInvalid) || errors.Is(err, ErrRefused):
			c.log.Error("edited while the daemon was down: not committed", zap.String("file", r.Kind), zap.Error(err))
			return
		}
		select {
		case <-c.stop:
			return
		case <-time.After(time.Second):
		}
	}
}
