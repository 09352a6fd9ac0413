package netbed

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Event is one line of the events file: "KIND HOST NANOS PID". The
// service of the tests writes start and stop (its own pid), its other
// levels whatever they like; the bed writes kill (a host killed
// outright: its services ended without a word) and the tests their marks
// (pid 0).
type Event struct {
	Kind string
	Host string
	Time time.Time
	Pid  int
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s %s pid %d", e.Time.Format("15:04:05.000"), e.Kind, e.Host, e.Pid)
}

// ReadEvents reads an events file (none: no events); a line that does
// not parse is an error (a torn write would show there).
func ReadEvents(path string) ([]Event, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseEvents(string(data))
}

// ParseEvents parses the text of an events file, sorted by time.
func ParseEvents(text string) ([]Event, error) {
	var evs []Event
	for i, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 4 {
			return nil, fmt.Errorf("events line %d: %q: want KIND HOST NANOS PID", i+1, l)
		}
		ns, err1 := strconv.ParseInt(f[2], 10, 64)
		pid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("events line %d: %q: want KIND HOST NANOS PID", i+1, l)
		}
		evs = append(evs, Event{Kind: f[0], Host: f[1], Time: time.Unix(0, ns), Pid: pid})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	return evs, nil
}

// Window is a stretch of time.
type Window struct{ From, To time.Time }

func (w Window) Len() time.Duration { return w.To.Sub(w.From) }

// Run is one service's life on one host: from its start to its stop (or
// its host killed, or the end of the check when it still runs).
type Run struct {
	Host string
	Pid  int
	Window
	Open bool // no stop was recorded: it ran until its host was killed, or still runs
}

// Span is a stretch of time with the hosts running the service then.
type Span struct {
	Window
	Hosts []string
}

func (s Span) String() string {
	return fmt.Sprintf("%s-%s (%v) on %v", s.From.Format("15:04:05.000"), s.To.Format("15:04:05.000"), s.Len().Round(time.Millisecond), s.Hosts)
}

// Report is what the checker finds in the events of one scenario.
type Report struct {
	Runs  []Run
	Moves int // starts on a host other than the previous start's
	// Overlap is the longest stretch during which the service ran on two
	// hosts or more at once; Overlaps are all such stretches.
	Overlap  time.Duration
	Overlaps []Span
	// Gap is the longest stretch during which it ran nowhere, within the
	// checked window and outside the excused windows (when no quorate
	// eligible host existed); Gaps are all such stretches.
	Gap  time.Duration
	Gaps []Span
}

func (r Report) String() string {
	return fmt.Sprintf("double run: longest %v (%d stretches); ran nowhere: longest %v (%d stretches); %d starts, %d moves",
		r.Overlap.Round(time.Millisecond), len(r.Overlaps), r.Gap.Round(time.Millisecond), len(r.Gaps), len(r.Runs), r.Moves)
}

// Check computes the report of the events in [w.From, w.To]: runs that
// started before w.To count, cut to the window. A start with no stop
// ends when its host is killed, or at w.To (Open).
func Check(evs []Event, w Window, excused []Window) Report {
	var r Report
	open := map[string]int{} // host/pid -> its run in r.Runs
	key := func(e Event) string { return e.Host + "/" + strconv.Itoa(e.Pid) }
	var lastHost string
	for _, e := range evs {
		if e.Time.After(w.To) {
			break
		}
		switch e.Kind {
		case "start":
			if lastHost != "" && e.Host != lastHost {
				r.Moves++
			}
			lastHost = e.Host
			if i, ok := open[key(e)]; ok {
				r.Runs[i].To = e.Time // the same pid again: cannot be, but end the first
			}
			r.Runs = append(r.Runs, Run{Host: e.Host, Pid: e.Pid, Window: Window{e.Time, w.To}, Open: true})
			open[key(e)] = len(r.Runs) - 1
		case "stop":
			if i, ok := open[key(e)]; ok {
				r.Runs[i].To, r.Runs[i].Open = e.Time, false
				delete(open, key(e))
			}
		case "kill":
			for k, i := range open {
				if r.Runs[i].Host == e.Host {
					r.Runs[i].To = e.Time
					delete(open, k)
				}
			}
		}
	}

	// Sweep the boundaries, counting the hosts running it at each moment.
	type edge struct {
		t     time.Time
		host  string
		delta int
	}
	var edges []edge
	for _, run := range r.Runs {
		from, to := maxTime(run.From, w.From), run.To
		if !to.After(from) {
			continue
		}
		edges = append(edges, edge{from, run.Host, +1}, edge{to, run.Host, -1})
	}
	sort.SliceStable(edges, func(i, j int) bool {
		if !edges[i].t.Equal(edges[j].t) {
			return edges[i].t.Before(edges[j].t)
		}
		return edges[i].delta < edges[j].delta // an end before a start at the same instant
	})
	count := map[string]int{}
	hosts := func() []string {
		var hs []string
		for h, n := range count {
			if n > 0 {
				hs = append(hs, h)
			}
		}
		sort.Strings(hs)
		return hs
	}
	var overlapFrom, gapFrom time.Time
	var overlapHosts []string
	inOverlap, inGap := false, true
	gapFrom = w.From
	for _, e := range edges {
		count[e.host] += e.delta
		n := len(hosts())
		switch {
		case n >= 2 && !inOverlap:
			inOverlap, overlapFrom = true, e.t
			overlapHosts = hosts()
		case n >= 2:
			overlapHosts = union(overlapHosts, hosts())
		case n < 2 && inOverlap:
			inOverlap = false
			r.Overlaps = append(r.Overlaps, Span{Window{overlapFrom, e.t}, overlapHosts})
		}
		switch {
		case n == 0 && !inGap:
			inGap, gapFrom = true, e.t
		case n > 0 && inGap:
			inGap = false
			r.Gaps = append(r.Gaps, excuse(Window{gapFrom, e.t}, excused)...)
		}
	}
	if inOverlap {
		r.Overlaps = append(r.Overlaps, Span{Window{overlapFrom, w.To}, overlapHosts})
	}
	if inGap {
		r.Gaps = append(r.Gaps, excuse(Window{gapFrom, w.To}, excused)...)
	}
	for _, s := range r.Overlaps {
		r.Overlap = max(r.Overlap, s.Len())
	}
	for _, s := range r.Gaps {
		r.Gap = max(r.Gap, s.Len())
	}
	return r
}

// excuse cuts the excused windows out of a gap.
func excuse(g Window, excused []Window) []Span {
	parts := []Window{g}
	for _, x := range excused {
		var next []Window
		for _, p := range parts {
			if !x.From.Before(p.To) || !x.To.After(p.From) {
				next = append(next, p)
				continue
			}
			if x.From.After(p.From) {
				next = append(next, Window{p.From, x.From})
			}
			if x.To.Before(p.To) {
				next = append(next, Window{x.To, p.To})
			}
		}
		parts = next
	}
	var out []Span
	for _, p := range parts {
		if p.To.After(p.From) {
			out = append(out, Span{Window: p})
		}
	}
	return out
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
