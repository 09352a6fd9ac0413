package promtext

import (
	"bytes"
	"math"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestReferenceParser reads what Writer writes with Prometheus's own text
// parser (a test dependency only: the binary does not link it), escapes
// and special values included, and the process figures.
func TestReferenceParser(t *testing.T) {
	var w Writer
	w.Write(Family{Name: "b", Help: "B \\ and\nnewline.", Type: Gauge, Labels: []string{"group", "tag"}},
		With(1, "web", `say "hi"`), With(0.5, `c:\dir`, "two\nlines"), With(math.Inf(1), "inf", ""))
	w.Write(Family{Name: "c_total", Help: "C.", Type: Counter}, One(7))
	w.WriteSummary(Family{Name: "s", Help: "S.", Labels: []string{"a"}}, SummarySample{Labels: []string{"x"}, Sum: 2.5, Count: 3})
	if err := w.WriteProcess(); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(w.Bytes()))
	if err != nil {
		t.Fatalf("the reference parser refuses it: %v\n%s", err, w.Bytes())
	}
	b := fams["b"]
	if b == nil || b.GetHelp() != "B \\ and\nnewline." || len(b.Metric) != 3 {
		t.Fatalf("family b: %v", b)
	}
	got := map[string]float64{}
	for _, m := range b.Metric {
		got[m.Label[0].GetValue()+"|"+m.Label[1].GetValue()] = m.GetGauge().GetValue()
	}
	want := map[string]float64{`web|say "hi"`: 1, `c:\dir|two` + "\nlines": 0.5, "inf|": math.Inf(1)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("sample %q = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if c := fams["c_total"]; c == nil || c.GetMetric()[0].GetCounter().GetValue() != 7 {
		t.Errorf("family c_total: %v", c)
	}
	if s := fams["s"]; s == nil || s.GetMetric()[0].GetSummary().GetSampleSum() != 2.5 || s.GetMetric()[0].GetSummary().GetSampleCount() != 3 {
		t.Errorf("summary s: %v", s)
	}
	if r := fams["process_resident_memory_bytes"]; r == nil || r.GetMetric()[0].GetGauge().GetValue() <= 0 {
		t.Errorf("process_resident_memory_bytes: %v", r)
	}
}
