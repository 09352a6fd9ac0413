// Command bench is `make bench`: it measures the performance figures of
// SPEC 8 on the real clinit binary, the way an operator would run it
// (`clinit -d` on a cltab, told through its socket), prints one table
// (figure; its kind, a ratio or an absolute figure of this machine;
// median, min, max, runs; its floor and the median's ratio to it; target,
// pass or miss) and writes the same as JSON.
//
// Every figure is repeated; a reference that a figure is compared with
// (a bare Go loop starting the same commands) is timed in the same run,
// interleaved with it, so that a busy machine weighs on both alike.
//
// The figures come in groups, each one function in figureGroups below. A
// group starts the daemons it needs under the bench's temporary
// directory, measures, adds its rows with b.add, and stops its daemons;
// the bench kills whatever a failed group left behind. Adding a figure is
// adding one function to that list.
//
// Usage (from the module root, after `make build`):
//
//	go run ./bench [--quick] [--idle 30s] [--json FILE] [--only tell,respawn,scale,failover,failover-nostomith,handoff,nodes]
//	               [--nodes 3,30,100] [--groups 1000] [--bin bin/clinit] [--dir /tmp]
//	go run ./bench --plot [--json FILE]
//
// Beside the JSON file (bench-results.json) it draws the growth curves
// (curves.go) as an SVG of the same name (bench-results.svg).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// figureGroup is one function that measures one or more rows.
type figureGroup struct {
	name string // for --only
	run  func(b *bench) error
}

// figureGroups are run in this order.
var figureGroups = []figureGroup{
	{"tell", benchTell},                            // latency.go: a tell to a once entry's first instruction
	{"respawn", benchRespawn},                      // latency.go: SIGKILL to the replacement's first instruction
	{"scale", benchScale},                          // scale.go: N respawn entries up and down, RSS, idle CPU
	{"failover", benchFailover},                    // failover.go: an HA group's owner SIGKILLed to the group running elsewhere, 3 nodes
	{"failover-nostomith", benchFailoverNoStomith}, // failover.go: the same without stomith, 3 and 30 nodes
	{"handoff", benchHandoff},                      // failover.go: clinit -k on the owner to the group running elsewhere, 3 nodes
	{"nodes", benchNodes},                          // scale_nodes.go: 3, 30, 100 nodes placing 1,000 HA groups; gossip bytes
}

// bench is the state shared by the figure groups.
type bench struct {
	bin       string        // the clinit binary, absolute
	stamp     string        // the timestamp helper (see stamp.go)
	stampKind string        // "c (static)", "c (dynamic)" or "go"
	stampGo   string        // the Go helper, for the floor of a Go program's start
	tmp       string        // every file of the run is under it, but:
	run       string        // the sockets (and so the output FIFOs beside them): a tmpfs, as /var/run
	quick     bool          // fewer runs, shorter idle window
	keep      bool          // keep the work directory
	idle      time.Duration // idle CPU window
	progress  io.Writer

	mu       sync.Mutex
	rows     []Row
	cleanups []func()
	cleaned  bool
}

// add appends rows to the table.
func (b *bench) add(rows ...Row) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rows = append(b.rows, rows...)
}

// runs is the repeat count of a figure: full in a real run, quick with
// --quick. Never fewer than 2: no figure is a single run.
func (b *bench) runs(full, quick int) int {
	n := full
	if b.quick {
		n = quick
	}
	return max(n, 2)
}

// logf reports progress on stderr (the table goes to stdout).
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
}

// onCleanup registers f to run when the bench ends, however it ends; the
// last registered runs first.
func (b *bench) onCleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, f)
}

// cleanup stops every daemon, kills every process the run started (they
// all carry benchEnv in their environment), and removes the temporary
// directory. It runs once.
func (b *bench) cleanup() {
	b.mu.Lock()
	if b.cleaned {
		b.mu.Unlock()
		return
	}
	b.cleaned = true
	fs := b.cleanups
	b.cleanups = nil
	b.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	if b.run != "" && b.run != b.tmp && !b.keep {
		defer os.RemoveAll(b.run)
	}
	if b.tmp != "" {
		if n := killTagged(b.tmp); n > 0 {
			b.logf("killed %d leftover processes", n)
		}
		if b.keep {
			b.logf("kept the work directory %s", b.tmp)
		} else {
			os.RemoveAll(b.tmp)
		}
	}
}

func main() { os.Exit(run()) }

func run() int {
	var (
		bin      = flag.String("bin", "bin/clinit", "the clinit binary to measure")
		jsonPath = flag.String("json", "bench-results.json", "write the results as JSON to this file")
		quick    = flag.Bool("quick", false, "fewer runs and a short idle window, for development")
		idle     = flag.Duration("idle", 30*time.Second, "the window over which idle CPU is measured (default 3s with --quick)")
		only     = flag.String("only", "", "run only these figure groups, comma-separated: "+groupNames())
		stamp    = flag.String("stamp", "auto", "the timestamp helper: c (built with cc), go, or auto (c if cc works)")
		keep     = flag.Bool("keep", false, "keep the work directory (the daemons' logs, hastat and state) when done")
		plot     = flag.Bool("plot", false, "measure nothing: redraw the growth curves of the --json file beside it (.svg)")
		parent   = flag.String("dir", "/tmp", "make the work directory (cltabs, sockets, state, markers) under this one; keep it short: socket paths must stay under 108 bytes")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "bench: no arguments expected")
		flag.Usage()
		return 2
	}
	if *plot {
		if err := plotOnly(*jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "bench: growth curves written to", svgPath(*jsonPath))
		return 0
	}
	idleSet := false
	flag.Visit(func(f *flag.Flag) { idleSet = idleSet || f.Name == "idle" })
	b := &bench{quick: *quick, keep: *keep, idle: *idle, progress: os.Stderr}
	if b.quick && !idleSet {
		b.idle = 3 * time.Second
	}
	selected, err := selectGroups(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if b.bin, err = filepath.Abs(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if _, err := os.Stat(b.bin); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v (run `make build` first)\n", err)
		return 2
	}

	// A socket path must stay under 108 bytes: keep the directory short.
	b.tmp, err = os.MkdirTemp(*parent, "clb")
	if err == nil {
		// A daemon's socket (default /var/run/clinit) is on a tmpfs, and
		// its children's output FIFOs are made beside it at every start.
		b.run = b.tmp
		if r, rerr := os.MkdirTemp("/dev/shm", "clb"); rerr == nil {
			b.run = r
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer b.cleanup()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		b.logf("%v: cleaning up", sig)
		b.cleanup()
		os.Exit(130)
	}()

	start := time.Now()
	loadStart := loadavg()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	b.stamp, b.stampKind, err = buildStamp(ctx, b.tmp, *stamp)
	if err == nil {
		b.stampGo = b.stamp
		if b.stampKind != "go" {
			b.stampGo, err = buildStampGo(ctx, b.tmp)
		}
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: building the timestamp helper:", err)
		return 1
	}
	b.logf("clinit %s, stamp helper %s, idle window %v, work dir %s", b.bin, b.stampKind, b.idle, b.tmp)

	var errs []string
	for _, g := range selected {
		b.logf("%s: start", g.name)
		t0 := time.Now()
		if err := g.run(b); err != nil {
			b.logf("%s: FAILED: %v", g.name, err)
			errs = append(errs, g.name+": "+err.Error())
		} else {
			b.logf("%s: done in %v", g.name, time.Since(t0).Round(time.Millisecond))
		}
	}
	b.cleanup()
	signal.Stop(sigs)

	m := machine(runtime.NumCPU(), runtime.Version())
	m.LoadStart, m.LoadEnd = loadStart, loadavg()
	rep := Report{
		Started:  start.UTC().Format(time.RFC3339),
		Command:  os.Args,
		Quick:    b.quick,
		Idle:     b.idle.String(),
		Stamp:    b.stampKind,
		Machine:  m,
		Rows:     b.rows,
		Errors:   errs,
		Duration: time.Since(start).Round(time.Second).String(),
	}
	fmt.Printf("clinit bench: %d x %s, Linux %s, %s; load %s at the start, %s at the end; stamp helper %s; work dir under %s; took %s\n",
		m.Nproc, m.CPU, m.Kernel, m.Go, m.LoadStart, m.LoadEnd, b.stampKind, *parent, rep.Duration)
	if err := writeTable(os.Stdout, b.rows); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	for _, e := range errs {
		fmt.Println("ERROR", e)
	}
	if err := writeJSON(*jsonPath, rep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b.logf("results written to %s", *jsonPath)
	if hasCurves(rep.Rows) {
		if err := writeCurves(svgPath(*jsonPath), rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		b.logf("growth curves drawn in %s", svgPath(*jsonPath))
	}
	if len(errs) > 0 {
		return 1
	}
	return 0
}

func groupNames() string {
	var names []string
	for _, g := range figureGroups {
		names = append(names, g.name)
	}
	return strings.Join(names, ",")
}

func selectGroups(only string) ([]figureGroup, error) {
	if only == "" {
		return figureGroups, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []figureGroup
	for _, g := range figureGroups {
		if want[g.name] {
			out = append(out, g)
			delete(want, g.name)
		}
	}
	for n := range want {
		return nil, errors.New("unknown figure group " + n + " (known: " + groupNames() + ")")
	}
	return out, nil
}
