package promtext

import (
	"math"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	var w Writer
	w.Write(Family{Name: "a_total", Help: "A back\\slash\nand a newline.", Type: Counter}, One(3))
	w.Write(Family{Name: "b", Help: "B.", Type: Gauge, Labels: []string{"group", "tag"}},
		With(1, "web", `say "hi"`), With(0.5, `c:\dir`, "two\nlines"))
	w.Write(Family{Name: "c", Help: "None yet.", Type: Gauge, Labels: []string{"x"}})
	w.Write(Family{Name: "d", Help: "Specials.", Type: Gauge, Labels: []string{"v"}},
		With(math.Inf(1), "+"), With(math.Inf(-1), "-"), With(math.NaN(), "nan"), With(1e21, "big"), With(-0.25, "neg"))
	want := `# HELP a_total A back\\slash\nand a newline.
# TYPE a_total counter
a_total 3
# HELP b B.
# TYPE b gauge
b{group="web",tag="say \"hi\""} 1
b{group="c:\\dir",tag="two\nlines"} 0.5
# HELP c None yet.
# TYPE c gauge
# HELP d Specials.
# TYPE d gauge
d{v="+"} +Inf
d{v="-"} -Inf
d{v="nan"} NaN
d{v="big"} 1e+21
d{v="neg"} -0.25
`
	if got := string(w.Bytes()); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWrongLabelCountPanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "b: 1 label values for 2 labels") {
			t.Errorf("recovered %v, want a panic naming the family and the counts", r)
		}
	}()
	var w Writer
	w.Write(Family{Name: "b", Type: Gauge, Labels: []string{"group", "tag"}}, With(1, "web"))
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 7 0 123456 1048576 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	st, err := parseStat("stat", line)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{utime: 250, stime: 75, threads: 7, start: 123456, vsize: 1048576, rss: 300}
	if st != want {
		t.Errorf("parseStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"4242 no parenthesis", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 75 0 0 20 0 7 0 1 1 300 0"} {
		if _, err := parseStat("/proc/1/stat", bad); err == nil || !strings.Contains(err.Error(), "/proc/1/stat") {
			t.Errorf("parseStat(%q) = %v, want an error naming the file", bad, err)
		}
	}
}

// TestWriteProcess reads this test process's own figures.
func TestWriteProcess(t *testing.T) {
	var w Writer
	if err := w.WriteProcess(); err != nil {
		t.Fatal(err)
	}
	out := string(w.Bytes())
	for _, name := range []string{"process_resident_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds",
		"process_open_fds", "process_max_fds", "process_virtual_memory_bytes", "go_goroutines", "go_threads", "go_memstats_alloc_bytes"} {
		if !strings.Contains(out, "\n"+name+" ") {
			t.Errorf("no %s sample in:\n%s", name, out)
		}
	}
	if strings.Contains(out, "\nprocess_resident_memory_bytes 0\n") {
		t.Errorf("a running process with no resident memory:\n%s", out)
	}
}
