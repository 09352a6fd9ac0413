// Package promtext writes metrics in the Prometheus text exposition
// format (version 0.0.4): what a scraper of /metrics reads.
//
// It replaces the Prometheus client library, whose package initialisation
// (a default registry with Go and process collectors, protobuf, procfs)
// ran in every clinit process, the command-line client included, before
// it could talk to the daemon. The daemon writes a handful of families at
// each scrape; this is all of the format it needs.
package promtext

import (
	"bytes"
	"math"
	"strconv"
)

// ContentType is the Content-Type of the text format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Types of a family.
const (
	Gauge   = "gauge"
	Counter = "counter"
	Summary = "summary" // written by WriteSummary
)

// Family is one metric name with its help, type and label names.
type Family struct {
	Name   string
	Help   string
	Type   string // Gauge or Counter; Summary for WriteSummary
	Labels []string
}

// Sample is one value of a family, with the values of its labels in the
// family's order.
type Sample struct {
	Labels []string
	Value  float64
}

// Writer accumulates families. The zero value is ready to use.
type Writer struct {
	buf bytes.Buffer
}

// Write adds a family and its samples: the HELP and TYPE lines, then one
// line per sample. A family without samples gets only its HELP and TYPE.
// A sample whose label count is not the family's is a programming error
// and panics.
func (w *Writer) Write(f Family, samples ...Sample) {
	w.head(f)
	for _, s := range samples {
		w.sample(f, f.Name, s)
	}
}

// SummarySample is one series of a summary: the sum and the count of
// what was observed (no quantiles).
type SummarySample struct {
	Labels []string
	Sum    float64
	Count  uint64
}

// WriteSummary adds a family of type Summary: for each sample, the
// NAME_sum and NAME_count lines.
func (w *Writer) WriteSummary(f Family, samples ...SummarySample) {
	f.Type = Summary
	w.head(f)
	for _, s := range samples {
		w.sample(f, f.Name+"_sum", Sample{Labels: s.Labels, Value: s.Sum})
		w.sample(f, f.Name+"_count", Sample{Labels: s.Labels, Value: float64(s.Count)})
	}
}

func (w *Writer) head(f Family) {
	w.buf.WriteString("# HELP ")
	w.buf.WriteString(f.Name)
	w.buf.WriteByte(' ')
	w.escape(f.Help, false)
	w.buf.WriteString("\n# TYPE ")
	w.buf.WriteString(f.Name)
	w.buf.WriteByte(' ')
	w.buf.WriteString(f.Type)
	w.buf.WriteByte('\n')
}

func (w *Writer) sample(f Family, name string, s Sample) {
	if len(s.Labels) != len(f.Labels) {
		panic("promtext: " + f.Name + ": " + strconv.Itoa(len(s.Labels)) + " label values for " + strconv.Itoa(len(f.Labels)) + " labels")
	}
	w.buf.WriteString(name)
	for i, l := range f.Labels {
		if i == 0 {
			w.buf.WriteByte('{')
		} else {
			w.buf.WriteByte(',')
		}
		w.buf.WriteString(l)
		w.buf.WriteString(`="`)
		w.escape(s.Labels[i], true)
		w.buf.WriteByte('"')
	}
	if len(f.Labels) > 0 {
		w.buf.WriteByte('}')
	}
	w.buf.WriteByte(' ')
	w.buf.WriteString(formatValue(s.Value))
	w.buf.WriteByte('\n')
}

// Bytes is everything written so far.
func (w *Writer) Bytes() []byte { return w.buf.Bytes() }

// One is a sample without labels.
func One(v float64) Sample { return Sample{Value: v} }

// With is a sample with label values.
func With(v float64, labels ...string) Sample { return Sample{Labels: labels, Value: v} }

// escape writes s with backslash and newline escaped, and the double
// quote too in a label value (the format's two escapings).
func (w *Writer) escape(s string, quote bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			w.buf.WriteString(`\\`)
		case c == '\n':
			w.buf.WriteString(`\n`)
		case c == '"' && quote:
			w.buf.WriteString(`\"`)
		default:
			w.buf.WriteByte(c)
		}
	}
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
