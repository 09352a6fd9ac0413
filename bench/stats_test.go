package main

import (
	"math"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, 5, 1, 9, 7}, 5},
	} {
		in := append([]float64(nil), c.in...)
		if got := median(in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Fatalf("median reordered its input: %v", in)
			}
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

func TestRowResult(t *testing.T) {
	r := newRow("f", "ms", []float64{6, 1, 4}, "median under 5 ms", 5)
	if r.Median != 4 || r.Min != 1 || r.Max != 6 || r.Runs != 3 || r.Result != "pass" {
		t.Errorf("row = %+v", r)
	}
	if r := newRow("f", "ms", []float64{6, 5.5, 4}, "median under 5 ms", 5); r.Result != "miss" {
		t.Errorf("median 5.5 under 5: %s", r.Result)
	}
	if r := newRow("f", "ms", []float64{1, 2}, "", 0); r.Result != "-" {
		t.Errorf("no target: %s", r.Result)
	}
	if r := newRow("f", "ms", nil, "median under 5 ms", 5); r.Result != "miss" || r.Runs != 0 {
		t.Errorf("no samples: %+v", r)
	}
}

func TestWithFloor(t *testing.T) {
	r := newRow("tell", "ms", []float64{3, 4, 5}, "", 0).withFloor("sh -c 'exec stamp'", []float64{1, 2, 9})
	if r.Floor != 2 || r.VsFloor != 2 || r.FloorOf != "sh -c 'exec stamp'" || r.Kind != KindAbsolute {
		t.Errorf("row = %+v", r)
	}
	if r := newRow("tell", "ms", []float64{3}, "", 0).withFloor("none", nil); r.Floor != 0 || r.VsFloor != 0 || r.FloorOf != "" {
		t.Errorf("a floor without samples: %+v", r)
	}
	if r := newRow("tell", "ms", nil, "", 0).withFloor("f", []float64{1}); r.Floor != 1 || r.VsFloor != 0 {
		t.Errorf("a figure without samples has no ratio to its floor: %+v", r)
	}
	if r := newRow("ratio", "x", []float64{1.2}, "", 0); r.Kind != KindRatio {
		t.Errorf("a ratio's kind: %q", r.Kind)
	}
}

func TestTable(t *testing.T) {
	var b strings.Builder
	rows := []Row{
		newRow("tell", "ms", []float64{1.234, 2, 3}, "median under 3 ms", 3).withFloor("sh", []float64{0.5, 0.5}),
		newRow("ratio", "x", []float64{1.5, 1.1}, "within 1.1x", 1.1),
		newRow("rss", "MiB", nil, "", 0),
	}
	if err := writeTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 4+strings.Count(tableLegend, "\n") {
		t.Fatalf("want a header, 3 rows and the legend:\n%s", b.String())
	}
	for i, want := range [][]string{
		{"figure", "kind", "median", "min", "max", "runs", "floor", "vs floor", "target", "result"},
		{"tell", "absolute", "2.00 ms", "1.23 ms", "3.00 ms", "3", "0.50 ms", "4.00x", "median under 3 ms", "pass"},
		{"ratio", "ratio", "1.30x", "1.10x", "1.50x", "2", "-", "within 1.1x", "miss"},
		{"rss", "absolute", "-", "0", "-"},
		{"kind: ratio"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
}
