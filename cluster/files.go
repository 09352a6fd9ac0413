package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clinit/clinit/internal/atomicfile"
)

// File is a replicated file: the cltab or the hactl (SPEC 6).
type File struct {
	Kind string // "cltab" or "hactl": the name it is replicated under
	Path string // this node's copy
	// Validate checks a version before it is written or replicated; path
	// is for its messages.
	Validate func(path string, data []byte) error
}

// fileVersion is one version of a replicated file. Version 0 is the file
// as installed, never edited under clinit: it is not replicated, and any
// edit anywhere beats it. Two edits made at once on two nodes get the
// same version; the one with the greater hash wins on every node.
type fileVersion struct {
	Kind    string `json:"k"`
	Version uint64 `json:"v"`
	Origin  string `json:"o"` // the node the edit was made on
	Hash    string `json:"h"` // hex SHA-256 of Data
	Data    []byte `json:"d,omitempty"`
}

func hashOf(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// newer reports whether a replaces b.
func (a fileVersion) newer(b fileVersion) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	return a.Hash > b.Hash
}

// replica is this node's copy of one replicated file. Only Cluster.run
// touches it.
type replica struct {
	File
	cur     fileVersion
	maxSeen uint64          // the highest version seen, refused ones too
	refused map[string]bool // versions already reported as invalid
}

// meta is what is remembered in the state directory of each file, so a
// restarted node knows the version of the copy it holds.
type meta struct {
	Version uint64 `json:"version"`
	Origin  string `json:"origin"`
	Hash    string `json:"hash"`
}

func metaPath(stateDir string) string { return filepath.Join(stateDir, "cluster-files.json") }

func loadMeta(stateDir string) map[string]meta {
	m := map[string]meta{}
	if stateDir == "" {
		return m
	}
	if data, err := os.ReadFile(metaPath(stateDir)); err == nil {
		json.Unmarshal(data, &m)
	}
	return m
}

func saveMeta(stateDir string, reps []*replica) error {
	if stateDir == "" {
		return nil
	}
	m := map[string]meta{}
	for _, r := range reps {
		m[r.Kind] = meta{Version: r.cur.Version, Origin: r.cur.Origin, Hash: r.cur.Hash}
	}
	data, _ := json.MarshalIndent(m, "", "  ")
	return atomicfile.Write(metaPath(stateDir), data, 0o600)
}

// openReplica reads this node's copy and finds its version: the one
// remembered when the content is the one remembered; one more when the
// file was edited while the daemon was down (an edit like any other);
// 0 when nothing is remembered.
func openReplica(f File, m map[string]meta, self string) (*replica, bool, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("cannot read %s: %w", f.Kind, err)
	}
	r := &replica{File: f, refused: map[string]bool{}}
	r.cur = fileVersion{Kind: f.Kind, Hash: hashOf(data), Data: data}
	old, known := m[f.Kind]
	edited := false
	switch {
	case !known:
	case old.Hash == r.cur.Hash:
		r.cur.Version, r.cur.Origin = old.Version, old.Origin
	case f.Validate(f.Path, data) == nil:
		r.cur.Version, r.cur.Origin = old.Version+1, self
		edited = true
	default:
		// Edited while down into something invalid: not a version at all,
		// so that any valid one from the cluster replaces it.
	}
	r.maxSeen = max(r.cur.Version, old.Version)
	return r, edited, nil
}
