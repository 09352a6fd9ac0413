package cluster

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestBadNodeNameRefused(t *testing.T) {
	for _, name := range []string{"a b", "n1\nnode fake alive", "\xff", "a:b", strings.Repeat("n", 200)} {
		c, err := Start(Config{Node: name})
		if err == nil {
			c.Close()
			t.Errorf("node %q started", name)
			continue
		}
		if !strings.Contains(err.Error(), "bad node name") || !strings.Contains(err.Error(), "--node") {
			t.Errorf("node %q: %v", name, err)
		}
	}
}

// TestMemberWithBadNameIgnored: a member (a key holder gone wrong, or any
// peer of a cluster without a key) whose name breaks the rule is kept
// out of the membership, and the refusal is logged, escaped.
func TestMemberWithBadNameIgnored(t *testing.T) {
	const evil = "e1\nnode fake alive"
	tr := mockNet("a", "b", evil)
	core, logs := observer.New(zapcore.WarnLevel)
	a := start(t, "a", Config{Key: testKey, Transport: tr["a"], Log: zap.New(core)})
	b := start(t, "b", Config{Key: testKey, Transport: tr["b"], Join: []string{a.Addr()}})
	eventually(t, "a and b", allAlive([]*testNode{a, b}))

	mc := memberlist.DefaultLANConfig()
	mc.Name, mc.Transport = evil, tr[evil]
	mc.SecretKey = testKey
	mc.LogOutput = logWriter{testLogger(t).Named("evil")}
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ml.Shutdown() })
	ml.Join([]string{a.Addr()})
	// Its own status, sent straight to a.
	ml.SendReliable(a.ml.LocalNode(), encode(msgStatus, nodeStatus{Node: evil, Version: 1}))
	ml.SendReliable(a.ml.LocalNode(), encode(msgStatus, nodeStatus{Node: "e2", Version: 1, Groups: []groupState{{Group: "web", Level: "start\x1b[2J", State: "DONE"}}}))
	logged := func(s string) func() bool {
		return func() bool { return logs.FilterMessageSnippet(s).Len() > 0 }
	}
	eventually(t, "the alive message ignored", logged(`ignoring alive message for 'e1\nnode fake alive'`))
	eventually(t, "the statuses ignored", func() bool { return logs.FilterMessage("status with a bad name: ignored").Len() >= 2 })
	for _, n := range []*testNode{a, b} {
		h := hastat(t, n)
		for _, m := range h.Nodes {
			if m.Node != "a" && m.Node != "b" {
				t.Errorf("%s lists %q", n.name, m.Node)
			}
		}
		if strings.Contains(h.Text(), "fake") || strings.Count(h.Text(), "\n") != 2 {
			t.Errorf("%s's hastat:\n%s", n.name, h.Text())
		}
	}
	for _, e := range logs.All() {
		if strings.ContainsAny(e.Message, "\n\x1b") {
			t.Errorf("raw control character logged: %q", e.Message)
		}
	}
	var statuses []string
	a.call(context.Background(), func() {
		for name := range a.view.statuses {
			statuses = append(statuses, name)
		}
	})
	for _, s := range statuses {
		if s != "a" && s != "b" {
			t.Errorf("a took the status of %q", s)
		}
	}
}
