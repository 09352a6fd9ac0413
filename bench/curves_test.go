package main

import (
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleRows are rows as a run of scale and nodes adds them, out of x
// order, with one point not measured.
func sampleRows() []Row {
	return []Row{
		newRow("1000 up", "ms", []float64{1389, 1225, 1538}, "", 0).on(chartEntries, "up (daemon)", 1000),
		newRow("10 up", "ms", []float64{15, 14, 17}, "", 0).on(chartEntries, "up (daemon)", 10),
		newRow("100 up", "ms", []float64{106, 100, 120}, "", 0).on(chartEntries, "up (daemon)", 100),
		newRow("10 bare", "ms", []float64{12}, "", 0).on(chartEntries, "up: bare Go loop", 10),
		newRow("1000 bare", "ms", []float64{1126, 903, 1165}, "", 0).on(chartEntries, "up: bare Go loop", 1000),
		newRow("ratio", "x", []float64{1.3}, "", 0),
		newRow("3 nodes", "ms", []float64{4420, 4040, 4870}, "", 0).on(chartPlace, "1000 groups placed", 3),
		newRow("100 nodes", "ms", nil, "within 5 s", 5000).on(chartPlace, "1000 groups placed", 100),
		newRow("gossip 3", "KiB/s", []float64{0.5, 0.6}, "", 0).on(chartGossip, "converged, no group placed", 3),
	}
}

func TestCurves(t *testing.T) {
	cs := curves(sampleRows())
	if len(cs) != len(curveCharts) {
		t.Fatalf("%d charts, want %d", len(cs), len(curveCharts))
	}
	up := cs[0].series[0]
	if up.name != "up (daemon)" || len(up.pts) != 3 || up.pts[0].x != 10 || up.pts[2].x != 1000 {
		t.Fatalf("up series: %+v", up)
	}
	if p := up.pts[2]; p.y != 1389 || p.lo != 1225 || p.hi != 1538 {
		t.Errorf("1000 entries: %+v, want median 1389 from 1225 to 1538", p)
	}
	if len(cs[0].series) != 2 || cs[0].series[1].name != "up: bare Go loop" {
		t.Errorf("entries chart series: %+v", cs[0].series)
	}
	if place := cs[1].series; len(place) != 1 || len(place[0].pts) != 1 || place[0].pts[0].x != 3 {
		t.Errorf("the unmeasured 100-node point is drawn: %+v", place)
	}
	// Its target is, where the point would be.
	if tg := cs[1].targets; len(tg) != 1 || tg[0] != (target{x: 100, y: 5000, label: "within 5 s"}) {
		t.Errorf("placement targets: %+v", tg)
	}
	if len(cs[0].targets) != 0 {
		t.Errorf("entries targets: %+v", cs[0].targets)
	}
}

// svgDoc is what the test reads back of the SVG.
type svgDoc struct {
	XMLName   xml.Name `xml:"svg"`
	Polylines []struct {
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
	Circles []struct {
		Title string `xml:"title"`
	} `xml:"circle"`
	Texts []string `xml:"text"`
}

func TestWriteCurvesSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench-results.svg")
	rep := Report{Started: "2026-12-01T09:00:00Z", Command: []string{"bench"}, Machine: Machine{Nproc: 2, CPU: "AMD <EPYC> & co"}, Rows: sampleRows()}
	if err := writeCurves(path, rep); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, data)
	}
	// Lines: up (3 points) and bare (2); placement and gossip have one
	// point each, drawn as a marker only.
	if len(doc.Polylines) != 2 || len(strings.Fields(doc.Polylines[0].Points)) != 3 {
		t.Errorf("polylines: %+v", doc.Polylines)
	}
	if len(doc.Circles) != 7 {
		t.Errorf("%d markers, want 7 (one per measured point)", len(doc.Circles))
	}
	text := strings.Join(doc.Texts, "|")
	for _, want := range []string{"Respawn entries in one group", "up (daemon)", "1000", "AMD <EPYC> & co"} {
		if !strings.Contains(text, want) {
			t.Errorf("the SVG's text lacks %q: %s", want, text)
		}
	}
	if !strings.Contains(string(data), "<title>SPEC 8: within 5 s</title>") {
		t.Errorf("no target mark for the 100-node placement:\n%s", data)
	}
	if strings.Contains(text, "not measured") {
		t.Errorf("a chart with points says it was not measured: %s", text)
	}

	// A run of the scale group only: the nodes charts say so.
	rep.Rows = sampleRows()[:6]
	if err := writeCurves(path, rep); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	if n := strings.Count(string(data), "not measured in this run"); n != 2 {
		t.Errorf("%d charts say they were not measured, want 2:\n%s", n, data)
	}
}

func TestLogAxis(t *testing.T) {
	a := newLogAxis(14, 1538, 0, 300)
	if a.lo != 10 || a.hi != 2000 {
		t.Errorf("axis from 14 to 1538 widened to %v..%v, want 10..2000", a.lo, a.hi)
	}
	if a.pos(10) != 0 || math.Abs(a.pos(2000)-300) > 1e-9 || !(a.pos(100) > a.pos(10) && a.pos(1000) > a.pos(100)) {
		t.Errorf("positions 10, 100, 1000, 2000: %v %v %v %v", a.pos(10), a.pos(100), a.pos(1000), a.pos(2000))
	}
	got := a.ticks()
	want := []float64{10, 20, 50, 100, 200, 500, 1000, 2000}
	if len(got) != len(want) {
		t.Fatalf("ticks %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("ticks %v, want %v", got, want)
		}
	}
	if one := newLogAxis(5, 5, 0, 1); !(one.hi > one.lo) {
		t.Errorf("a single value gets an empty axis: %+v", one)
	}
}

// --plot redraws from the JSON file a run wrote.
func TestPlotOnly(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "r.json")
	if err := writeJSON(jsonPath, Report{Rows: sampleRows()}); err != nil {
		t.Fatal(err)
	}
	if err := plotOnly(jsonPath); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "r.svg"))
	if err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal(data, &doc); err != nil || len(doc.Circles) != 7 {
		t.Fatalf("redrawn SVG: %v, %d markers, want 7", err, len(doc.Circles))
	}
	if err := plotOnly(filepath.Join(dir, "none.json")); err == nil {
		t.Error("--plot of a missing file: no error")
	}
}
