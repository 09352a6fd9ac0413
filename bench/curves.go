package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The growth curves: how the figures grow with the number of entries and
// of nodes, drawn beside the JSON results as an SVG (svg.go) that an
// operator opens in a browser. Rows are put on a curve with Row.on; the
// charts, in this order:
var curveCharts = []struct{ id, title, xLabel, yLabel string }{
	{chartEntries, "Respawn entries in one group", "entries (log)", "ms to all running / all gone (log)"},
	{chartPlace, "HA groups placed, by cluster size", "nodes on this machine (log)", "ms to every hastat showing all (log)"},
	{chartGossip, "Gossip sent per node", "nodes on this machine (log)", "KiB/s per node (log)"},
}

const (
	chartEntries = "entries"
	chartPlace   = "placement"
	chartGossip  = "gossip"
)

// curves gathers the rows on a curve into the charts, with the targets
// of those rows that have one; points without a positive median (nothing
// measured) are left out, their targets are not.
func curves(rows []Row) []chart {
	var out []chart
	for _, spec := range curveCharts {
		c := chart{title: spec.title, xLabel: spec.xLabel, yLabel: spec.yLabel}
		index := map[string]int{}
		for _, r := range rows {
			if r.Chart == spec.id && r.Limit > 0 {
				c.targets = append(c.targets, target{x: r.X, y: r.Limit, label: r.Target})
			}
			if r.Chart != spec.id || !(r.Median > 0) || math.IsInf(r.Median, 0) {
				continue
			}
			i, ok := index[r.Series]
			if !ok {
				i = len(c.series)
				index[r.Series] = i
				c.series = append(c.series, series{name: r.Series})
			}
			p := point{x: r.X, y: r.Median, lo: r.Median, hi: r.Median}
			if r.Min > 0 && r.Min <= r.Median {
				p.lo = r.Min
			}
			if r.Max >= r.Median && !math.IsInf(r.Max, 0) {
				p.hi = r.Max
			}
			c.series[i].pts = append(c.series[i].pts, p)
		}
		for _, s := range c.series {
			sort.Slice(s.pts, func(a, b int) bool { return s.pts[a].x < s.pts[b].x })
		}
		out = append(out, c)
	}
	return out
}

// hasCurves reports whether any row is on a curve.
func hasCurves(rows []Row) bool {
	for _, r := range rows {
		if r.Chart != "" {
			return true
		}
	}
	return false
}

// svgPath is where the curves of the results in jsonPath go: beside it,
// same name, .svg.
func svgPath(jsonPath string) string {
	return strings.TrimSuffix(jsonPath, filepath.Ext(jsonPath)) + ".svg"
}

// writeCurves draws the curves of rep into path.
func writeCurves(path string, rep Report) error {
	cmd := append([]string(nil), rep.Command...)
	if len(cmd) > 0 {
		cmd[0] = "bench" // not go run's temporary path
	}
	note := fmt.Sprintf("clinit bench %s, %d x %s, load %s to %s; medians, bars from min to max; %s",
		rep.Started, rep.Machine.Nproc, rep.Machine.CPU, rep.Machine.LoadStart, rep.Machine.LoadEnd, strings.Join(cmd, " "))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeSVG(f, "clinit: growth curves", note, curves(rep.Rows)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plotOnly redraws the curves of a results file (--plot) without
// measuring anything.
func plotOnly(jsonPath string) error {
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("%s: %w", jsonPath, err)
	}
	if len(rep.Rows) == 0 {
		return fmt.Errorf("%s: no rows", jsonPath)
	}
	return writeCurves(svgPath(jsonPath), rep)
}
