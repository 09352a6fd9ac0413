package cluster

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestAbsurdVersionRefused: at c02508e a key holder's version 2^64-1 was
// taken, and every later edit got version 0, which no node takes.
func TestAbsurdVersionRefused(t *testing.T) {
	nodes := mockCluster(t, 1, testKey)
	a := nodes[0]
	bad := fileVersion{Kind: KindHactl, Version: math.MaxUint64, Origin: "n9", Data: []byte("web start\n")}
	bad.Hash = hashOf(bad.Data)
	var cur, seen uint64
	a.call(context.Background(), func() {
		a.onFile(bad)
		a.onFileVersion("n9", bad.withoutData())
		r := a.replica(KindHactl)
		cur, seen = r.cur.Version, r.maxSeen
	})
	if cur != 0 || seen != 0 || exists(a.path("hactl")) {
		t.Fatalf("after version 2^64-1: current %d, highest seen %d, hactl written %v", cur, seen, exists(a.path("hactl")))
	}
	writeFile(t, a.path("hactl"), "web run\n")
	if err := a.FileChanged(context.Background(), KindHactl); err != nil {
		t.Fatal(err)
	}
	a.call(context.Background(), func() { cur = a.replica(KindHactl).cur.Version })
	if cur != 1 {
		t.Fatalf("the next edit has version %d, want 1", cur)
	}
}

// TestAbsurdRememberedVersionForgotten: a version past the bound kept in
// the state directory (from before the bound) does not survive a restart.
func TestAbsurdRememberedVersionForgotten(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/hactl", "web run\n")
	m := map[string]meta{KindHactl: {Version: math.MaxUint64, Origin: "n9", Hash: hashOf([]byte("web run\n"))}}
	data, _ := json.Marshal(m)
	if err := os.WriteFile(metaPath(dir), data, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Start(Config{Node: "a", StateDir: dir, Files: files(dir), Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeFile(t, dir+"/hactl", "web start\n")
	if err := c.FileChanged(context.Background(), KindHactl); err != nil {
		t.Fatal(err)
	}
	var v uint64
	c.call(context.Background(), func() { v = c.replica(KindHactl).cur.Version })
	if v != 1 {
		t.Fatalf("an edit after a remembered version 2^64-1: version %d, want 1", v)
	}
}
