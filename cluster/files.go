package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster/store"
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

// fileCopy is this node's copy of a replicated file.
type fileCopy struct {
	File
	version uint64 // the committed version written here last
	text    string // its text
}

func (c *Cluster) fileCopy(kind string) *fileCopy {
	for _, r := range c.files {
		if r.Kind == kind {
			return r
		}
	}
	return nil
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

// versionsPath keeps, across restarts, which committed version each
// copy is: an edit made while the daemon was down is then told from a
// version it never saw.
func versionsPath(stateDir string) string { return filepath.Join(stateDir, "cluster-versions.json") }

func (c *Cluster) saveVersions() {
	if c.cfg.StateDir == "" {
		return
	}
	m := map[string]store.File{}
	for _, r := range c.files {
		m[r.Kind] = store.File{Text: r.text, Version: r.version}
	}
	b, _ := json.Marshal(m)
	if err := atomicfile.Write(versionsPath(c.cfg.StateDir), b, 0o600); err != nil {
		c.log.Warn("cannot save the versions of the replicated files", zap.Error(err))
	}
}

func loadVersions(stateDir string) map[string]store.File {
	m := map[string]store.File{}
	if stateDir == "" {
		return m
	}
	b, err := os.ReadFile(versionsPath(stateDir))
	if err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

// writeCommitted writes a committed version of a file over this node's
// copy. A local edit that was not proposed yet (or was refused) is not
// lost: it is kept aside as PATH.rejected.
func (c *Cluster) writeCommitted(r *fileCopy, f store.File) {
	if err := r.Validate(r.Path, []byte(f.Text)); err != nil {
		c.log.Error("a committed version does not pass validation here: kept the last good one", zap.String("file", r.Kind), zap.Uint64("version", f.Version), zap.Error(err))
		r.version = f.Version
		c.noteLearned()
		return
	}
	local, err := os.ReadFile(r.Path)
	if err == nil && string(local) != f.Text && string(local) != r.text {
		c.keepAside(r, local, fmt.Sprintf("version %d was committed meanwhile", f.Version))
	}
	if string(local) != f.Text {
		if err := atomicfile.Write(r.Path, []byte(f.Text), 0o644); err != nil {
			c.log.Error("writing a replicated file", zap.String("path", r.Path), zap.Error(err))
			return
		}
	}
	r.version, r.text = f.Version, f.Text
	c.noteLearned()
	c.saveVersions()
	if r.Kind == KindHactl {
		c.parseHactl()
	}
	c.log.Info("replicated", zap.String("file", r.Kind), zap.Uint64("version", f.Version))
	if c.cfg.OnFile != nil {
		go c.cfg.OnFile(r.Kind)
	}
}

func (c *Cluster) keepAside(r *fileCopy, data []byte, why string) {
	aside := r.Path + ".rejected"
	if err := atomicfile.Write(aside, data, 0o600); err != nil {
		c.log.Error("cannot keep a refused edit aside", zap.String("path", aside), zap.Error(err))
		return
	}
	c.log.Warn("local edit not replicated: kept aside", zap.String("file", r.Kind), zap.String("path", aside), zap.String("why", why))
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
