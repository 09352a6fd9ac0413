package gometrics

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	metrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clinit/clinit/internal/promtext"
)

func TestName(t *testing.T) {
	for in, want := range map[string]string{"memberlist.udp.sent": "memberlist_udp_sent", "raft.replication.appendEntries.rpc.n-2": "raft_replication_appendEntries_rpc_n_2", "9x.a/b c=d": "_x_a_b_c_d"} {
		if got := Name(splitDots(in)); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// What go-metrics is told through its API comes out as Prometheus reads
// it (its own text parser): counters summed, gauges last set, samples as
// a summary's sum and count, labels as labels.
func TestThroughGoMetrics(t *testing.T) {
	s := New()
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	conf := metrics.DefaultConfig("")
	conf.EnableHostname, conf.EnableRuntimeMetrics, conf.EnableHostnameLabel = false, false, false
	m, err := metrics.New(conf, s)
	if err != nil {
		t.Fatal(err)
	}
	m.IncrCounter([]string{"memberlist", "udp", "sent"}, 100)
	m.IncrCounter([]string{"memberlist", "udp", "sent"}, 23)
	m.IncrCounterWithLabels([]string{"raft", "apply"}, 1, []metrics.Label{{Name: "peer", Value: "n1"}})
	m.IncrCounterWithLabels([]string{"raft", "apply"}, 2, []metrics.Label{{Name: "peer", Value: "n2"}})
	m.IncrCounter([]string{"raft", "apply"}, 4) // no label: empty peer
	m.SetGauge([]string{"memberlist", "health", "score"}, 2)
	m.SetGauge([]string{"memberlist", "health", "score"}, 3)
	m.SetGauge([]string{"raft", "leader", "oldestLogAge"}, 7)
	m.AddSample([]string{"raft", "commitTime"}, 1.5)
	m.AddSample([]string{"raft", "commitTime"}, 2.5)
	m.MeasureSince([]string{"memberlist", "gossip"}, time.Now().Add(-time.Second))

	// raft's gauge goes stale: not set again for longer than GaugeExpiry.
	now = now.Add(GaugeExpiry / 2)
	m.SetGauge([]string{"memberlist", "health", "score"}, 1)
	now = now.Add(GaugeExpiry/2 + time.Second)

	var w promtext.Writer
	s.Write(&w)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(w.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, w.Bytes())
	}
	get := func(name string) float64 {
		f := fams[name]
		if f == nil || len(f.Metric) != 1 {
			t.Fatalf("family %s: %v\n%s", name, f, w.Bytes())
		}
		switch {
		case f.Metric[0].Counter != nil:
			return f.Metric[0].GetCounter().GetValue()
		case f.Metric[0].Gauge != nil:
			return f.Metric[0].GetGauge().GetValue()
		}
		return float64(f.Metric[0].GetSummary().GetSampleCount())
	}
	if v := get("memberlist_udp_sent"); v != 123 {
		t.Errorf("memberlist_udp_sent = %v, want 123", v)
	}
	if v := get("memberlist_health_score"); v != 1 {
		t.Errorf("memberlist_health_score = %v, want 1", v)
	}
	if _, ok := fams["raft_leader_oldestLogAge"]; ok {
		t.Errorf("a gauge not set for over %v is still written", GaugeExpiry)
	}
	if c := fams["raft_commitTime"]; c == nil || c.GetMetric()[0].GetSummary().GetSampleSum() != 4 || get("raft_commitTime") != 2 {
		t.Errorf("raft_commitTime: %v", c)
	}
	if v := get("memberlist_gossip"); v != 1 {
		t.Errorf("memberlist_gossip count = %v", v)
	}
	apply := map[string]float64{}
	for _, mm := range fams["raft_apply"].GetMetric() {
		apply[mm.GetLabel()[0].GetValue()] = mm.GetCounter().GetValue()
	}
	if len(apply) != 3 || apply["n1"] != 1 || apply["n2"] != 2 || apply[""] != 4 {
		t.Errorf("raft_apply by peer: %v", apply)
	}
	if v := s.Counter("raft", "apply"); v != 7 {
		t.Errorf("Counter(raft.apply) = %v, want 7 (over every label)", v)
	}
	if h := fams["memberlist_udp_sent"].GetHelp(); h != "go-metrics counter memberlist.udp.sent: the sum of what memberlist counted." {
		t.Errorf("help: %q", h)
	}
}

func TestMaxSeries(t *testing.T) {
	s := New()
	for i := 0; i < MaxSeries+10; i++ {
		s.IncrCounterWithLabels([]string{"x"}, 1, []metrics.Label{{Name: "n", Value: strconv.Itoa(i)}})
	}
	s.IncrCounterWithLabels([]string{"x"}, 1, []metrics.Label{{Name: "n", Value: "0"}}) // kept: not new
	if s.Dropped() != 10 || s.Counter("x") != MaxSeries+1 {
		t.Errorf("dropped %d, counted %v; want 10 and %d", s.Dropped(), s.Counter("x"), MaxSeries+1)
	}
}
