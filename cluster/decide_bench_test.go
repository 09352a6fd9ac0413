package cluster

import (
	"fmt"
	"testing"

	"github.com/clinit/clinit/api"
)

// benchDecide times one decision of n0, a member of a 100-node cluster
// with 1,000 HA groups at start: each group running on one node (10 per
// node), or nowhere yet.
func benchDecide(b *testing.B, placed bool) {
	const nodes, groups = 100, 1000
	var lines []string
	for g := range groups {
		lines = append(lines, fmt.Sprintf("g%04d start", g))
	}
	ms := map[string]haMember{}
	for n := range nodes {
		s := st(fmt.Sprintf("n%d", n))
		for g := n; placed && g < groups; g += nodes {
			s.Groups = append(s.Groups, gs(fmt.Sprintf("g%04d", g), "start", api.StateDone, t0))
		}
		ms[s.Node] = alive(s)
	}
	cfg := testHAConfig()
	cfg.quorum = nodes/2 + 1
	in := haInput{self: "n0", now: t0, cfg: cfg, hactl: hactl(lines...), members: ms}
	mem := settledMemory(t0)
	b.ReportAllocs()
	for b.Loop() {
		decide(in, mem)
		clear(mem.pending) // claim again at every decision
	}
}

// BenchmarkDecide is what every node computes at each flush while
// statuses arrive, every group placed.
func BenchmarkDecide(b *testing.B) { benchDecide(b, true) }

// BenchmarkDecidePlacing is the same while the groups run nowhere yet:
// every node ranks the candidates of every group.
func BenchmarkDecidePlacing(b *testing.B) { benchDecide(b, false) }
