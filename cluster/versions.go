package cluster

import (
	"fmt"

	"go.uber.org/zap"
)

// maxFileVersion bounds the versions of the replicated files. A version
// is one edit: 2^40 of them is beyond any real cluster's life. Without a
// bound, a key holder's version 2^64-1 made the next edit version 0
// (which no node takes, being the file as installed), on every node and
// across restarts, since the versions are remembered.
const maxFileVersion = 1 << 40

// absurd reports whether f's version is past the bound, logging it the
// first time: such a version is not taken, not asked for, and not
// counted as seen.
func (c *Cluster) absurd(r *replica, f fileVersion) bool {
	if f.Version <= maxFileVersion {
		return false
	}
	if !r.refused[f.key()] {
		r.refused[f.key()] = true
		c.log.Error("refusing an absurd file version from the cluster", zap.String("file", f.Kind),
			zap.Uint64("version", f.Version), zap.Uint64("bound", maxFileVersion), zap.String("from", f.Origin))
	}
	return true
}

// nextVersion is the version of a new local edit of r.
func nextVersion(r *replica) (uint64, error) {
	v := max(r.maxSeen, r.cur.Version) + 1
	if v > maxFileVersion {
		return 0, fmt.Errorf("%s: no version left (the bound is %d): refusing the edit", r.Kind, uint64(maxFileVersion))
	}
	return v, nil
}
