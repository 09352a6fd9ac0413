package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// Row is one line of the table: one figure, measured Runs times.
type Row struct {
	Figure  string    `json:"figure"`
	Unit    string    `json:"unit"` // ms, MiB, %CPU, x, /s, threads
	Samples []float64 `json:"samples"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Runs    int       `json:"runs"`
	// Target is SPEC 8's wording, empty for a figure without a target
	// (a reference, or a point of a scaling curve). Limit is its number:
	// the figure passes when its median is at most Limit.
	Target string  `json:"target,omitempty"`
	Limit  float64 `json:"limit,omitempty"`
	Result string  `json:"result"` // pass, miss, or "-" without a target
	// Kind says how to read the figure: KindRatio, a ratio to a reference
	// timed in the same run (the machine's speed and load weigh on both
	// sides), or KindAbsolute, a time, size or rate of this machine as it
	// was loaded during the run.
	Kind string `json:"kind"`
	// Floor is the median of what the figure cannot go below on this
	// machine, measured in the same run, interleaved with it; FloorOf says
	// what it is, VsFloor is Median / Floor. All zero without a floor.
	FloorOf string  `json:"floor_of,omitempty"`
	Floor   float64 `json:"floor,omitempty"`
	VsFloor float64 `json:"vs_floor,omitempty"`
	// Chart, Series and X place the row on a growth curve (curves.go):
	// the point X (a size: entries, nodes) of that series of that chart.
	Chart  string  `json:"chart,omitempty"`
	Series string  `json:"series,omitempty"`
	X      float64 `json:"x,omitempty"`
}

// Kinds of figure.
const (
	KindRatio    = "ratio"
	KindAbsolute = "absolute"
)

// rowsBySize makes, for each f in turn, its row of every size in sizes
// that has a result.
func rowsBySize[R any](sizes []int, res map[int]*R, fs ...func(n int, r *R) Row) []Row {
	var rows []Row
	for _, f := range fs {
		for _, n := range sizes {
			if r := res[n]; r != nil {
				rows = append(rows, f(n, r))
			}
		}
	}
	return rows
}

// targetIf is target and limit where the row has one (at), none
// elsewhere.
func targetIf(at bool, target string, limit float64) (string, float64) {
	if !at {
		return "", 0
	}
	return target, limit
}

// newRow summarizes samples; limit 0 means no target.
func newRow(figure, unit string, samples []float64, target string, limit float64) Row {
	r := Row{Figure: figure, Unit: unit, Samples: samples, Runs: len(samples), Target: target, Limit: limit, Result: "-", Kind: KindAbsolute}
	if unit == "x" {
		r.Kind = KindRatio
	}
	if len(samples) == 0 {
		r.Median, r.Min, r.Max = math.NaN(), math.NaN(), math.NaN()
		if target != "" {
			r.Result = "miss"
		}
		return r
	}
	r.Median = median(samples)
	r.Min, r.Max = samples[0], samples[0]
	for _, s := range samples {
		r.Min = math.Min(r.Min, s)
		r.Max = math.Max(r.Max, s)
	}
	if target != "" {
		r.Result = "miss"
		if r.Median <= limit {
			r.Result = "pass"
		}
	}
	return r
}

// withFloor gives r the floor of, the median of floor (samples in r's
// unit). A floor without samples, or of zero, is no floor.
func (r Row) withFloor(of string, floor []float64) Row {
	m := median(floor)
	if math.IsNaN(m) || m <= 0 {
		return r
	}
	r.FloorOf, r.Floor = of, m
	if !math.IsNaN(r.Median) {
		r.VsFloor = r.Median / m
	}
	return r
}

// on puts r on a growth curve: the point x of series in chart.
func (r Row) on(chart, series string, x float64) Row {
	r.Chart, r.Series, r.X = chart, series, x
	return r
}

// median of samples, the mean of the middle two for an even count. The
// samples are not reordered.
func median(samples []float64) float64 {
	if len(samples) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// format prints a value in its unit with the precision that unit needs.
func format(v float64, unit string) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch unit {
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "%CPU":
		return fmt.Sprintf("%.3f%%", v)
	case "x":
		return fmt.Sprintf("%.2fx", v)
	case "threads":
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
}

// writeTable prints rows as one aligned table, then what its kind and
// floor columns mean.
func writeTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tkind\tmedian\tmin\tmax\truns\tfloor\tvs floor\ttarget\tresult\t")
	for _, r := range rows {
		target := r.Target
		if target == "" {
			target = "-"
		}
		floor, vs := "-", "-"
		if r.Floor > 0 {
			floor = format(r.Floor, r.Unit)
		}
		if r.VsFloor > 0 {
			vs = format(r.VsFloor, "x")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", r.Figure, r.Kind,
			format(r.Median, r.Unit), format(r.Min, r.Unit), format(r.Max, r.Unit), r.Runs, floor, vs, target, r.Result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprint(w, tableLegend)
	return err
}

// tableLegend follows the table.
const tableLegend = `kind: ratio = to a reference timed in the same run, interleaved (the machine's speed and load weigh on both);
      absolute = a time, size or rate of this machine, as loaded during the run (see the load above).
floor: what the figure cannot go below on this machine, measured in the same run (floor_of in the JSON says what);
       vs floor = median / floor.
`

// Machine describes where the figures came from.
type Machine struct {
	Nproc  int    `json:"nproc"`
	CPU    string `json:"cpu"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	// Load is /proc/loadavg's 1-minute figure at the start and the end:
	// the machine may be shared.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

// Report is what the JSON file holds.
type Report struct {
	Started  string   `json:"started"`
	Command  []string `json:"command"`
	Quick    bool     `json:"quick"`
	Idle     string   `json:"idle_window"`
	Stamp    string   `json:"stamp"` // which timestamp helper the latencies used
	Machine  Machine  `json:"machine"`
	Rows     []Row    `json:"rows"`
	Errors   []string `json:"errors,omitempty"`
	Duration string   `json:"duration"`
}

// writeJSON writes the report; NaN (a figure with no sample) becomes null.
func writeJSON(path string, rep Report) error {
	type jrow struct {
		Row
		Median *float64 `json:"median"`
		Min    *float64 `json:"min"`
		Max    *float64 `json:"max"`
	}
	num := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	rows := make([]jrow, len(rep.Rows))
	for i, r := range rep.Rows {
		rows[i] = jrow{Row: r, Median: num(r.Median), Min: num(r.Min), Max: num(r.Max)}
	}
	out := struct {
		Report
		Rows []jrow `json:"rows"`
	}{rep, rows}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// loadavg is the 1-minute load average.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// machine reads nproc, the CPU model and the kernel release.
func machine(nproc int, goVersion string) Machine {
	m := Machine{Nproc: nproc, Go: goVersion, CPU: "unknown", Kernel: "unknown"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}
