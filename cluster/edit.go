package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/clinit/clinit/cltab"
)

// Edits of the replicated files: a change on disk or a clinit --ha is
// validated, then proposed on the committed version it was made from.

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
				c.dirtyView = true
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
