// Package gometrics is the process's one go-metrics sink: what memberlist
// and raft report through go-metrics' global metrics (counters, gauges,
// timings), kept in memory and written to /metrics in the Prometheus text
// format, named as go-metrics' own Prometheus sink names them (the key's
// parts joined with '_', memberlist_udp_sent, raft_commitTime).
//
// go-metrics' Prometheus sink would do the same through client_golang,
// whose package initialisation (its default registry with the Go and
// process collectors, protobuf descriptors, procfs, runtime/metrics)
// measured 1.5 ms more in every clinit process (GODEBUG=inittrace=1,
// median of 50 runs of clinit --version: 3.71 ms against 2.19 ms),
// and 1.8 MB more binary. Every clinit process but a plain tell pays
// what is linked, so the sink is ours, and writes with package promtext.
package gometrics

import (
	"sort"
	"strings"
	"sync"
	"time"

	metrics "github.com/hashicorp/go-metrics"

	"github.com/clinit/clinit/internal/promtext"
)

// MaxSeries bounds the series kept; later new ones are counted in
// Dropped, not kept (a label with unbounded values must not grow the
// daemon's memory).
const MaxSeries = 4096

// GaugeExpiry is how long a gauge no one set again is still written, as
// go-metrics' Prometheus sink expires them: raft sets some only while it
// leads.
const GaugeExpiry = time.Minute

// Sink implements go-metrics' MetricSink and PrecisionGaugeMetricSink.
// Its methods are safe for concurrent use.
type Sink struct {
	now func() time.Time

	mu      sync.Mutex
	series  map[string]*series // by kind, name and labels
	dropped uint64
}

type kind int

const (
	counter kind = iota
	gauge
	sample
)

// series is one metric with one set of labels.
type series struct {
	kind   kind
	key    string // the go-metrics key, dotted: the help names it
	name   string // the Prometheus name
	labels []metrics.Label
	value  float64 // a counter's sum, a gauge's value
	count  uint64  // samples
	sum    float64 // samples
	set    time.Time
}

// New returns an empty sink.
func New() *Sink { return &Sink{now: time.Now, series: map[string]*series{}} }

var _ metrics.MetricSink = (*Sink)(nil)
var _ metrics.PrecisionGaugeMetricSink = (*Sink)(nil)

func (s *Sink) SetGauge(key []string, val float32) { s.SetGaugeWithLabels(key, val, nil) }
func (s *Sink) SetGaugeWithLabels(key []string, val float32, labels []metrics.Label) {
	s.SetPrecisionGaugeWithLabels(key, float64(val), labels)
}
func (s *Sink) SetPrecisionGauge(key []string, val float64) {
	s.SetPrecisionGaugeWithLabels(key, val, nil)
}
func (s *Sink) SetPrecisionGaugeWithLabels(key []string, val float64, labels []metrics.Label) {
	s.update(gauge, key, labels, func(m *series) { m.value = val })
}

// EmitKey is dropped, as go-metrics' Prometheus sink drops it.
func (s *Sink) EmitKey(key []string, val float32) {}

func (s *Sink) IncrCounter(key []string, val float32) { s.IncrCounterWithLabels(key, val, nil) }
func (s *Sink) IncrCounterWithLabels(key []string, val float32, labels []metrics.Label) {
	s.update(counter, key, labels, func(m *series) { m.value += float64(val) })
}

func (s *Sink) AddSample(key []string, val float32) { s.AddSampleWithLabels(key, val, nil) }
func (s *Sink) AddSampleWithLabels(key []string, val float32, labels []metrics.Label) {
	s.update(sample, key, labels, func(m *series) { m.count++; m.sum += float64(val) })
}

func (s *Sink) update(k kind, key []string, labels []metrics.Label, f func(*series)) {
	name := Name(key)
	id := seriesID(k, name, labels)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.series[id]
	if m == nil {
		if len(s.series) >= MaxSeries {
			s.dropped++
			return
		}
		m = &series{kind: k, key: strings.Join(key, "."), name: name, labels: append([]metrics.Label(nil), labels...)}
		s.series[id] = m
	}
	f(m)
	m.set = s.now()
}

func seriesID(k kind, name string, labels []metrics.Label) string {
	var b strings.Builder
	b.WriteByte(byte('0' + k))
	b.WriteString(name)
	for _, l := range labels {
		b.WriteByte(0)
		b.WriteString(l.Name)
		b.WriteByte(0)
		b.WriteString(l.Value)
	}
	return b.String()
}

// Name is the Prometheus name of a go-metrics key: its parts joined with
// '_', every character a name may not hold made '_'.
func Name(key []string) string { return sanitize(strings.Join(key, "_"), true) }

func sanitize(s string, colon bool) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (i > 0 && '0' <= c && c <= '9') || (colon && c == ':')
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// Counter is the sum of the counter key over all its labels (0 when it
// was never counted).
func (s *Sink) Counter(key ...string) float64 {
	name := Name(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	var v float64
	for _, m := range s.series {
		if m.kind == counter && m.name == name {
			v += m.value
		}
	}
	return v
}

// Dropped is how many new series were not kept, past MaxSeries.
func (s *Sink) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Write adds every family the sink holds to w, sorted by name: counters
// as counters, gauges set within GaugeExpiry as gauges, samples as
// summaries (their sum and count). A name seen as two kinds is written
// as the first kind of counter, gauge, sample. The label names of a
// family are all those its series have (a series without one has it
// empty, which Prometheus reads as absent).
func (s *Sink) Write(w *promtext.Writer) {
	s.mu.Lock()
	now := s.now()
	type family struct {
		kind   kind
		key    string
		labels []string
		series []*series
	}
	fams := map[string]*family{}
	for _, m := range s.series {
		if m.kind == gauge && now.Sub(m.set) > GaugeExpiry {
			continue
		}
		f := fams[m.name]
		if f == nil || m.kind < f.kind {
			f = &family{kind: m.kind, key: m.key}
			fams[m.name] = f
		}
		if m.kind != f.kind {
			continue
		}
		cp := *m
		f.series = append(f.series, &cp)
	}
	s.mu.Unlock()

	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := fams[n]
		seen := map[string]bool{}
		for _, m := range f.series {
			for _, l := range m.labels {
				if ln := sanitize(l.Name, false); !seen[ln] {
					seen[ln] = true
					f.labels = append(f.labels, ln)
				}
			}
		}
		sort.Strings(f.labels)
		values := func(m *series) []string {
			v := make([]string, len(f.labels))
			for _, l := range m.labels {
				v[sort.SearchStrings(f.labels, sanitize(l.Name, false))] = l.Value
			}
			return v
		}
		sort.Slice(f.series, func(i, j int) bool {
			return strings.Join(values(f.series[i]), "\x00") < strings.Join(values(f.series[j]), "\x00")
		})
		fam := promtext.Family{Name: n, Labels: f.labels}
		switch f.kind {
		case counter:
			fam.Type, fam.Help = promtext.Counter, "go-metrics counter "+f.key+": the sum of what "+owner(f.key)+" counted."
			var ss []promtext.Sample
			for _, m := range f.series {
				ss = append(ss, promtext.With(m.value, values(m)...))
			}
			w.Write(fam, ss...)
		case gauge:
			fam.Type, fam.Help = promtext.Gauge, "go-metrics gauge "+f.key+": the last value "+owner(f.key)+" set, within "+GaugeExpiry.String()+"."
			var ss []promtext.Sample
			for _, m := range f.series {
				ss = append(ss, promtext.With(m.value, values(m)...))
			}
			w.Write(fam, ss...)
		case sample:
			fam.Help = "go-metrics samples " + f.key + ": their sum and count (timings in milliseconds), as " + owner(f.key) + " reported them."
			var ss []promtext.SummarySample
			for _, m := range f.series {
				ss = append(ss, promtext.SummarySample{Labels: values(m), Sum: m.sum, Count: m.count})
			}
			w.WriteSummary(fam, ss...)
		}
	}
}

// owner names the library a key comes from: its first part.
func owner(key string) string {
	if i := strings.IndexByte(key, '.'); i > 0 {
		return key[:i]
	}
	return "the library"
}
