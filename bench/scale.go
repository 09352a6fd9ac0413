package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clinit/clinit/api"
)

// scaleSizes are the entry counts of the scaling curve (--sizes). SPEC
// 8's targets, the idle CPU and the peak RSS are about specEntries; a
// larger size is a point of the curve only, measured in fewer runs (and
// not at all by --quick, unless --sizes names it), and one that fails (a
// machine without room for it) is logged, not an error of the bench.
var (
	scaleSizes = []int{10, 100, 1000, 3000}
	sizesSet   bool // --sizes was given
)

const specEntries = 1000

// parseSizes parses a comma-separated list of whole numbers from 1 to
// most; what names one in the error.
func parseSizes(s, what string, most int) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > most {
			return nil, fmt.Errorf("bad %s %q: want 1 to %d", what, f, most)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

func init() {
	flag.Func("sizes", "the entry counts of the scale group, comma-separated (default 10,100,1000,3000)", func(s string) error {
		sizes, err := parseSizes(s, "entry count", 9999)
		if err != nil {
			return err
		}
		scaleSizes, sizesSet = sizes, true
		return nil
	})
}

// benchScale: N `respawn` entries in one group, N = 10, 100, 1,000 and
// 3,000 (--sizes).
//
//   - up: from just before the tell (Go client) to the moment every entry
//     is running. "Running" is exact and the same for both sides: each
//     command's first action is to create its own marker file, and the
//     bench counts the creations through inotify; the time is when it
//     reads the N-th. The command is `: >MARKER; exec sleep 1000000`.
//   - bare: the same N commands started by a loop in the bench
//     (os.StartProcess of /bin/sh -c CMD with its own process group,
//     stdio on /dev/null), timed the same way in the same run; the order
//     of the two alternates from run to run. ratio = up / bare (SPEC 8:
//     within 1.1x at 1,000); the bare loop is also the up row's floor.
//   - RSS: the daemon's VmRSS (/proc/PID/status) once all N run and it
//     reports the group DONE (SPEC 8: under 64 MiB at 1,000); at 1,000
//     also VmHWM, its peak so far.
//   - idle CPU, at 1,000, in 3 of its runs: the daemon's
//     utime+stime (/proc/PID/stat, 10 ms ticks) over the --idle window,
//     one second after the group is DONE, as a share of one CPU (SPEC 8:
//     under 0.1%), and the context switches of all its threads over the
//     same window (wake-ups per second: an event-driven daemon has next
//     to none).
//   - threads: the daemon's thread count once all N run.
//   - down: from just before the tell to a level with none of the
//     entries (99) to the later of: every process has exited (pidfds),
//     and the daemon's clstat says `G 99 DONE` (it has reaped them and
//     seen their process groups empty).
func benchScale(b *bench) error {
	res := map[int]*scaleResult{}
	defer func() { b.add(scaleRows(res, specEntries)...) }()
	for _, n := range scaleSizes {
		if n > specEntries && b.quick && !sizesSet {
			b.logf("scale: %d entries skipped by --quick (--sizes to measure it)", n)
			continue
		}
		r := &scaleResult{}
		res[n] = r
		// The idle window is long, so idle CPU is measured in the first
		// idleRuns runs only (at specEntries).
		runs, idleRuns := b.runs(5, 2), 0
		switch {
		case n == specEntries:
			idleRuns = b.runs(3, 2)
		case n > specEntries:
			runs = b.runs(3, 2)
		}
		err := scaleAt(b, n, runs, idleRuns, r)
		switch {
		case err != nil && n > specEntries:
			b.logf("scale: %d entries, a point of the curve only: %v", n, err)
			delete(res, n)
		case err != nil:
			return fmt.Errorf("%d entries: %w", n, err)
		}
	}
	return nil
}

type scaleResult struct {
	up, bare, ratio, down, rss, hwm, threads, idleCPU, wakeups []float64
}

// scaleRows are the rows of every size measured; the peak RSS and idle
// rows are of spec entries.
func scaleRows(res map[int]*scaleResult, spec int) []Row {
	rows := rowsBySize(scaleSizes, res,
		func(n int, r *scaleResult) Row {
			return newRow(fmt.Sprintf("%d respawn entries up (daemon)", n), "ms", r.up, "", 0).withFloor("the bare Go loop, same run", r.bare).on(chartEntries, "up (daemon)", float64(n))
		},
		func(n int, r *scaleResult) Row {
			return newRow(fmt.Sprintf("%d commands started by a bare Go loop", n), "ms", r.bare, "", 0).on(chartEntries, "up: bare Go loop", float64(n))
		},
		func(n int, r *scaleResult) Row {
			target, limit := targetIf(n == specEntries, "within 1.1x", 1.1)
			return newRow(fmt.Sprintf("ratio daemon/bare, %d entries", n), "x", r.ratio, target, limit)
		},
		func(n int, r *scaleResult) Row {
			return newRow(fmt.Sprintf("%d respawn entries down", n), "ms", r.down, "", 0).on(chartEntries, "down (daemon)", float64(n))
		},
		func(n int, r *scaleResult) Row {
			target, limit := targetIf(n == specEntries, "under 64 MiB", 64)
			return newRow(fmt.Sprintf("daemon RSS, %d children", n), "MiB", r.rss, target, limit)
		},
		func(n int, r *scaleResult) Row {
			return newRow(fmt.Sprintf("daemon threads, %d children", n), "threads", r.threads, "", 0)
		},
	)
	if r := res[spec]; r != nil {
		rows = append(rows, newRow(fmt.Sprintf("daemon peak RSS (VmHWM), %d children", spec), "MiB", r.hwm, "", 0))
		rows = append(rows,
			newRow(fmt.Sprintf("idle daemon CPU, %d children", spec), "%CPU", r.idleCPU, "under 0.1% of one CPU", 0.1),
			newRow(fmt.Sprintf("idle daemon wake-ups, %d children", spec), "/s", r.wakeups, "", 0))
	}
	return rows
}

// scaleAt runs one daemon with n entries through runs rounds, measuring
// idle CPU in the first idleRuns.
func scaleAt(b *bench, n, runs, idleRuns int, r *scaleResult) error {
	name := fmt.Sprintf("s%d", n)
	dir := filepath.Join(b.tmp, name)
	markers := filepath.Join(dir, "m")
	if err := os.MkdirAll(markers, 0o755); err != nil {
		return err
	}
	cmds := make([]string, n)
	var tab strings.Builder
	tab.WriteString(":::stoptimeout:5s\n")
	for i := range cmds {
		tag := fmt.Sprintf("t%04d", i)
		cmds[i] = fmt.Sprintf(": >%s/%s; exec sleep 1000000", markers, tag)
		fmt.Fprintf(&tab, "sc:%s:1:respawn:%s\n", tag, cmds[i])
	}
	d, err := b.startDaemon(name, tab.String())
	if err != nil {
		return err
	}
	defer d.stop()
	for run := 0; run < runs; run++ {
		b.logf("scale: %d entries, run %d of %d", n, run+1, runs)
		// Each phase leaves nothing running behind it, so neither runs
		// beside the other's processes; their order alternates.
		var bare float64
		var err error
		if run%2 == 0 {
			if bare, err = bareLoop(b, cmds, markers); err == nil {
				err = daemonPhase(b, d, n, markers, run < idleRuns, r)
			}
		} else {
			if err = daemonPhase(b, d, n, markers, run < idleRuns, r); err == nil {
				bare, err = bareLoop(b, cmds, markers)
			}
		}
		if err != nil {
			return err
		}
		r.bare = append(r.bare, bare)
		r.ratio = append(r.ratio, r.up[len(r.up)-1]/bare)
	}
	return d.stop()
}

// daemonPhase takes the group up, reads the daemon's memory (and idle
// CPU), and takes the group down again.
func daemonPhase(b *bench, d *daemon, n int, markers string, idle bool, r *scaleResult) error {
	up, err := daemonUp(d, n, markers)
	if err != nil {
		return err
	}
	mem, err := procStatus(d.pid, "VmRSS", "VmHWM")
	if err != nil {
		return err
	}
	threads, err := procThreads(d.pid)
	if err != nil {
		return err
	}
	if idle {
		cpu, wakeups, err := idleCPU(b, d)
		if err != nil {
			return err
		}
		r.idleCPU = append(r.idleCPU, cpu)
		r.wakeups = append(r.wakeups, wakeups)
	}
	down, err := daemonDown(d, n)
	if err != nil {
		return err
	}
	r.up = append(r.up, up)
	r.rss = append(r.rss, mem["VmRSS"])
	r.hwm = append(r.hwm, mem["VmHWM"])
	r.threads = append(r.threads, threads)
	r.down = append(r.down, down)
	return nil
}

// clearDir removes every file in dir.
func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// daemonUp tells the group to level 1 and times its n entries to running;
// it returns once the daemon reports the group DONE, with all running.
func daemonUp(d *daemon, n int, markers string) (float64, error) {
	if err := clearDir(markers); err != nil {
		return 0, err
	}
	w, err := watchDir(markers)
	if err != nil {
		return 0, err
	}
	defer w.close()
	t0 := monotonic()
	if err := d.tell("sc", "1"); err != nil {
		return 0, err
	}
	t1, err := w.waitCount(n, 2*time.Minute)
	if err != nil {
		return 0, fmt.Errorf("daemon up: %w: %s", err, d.logTail())
	}
	g, err := d.waitState("sc", "1", api.StateDone, time.Minute)
	if err != nil {
		return 0, err
	}
	for _, e := range g.Entries {
		if e.Pid == 0 {
			return 0, fmt.Errorf("daemon up: entry %s not running once the group is DONE", e.Tag)
		}
	}
	return ms(t1 - t0), nil
}

// daemonDown tells the group to level 99, where it has no entry, and
// times it until all its processes are gone.
func daemonDown(d *daemon, n int) (float64, error) {
	st, err := d.status()
	if err != nil {
		return 0, err
	}
	var pids []int
	for _, g := range st.Groups {
		if g.Group == "sc" {
			for _, e := range g.Entries {
				if e.Pid != 0 {
					pids = append(pids, e.Pid)
				}
			}
		}
	}
	if len(pids) != n {
		return 0, fmt.Errorf("daemon down: %d of %d entries running before the tell", len(pids), n)
	}
	gone, err := watchPids(pids)
	if err != nil {
		return 0, err
	}
	defer gone.close()
	cw, err := watchDir(d.dir)
	if err != nil {
		return 0, err
	}
	defer cw.close()
	t0 := monotonic()
	if err := d.tell("sc", "99"); err != nil {
		return 0, err
	}
	tExit, err := gone.wait(2 * time.Minute)
	if err != nil {
		return 0, fmt.Errorf("daemon down: %w", err)
	}
	tDone, err := cw.waitFile(d.dir, filepath.Base(d.clstat), func(data []byte) bool {
		return strings.Contains("\n"+string(data), "\nsc 99 DONE\n")
	}, 2*time.Minute)
	if err != nil {
		return 0, fmt.Errorf("daemon down: %w", err)
	}
	return ms(max(tExit, tDone) - t0), nil
}

// bareLoop starts the same commands as the daemon's entries from a plain
// loop and times them to running the same way; then kills them.
func bareLoop(b *bench, cmds []string, markers string) (float64, error) {
	if err := clearDir(markers); err != nil {
		return 0, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	env := append(cleanEnv(), benchEnv+"="+filepath.Join(b.tmp, "bare"))
	w, err := watchDir(markers)
	if err != nil {
		return 0, err
	}
	defer w.close()
	procs := make([]*os.Process, 0, len(cmds))
	defer func() {
		for _, p := range procs {
			syscall.Kill(-p.Pid, syscall.SIGKILL)
		}
		for _, p := range procs {
			p.Wait()
		}
	}()
	attr := &os.ProcAttr{Env: env, Files: []*os.File{devnull, devnull, devnull}, Sys: &syscall.SysProcAttr{Setpgid: true}}
	t0 := monotonic()
	for _, c := range cmds {
		p, err := os.StartProcess("/bin/sh", []string{"/bin/sh", "-c", c}, attr)
		if err != nil {
			return 0, err
		}
		procs = append(procs, p)
	}
	t1, err := w.waitCount(len(cmds), 2*time.Minute)
	if err != nil {
		return 0, fmt.Errorf("bare loop: %w", err)
	}
	return ms(t1 - t0), nil
}

// idleCPU measures the daemon's CPU share and wake-ups over the idle
// window while it supervises its running group.
func idleCPU(b *bench, d *daemon) (cpuPct, wakeupsPerSec float64, err error) {
	time.Sleep(time.Second) // the start-up burst settles (log, GC)
	c0, err := procCPU(d.pid)
	if err != nil {
		return 0, 0, err
	}
	s0, err := procWakeups(d.pid)
	if err != nil {
		return 0, 0, err
	}
	t0 := monotonic()
	time.Sleep(b.idle)
	c1, err := procCPU(d.pid)
	if err != nil {
		return 0, 0, err
	}
	s1, err := procWakeups(d.pid)
	if err != nil {
		return 0, 0, err
	}
	secs := float64(monotonic()-t0) / 1e9
	return (c1 - c0) / secs * 100, float64(s1-s0) / secs, nil
}
