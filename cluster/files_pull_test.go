package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
)

// bigTab is a valid cltab of lines lines, about 37 bytes each: 3,000
// make some 110 KB.
func bigTab(lines int) string {
	var b strings.Builder
	for i := range lines {
		fmt.Fprintf(&b, "g%04d:p%04d:start:respawn:sleep %d\n", i/10, i, 1000+i)
	}
	return b.String()
}

// localState is what n hands memberlist for a push/pull, decoded.
func localState(t *testing.T, n *testNode) (pushPull, int) {
	t.Helper()
	b := (&delegate{n.Cluster}).LocalState(false)
	var pp pushPull
	if err := json.Unmarshal(b, &pp); err != nil {
		t.Fatalf("%s: push/pull state: %v", n.name, err)
	}
	return pp, len(b)
}

// tells reports whether n's push/pull state, rebuilt at the loop's next
// flush after a change, tells of version v of the cltab.
func tells(t *testing.T, n *testNode, v uint64) func() bool {
	return func() bool {
		pp, _ := localState(t, n)
		return len(pp.Files) == 1 && pp.Files[0].Version == v
	}
}

// A push/pull tells of each file's version, never its data: a big
// cltab costs the gossip nothing until it changes.
func TestPushPullCarriesNoFileData(t *testing.T) {
	nodes := mockCluster(t, 2, testKey)
	eventually(t, "2 alive", allAlive(nodes))
	tab := bigTab(3000)
	writeFile(t, nodes[0].path("cltab"), tab)
	if err := nodes[0].FileChanged(context.Background(), KindCltab); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cltab on n1", converged(t, nodes, "cltab", tab))
	for _, n := range nodes {
		eventually(t, n.name+" tells of version 1", tells(t, n, 1))
		pp, size := localState(t, n)
		f := pp.Files[0]
		if pp.Node != n.name || f.Kind != KindCltab || f.Origin != "n0" || f.Hash != hashOf([]byte(tab)) || len(f.Data) != 0 {
			t.Fatalf("%s tells of %+v (node %q), want version 1 of n0's cltab without data", n.name, f, pp.Node)
		}
		if size > len(tab)/20 {
			t.Fatalf("%s: push/pull state of %d bytes with a %d-byte cltab", n.name, size, len(tab))
		}
	}
}

// A node that missed a version (here: never sent it, as when every copy
// of its broadcast was lost) asks for it when a push/pull tells of it.
func TestPushPullFetchesNewerFile(t *testing.T) {
	nodes := mockCluster(t, 3, testKey)
	eventually(t, "3 alive", allAlive(nodes))
	tab := bigTab(3000)
	f := fileVersion{Kind: KindCltab, Version: 7, Origin: "n0", Data: []byte(tab)}
	f.Hash = hashOf(f.Data)
	// Taken on n0 as if from elsewhere: written, not sent to anyone.
	nodes[0].call(context.Background(), func() { nodes[0].onFile(f) })
	eventually(t, "n0 tells of version 7", tells(t, nodes[0], 7))
	pushPullUntil(t, nodes[2], nodes[0], "n2 fetched version 7", hasVersion(t, nodes[2], tab, 7))
	// And the other way round: n2 pushes its state to n1, which asks n2.
	eventually(t, "n2 tells of version 7", tells(t, nodes[2], 7))
	pushPullUntil(t, nodes[2], nodes[1], "n1 fetched version 7", hasVersion(t, nodes[1], tab, 7))
}

// pushPullUntil makes a push/pull between a and b until cond holds. A
// Join of a member is one (join=true, merged by MergeRemoteState all
// the same); it is made again every 2 s, as a periodic one would be, in
// case a send was lost on a loaded machine.
func pushPullUntil(t *testing.T, a, b *testNode, what string, cond func() bool) {
	t.Helper()
	last := time.Time{}
	eventually(t, what, func() bool {
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			if _, err := a.ml.Join([]string{b.Addr()}); err != nil {
				t.Logf("push/pull of %s with %s: %v", a.name, b.name, err)
			}
		}
		return cond()
	})
}

func hasVersion(t *testing.T, n *testNode, text string, v uint64) func() bool {
	return func() bool {
		return mustRead(t, n.path("cltab")) == text && loadMeta(n.dir)[KindCltab].Version == v
	}
}

// Without a key files are not replicated: a push/pull tells of none,
// and a request is not answered.
func TestNoKeyTellsNoVersions(t *testing.T) {
	nodes := mockCluster(t, 2, nil)
	eventually(t, "2 alive", allAlive(nodes))
	tab := bigTab(10)
	writeFile(t, nodes[0].path("cltab"), tab)
	if err := nodes[0].FileChanged(context.Background(), KindCltab); err != nil {
		t.Fatal(err)
	}
	if m := loadMeta(nodes[0].dir); m[KindCltab].Version != 1 {
		t.Fatalf("no local version: %+v", m)
	}
	time.Sleep(100 * time.Millisecond) // a flush or two
	if pp, _ := localState(t, nodes[0]); len(pp.Files) != 0 {
		t.Fatalf("a push/pull without a key tells of %+v", pp.Files)
	}
	q := fileReq{Kind: KindCltab, Version: 1, Hash: hashOf([]byte(tab)), From: "n1"}
	if err := nodes[1].ml.SendReliable(nodes[0].ml.LocalNode(), encode(msgFileReq, q)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	served := -1
	nodes[0].call(context.Background(), func() { served = len(nodes[0].replica(KindCltab).served) })
	if served != 0 || exists(nodes[1].path("cltab")) {
		t.Fatal("n0 answered a request without a key")
	}
}

// The version a push/pull tells of is asked of that member once a
// second at most, however many push/pulls tell of it meanwhile.
func TestRecentlyOncePerInterval(t *testing.T) {
	m := recently{}
	t0 := time.Now()
	if !m.first("n1 7/ab", t0) {
		t.Fatal("first ask refused")
	}
	if m.first("n1 7/ab", t0.Add(askEvery/2)) {
		t.Fatal("asked again within askEvery")
	}
	if !m.first("n2 7/ab", t0.Add(askEvery/2)) || !m.first("n1 8/cd", t0.Add(askEvery/2)) {
		t.Fatal("another member or version refused")
	}
	if !m.first("n1 7/ab", t0.Add(askEvery)) {
		t.Fatal("not asked again after askEvery")
	}
	if len(m) != 3 {
		t.Fatalf("old entries kept: %v", m)
	}
}

// A member that joins or comes back is told the file versions by three
// live members, the same three in every member's eyes, not by all.
func TestThreeMembersTellAJoiner(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	views := func(dead ...string) []*Cluster {
		var cs []*Cluster
		for _, self := range names {
			v := newView(self)
			for _, n := range names {
				state := api.NodeAlive
				if slices.Contains(dead, n) {
					state = api.NodeDead
				}
				v.setState(n, state, n+":1", time.Now())
			}
			cs = append(cs, &Cluster{cfg: Config{Node: self}, view: v})
		}
		return cs
	}
	for _, dead := range [][]string{nil, {"b", "c", "d", "e"}} {
		for _, joiner := range names {
			var told []string
			for _, c := range views(dead...) {
				if c.cfg.Node != joiner && !slices.Contains(dead, c.cfg.Node) && c.amongTellers(joiner) {
					told = append(told, c.cfg.Node)
				}
			}
			if len(told) != tellers {
				t.Errorf("dead %v: %s is told by %v, want %d members", dead, joiner, told, tellers)
			}
		}
	}
}
