package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// A small SVG line-chart writer for the growth curves (curves.go): a few
// series of a few points each, on log-log axes, with min-max bars. Our
// own rather than gonum/plot: these are three panels of text, and plot
// would bring gonum, a font stack and image codecs into go.mod for them.

// chart is one panel.
type chart struct {
	title, xLabel, yLabel string
	series                []series
	targets               []target
}

// target is SPEC 8's limit for the point at x, drawn as a dashed mark.
type target struct {
	x, y  float64
	label string
}

// series is one line of a chart, its points in x order.
type series struct {
	name string
	pts  []point
}

// point is a median with the spread of its runs.
type point struct {
	x, y, lo, hi float64
}

// Panel geometry, in SVG user units (pixels when opened as is).
const (
	panelW, panelH          = 460.0, 360.0
	padL, padR, padT, padB  = 64.0, 16.0, 34.0, 48.0 // padT: to the legend, above the plot
	inset                   = 16.0                   // between the frame and the outermost x
	panelsPerRow            = 3
	svgFont                 = "font-family=\"sans-serif\" font-size=\"12\""
	legendLine, legendWidth = 16.0, 22.0
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// writeSVG draws charts side by side (panelsPerRow a row) under a title
// and a note.
func writeSVG(w io.Writer, title, note string, charts []chart) error {
	rows := (len(charts) + panelsPerRow - 1) / panelsPerRow
	cols := min(len(charts), panelsPerRow)
	width, height := float64(max(cols, 1))*panelW, 44+float64(rows)*panelH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" %s>`+"\n", width, height, width, height, svgFont)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="12" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", esc(title))
	fmt.Fprintf(&b, `<text x="12" y="37" fill="#555">%s</text>`+"\n", esc(note))
	for i, c := range charts {
		x0, y0 := float64(i%panelsPerRow)*panelW, 44+float64(i/panelsPerRow)*panelH
		drawChart(&b, c, x0, y0)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// logAxis maps [lo, hi] (both > 0) onto [p0, p1] on a log scale;
// newLogAxis widens the range to whole 1-2-5 steps.
type logAxis struct {
	lo, hi, p0, p1 float64
}

func newLogAxis(lo, hi, p0, p1 float64) logAxis {
	if !(lo > 0) || !(hi > 0) {
		lo, hi = 1, 10
	}
	lo, hi = stepDown(lo), stepUp(hi)
	if hi <= lo {
		hi = stepUp(lo * 1.01)
	}
	return logAxis{lo, hi, p0, p1}
}

func (a logAxis) pos(v float64) float64 {
	return a.p0 + (math.Log10(v)-math.Log10(a.lo))/(math.Log10(a.hi)-math.Log10(a.lo))*(a.p1-a.p0)
}

// ticks are the 1-2-5 values in range; with many decades, the powers of
// ten only.
func (a logAxis) ticks() []float64 {
	mults := []float64{1, 2, 5}
	if math.Log10(a.hi/a.lo) > 3.5 {
		mults = []float64{1}
	}
	var out []float64
	for e := math.Floor(math.Log10(a.lo)); e <= math.Ceil(math.Log10(a.hi)); e++ {
		for _, m := range mults {
			v := m * math.Pow(10, e)
			if v >= a.lo*0.999 && v <= a.hi*1.001 {
				out = append(out, v)
			}
		}
	}
	return out
}

// stepDown and stepUp round to the 1-2-5 step at or beyond v.
func stepDown(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{5, 2, 1} {
		if m*e <= v*1.0001 {
			return m * e
		}
	}
	return e
}

func stepUp(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v*0.9999 {
			return m * e
		}
	}
	return 10 * e
}

func drawChart(b *strings.Builder, c chart, x0, y0 float64) {
	left, right := x0+padL, x0+panelW-padR
	// The legend goes between the title and the plot, a line a series.
	legendTop := y0 + padT
	top, bottom := legendTop+float64(len(c.series))*legendLine+4, y0+panelH-padB
	fmt.Fprintf(b, `<text x="%g" y="%g" font-size="13" font-weight="bold">%s</text>`+"\n", left, y0+22, esc(c.title))

	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		for _, p := range s.pts {
			xlo, xhi = math.Min(xlo, p.x), math.Max(xhi, p.x)
			ylo, yhi = math.Min(ylo, math.Min(p.y, p.lo)), math.Max(yhi, math.Max(p.y, p.hi))
		}
	}
	for _, t := range c.targets {
		xlo, xhi = math.Min(xlo, t.x), math.Max(xhi, t.x)
		ylo, yhi = math.Min(ylo, t.y), math.Max(yhi, t.y)
	}
	if math.IsInf(xlo, 1) {
		fmt.Fprintf(b, `<text x="%g" y="%g" fill="#888">not measured in this run</text>`+"\n", left+10, (top+bottom)/2)
		return
	}
	xa, ya := logAxis{lo: xlo, hi: xhi, p0: left + inset, p1: right - inset}, newLogAxis(ylo, yhi, bottom, top)
	if xhi <= xlo {
		xa.lo, xa.hi = xlo/2, xlo*2
	}

	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#999"/>`+"\n", left, top, right-left, bottom-top)
	for _, t := range ya.ticks() {
		y := ya.pos(t)
		fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#e4e4e4"/>`+"\n", left, y, right, y)
		fmt.Fprintf(b, `<text x="%g" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-5, y, tickLabel(t))
	}
	// The x ticks are the sizes measured.
	seen := map[float64]bool{}
	for _, s := range c.series {
		for _, p := range s.pts {
			if seen[p.x] {
				continue
			}
			seen[p.x] = true
			x := xa.pos(p.x)
			fmt.Fprintf(b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#e4e4e4"/>`+"\n", x, top, x, bottom)
			fmt.Fprintf(b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, bottom+16, tickLabel(p.x))
		}
	}
	fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle" fill="#333">%s</text>`+"\n", (left+right)/2, bottom+36, esc(c.xLabel))
	fmt.Fprintf(b, `<text transform="translate(%g %g) rotate(-90)" text-anchor="middle" fill="#333">%s</text>`+"\n", x0+14, (top+bottom)/2, esc(c.yLabel))

	for _, t := range c.targets {
		x, y := xa.pos(t.x), ya.pos(t.y)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="2" stroke-dasharray="4 3"><title>SPEC 8: %s</title></line>`+"\n", x-18, y, x+18, y, esc(t.label))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#000">target</text>`+"\n", x-22, y+4)
	}
	for i, s := range c.series {
		color := palette[i%len(palette)]
		var path []string
		for _, p := range s.pts {
			x, y := xa.pos(p.x), ya.pos(p.y)
			path = append(path, fmt.Sprintf("%.1f,%.1f", x, y))
			if p.hi > p.lo {
				fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-opacity="0.5" stroke-width="3"/>`+"\n", x, ya.pos(p.lo), x, ya.pos(p.hi), color)
			}
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s: %s at %s</title></circle>`+"\n", x, y, color, esc(s.name), tickLabel(p.y), tickLabel(p.x))
		}
		if len(path) > 1 {
			fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(path, " "), color)
		}
		ly := legendTop + float64(i)*legendLine + legendLine/2
		fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"/>`+"\n", left+8, ly, left+8+legendWidth, ly, color)
		fmt.Fprintf(b, `<text x="%g" y="%g" dominant-baseline="middle">%s</text>`+"\n", left+8+legendWidth+6, ly, esc(s.name))
	}
}

// tickLabel prints a value with the digits it needs: 3, 30, 1000, 0.5,
// 1.39.
func tickLabel(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	case v >= 10:
		return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

func esc(s string) string { return html.EscapeString(s) }
