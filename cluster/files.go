package cluster

import (
	"errors"
	"fmt"
	"os"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/atomicfile"
)

// This node's copies of the replicated files: the committed version of
// each, kept across restarts, written over the local copy.

// File is a replicated file: the cltab or the hactl (SPEC 6). Its
// versions are committed through raft (consensus.go).
type File struct {
	Kind string // "cltab" or "hactl": the name it is replicated under
	Path string // this node's copy
	// Validate checks a version before it is proposed or written; path
	// is for its messages.
	Validate func(path string, data []byte) error
}

// openFiles takes this node's copies of the replicated files, with the
// committed versions kept in the state directory, and returns those
// edited while the daemon was down.
func (c *Cluster) openFiles() ([]*fileCopy, error) {
	saved := loadVersions(c.cfg.StateDir)
	var edited []*fileCopy
	for _, f := range c.cfg.Files {
		r := &fileCopy{File: f}
		if v, ok := saved[f.Kind]; ok {
			r.version, r.text = v.Version, v.Text
		}
		data, err := os.ReadFile(f.Path)
		switch {
		case errors.Is(err, os.ErrNotExist) && r.version > 0:
			// A committed copy removed while the daemon was down is put
			// back: removing a file is no edit.
			if err := atomicfile.Write(f.Path, []byte(r.text), 0o644); err != nil {
				return nil, fmt.Errorf("restoring %s: %w", f.Path, err)
			}
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("cannot read %s: %w", f.Kind, err)
		case string(data) != r.text && len(data) > 0:
			edited = append(edited, r)
		}
		c.files = append(c.files, r)
	}
	return edited, nil
}

func (c *Cluster) parseHactl() {
	r := c.fileCopy(KindHactl)
	if r == nil {
		return
	}
	text := r.text
	if r.version == 0 {
		// Never committed: the local copy, as on a single node.
		if data, err := os.ReadFile(r.Path); err == nil {
			text = string(data)
		}
	}
	if h, err := cltab.ParseHactl(r.Path, []byte(text)); err == nil {
		c.hactl = h
	}
}
