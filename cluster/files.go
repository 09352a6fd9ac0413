package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

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

// withoutData is f as a push/pull tells of it.
func (f fileVersion) withoutData() fileVersion {
	f.Data = nil
	return f
}

// key names a version, for the maps of those refused and asked for.
func (f fileVersion) key() string { return strconv.FormatUint(f.Version, 10) + "/" + f.Hash }

// replica is this node's copy of one replicated file. Only Cluster.run
// touches it.
type replica struct {
	File
	cur     fileVersion
	maxSeen uint64          // the highest version seen, refused ones too
	refused map[string]bool // versions already reported as invalid
	asked   recently        // versions asked of a member, by member and version
	served  recently        // versions sent on request, by asker and version
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
	r := &replica{File: f, refused: map[string]bool{}, asked: recently{}, served: recently{}}
	r.cur = fileVersion{Kind: f.Kind, Hash: hashOf(data), Data: data}
	old, known := m[f.Kind]
	if old.Version > maxFileVersion {
		// Remembered from before versions were bounded: forgotten, so
		// that the next edit anywhere replaces it.
		old, known = meta{}, false
	}
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

// fileReq asks a member for a version of a file it told of in a
// push/pull. It answers with a file message to the asker alone, which
// takes it like any other (Cluster.onFile).
type fileReq struct {
	Kind    string `json:"k"`
	Version uint64 `json:"v"`
	Hash    string `json:"h"`
	From    string `json:"o"` // the asker: NotifyMsg does not say who sent a message
}

// askEvery is the least time between two asks of one member for one
// version, and between two answers to one asker: the push/pulls that tell
// of it again while the answer is on its way ask nothing more.
const askEvery = time.Second

// recently remembers what was done in the last askEvery.
type recently map[string]time.Time

// first reports whether key was not done in the last askEvery, and notes
// it done now.
func (m recently) first(key string, now time.Time) bool {
	for k, t := range m {
		if now.Sub(t) >= askEvery {
			delete(m, k)
		}
	}
	if _, ok := m[key]; ok {
		return false
	}
	m[key] = now
	return true
}

// onFileVersion takes a version that member from told of in a push/pull:
// a newer one is asked of from. One that came with its data (from a node
// that still sends it) or is empty needs no asking.
func (c *Cluster) onFileVersion(from string, f fileVersion) {
	if len(f.Data) > 0 || f.Hash == hashOf(nil) {
		c.onFile(f)
		return
	}
	r := c.replica(f.Kind)
	if r == nil || !c.secure || c.ml == nil || f.Version == 0 || c.absurd(r, f) {
		return
	}
	r.maxSeen = max(r.maxSeen, f.Version)
	// A version refused here is not fetched again to be refused again.
	if !f.newer(r.cur) || r.refused[f.key()] || from == "" || from == c.cfg.Node {
		return
	}
	n := c.member(from)
	// One ask a second per version, whoever told of it: after a join,
	// every member tells the joiner its versions at once.
	if n == nil || !r.asked.first(f.key(), time.Now()) {
		return
	}
	c.log.Debug("asking for a newer version", zap.String("file", f.Kind), zap.Uint64("version", f.Version), zap.String("of", from))
	c.sendNode(n, encode(msgFileReq, fileReq{Kind: f.Kind, Version: f.Version, Hash: f.Hash, From: c.cfg.Node}))
}

// onFileReq answers a member that asks for a version this node told it
// of, with this node's current one (newer, if it changed since).
func (c *Cluster) onFileReq(q fileReq) {
	r := c.replica(q.Kind)
	if r == nil || !c.secure || c.ml == nil || r.cur.Version == 0 || q.From == "" || q.From == c.cfg.Node {
		return
	}
	want := fileVersion{Version: q.Version, Hash: q.Hash}
	if want.newer(r.cur) {
		return
	}
	n := c.member(q.From)
	if n == nil || !r.served.first(q.From+" "+r.cur.key(), time.Now()) {
		return
	}
	c.sendNode(n, encode(msgFile, r.cur))
}

// member is the node to send to member name, nil when it is not up. It
// is made from the view, not taken from memberlist's list: memberlist
// rewrites the nodes it lists when they come back, and a send on another
// goroutine must not read them.
func (c *Cluster) member(name string) *memberlist.Node {
	m := c.view.members[name]
	if m == nil || !c.view.up(name) {
		return nil
	}
	host, port, err := net.SplitHostPort(m.addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	p, err := strconv.ParseUint(port, 10, 16)
	if ip == nil || err != nil {
		return nil
	}
	return &memberlist.Node{Name: name, Addr: ip, Port: uint16(p)}
}

// sendNode sends msg to n over TCP, without blocking the loop.
func (c *Cluster) sendNode(n *memberlist.Node, msg []byte) {
	go func() {
		if err := c.ml.SendReliable(n, msg); err != nil {
			c.log.Debug("send", zap.String("node", n.Name), zap.Error(err))
		}
	}()
}
