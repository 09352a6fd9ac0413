package t

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A child writing at full speed must neither grow the daemon's memory nor
// slow down other groups; its lines are cut at 4 KiB and, past a burst,
// rate limited (SPEC 3: output captured into the log).

// vmRSS returns a process's resident set size in KiB (0 if unknown).
func vmRSS(pid int) int {
	f := strings.Fields(procStatus(pid)["VmRSS"])
	if len(f) == 0 {
		return 0
	}
	kib, _ := strconv.Atoi(f[0])
	return kib
}

// Capture limits of daemon/spawn.go, as the README states them.
const (
	lineMax    = 4096
	burstLines = 1000
	linesPerS  = 100
)

func TestOutputFlood(t *testing.T) {
	// Not parallel: the flood takes both of CI's cores, and this case
	// measures what it does to the daemon alone.
	dir := newCaseDir(t)
	logPath := filepath.Join(dir, "daemon.log")
	writeFile(t, filepath.Join(dir, "cltab"), expand(dir, `
flood:short:1:respawn:exec yes
flood:long:1:respawn:exec yes "$(head -c 6000 /dev/zero | tr '\0' x)"
flood:endless:1:respawn:exec tr '\0' z < /dev/zero
work:a:1:respawn:echo $$ >> {dir}/a; exec sleep 1000
work:b:2:respawn:echo $$ >> {dir}/b; exec sleep 1000
work:check:12:wait:true
`))
	d := launch(t, dir, "--log", logPath)
	d.waitReady()
	pid := d.cmd.Process.Pid
	idle := vmRSS(pid)

	d.tellDone("work", "1")
	d.tellDone("flood", "1")
	began := time.Now()

	// Sample the daemon's memory all along the flood.
	var mu sync.Mutex
	peak := 0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			mu.Lock()
			peak = max(peak, vmRSS(pid))
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	// Meanwhile the other group moves between levels and respawns.
	var slowest time.Duration
	cycles := 0
	for cycles < 5 || time.Since(began) < 4*time.Second {
		t0 := time.Now()
		// The run of a before this cycle: the one started at level 1 is
		// another, and DONE may come before it has written its pid.
		before := readPid(t, d.path("a"), 0)
		d.tellDone("work", "2")
		d.tellDone("work", "1")
		a := readPid(t, d.path("a"), before)
		if err := killPid(a); err != nil {
			t.Fatal(err)
		}
		readPid(t, d.path("a"), a)
		slowest = max(slowest, time.Since(t0))
		cycles++
	}
	flooded := time.Since(began)
	for _, tag := range []string{"short", "long", "endless"} {
		if e := d.entry("flood", tag); e.Pid == 0 || e.Restarts != 0 {
			t.Errorf("flood entry %s is not running its first run: %v", tag, e)
		}
	}
	d.tellDone("flood", "99")
	close(stop)
	<-sampled

	t.Logf("flood of %v: daemon RSS %d KiB idle, peak %d KiB; %d cycles of the other group (two tells and a respawn each), the slowest %v",
		flooded.Round(time.Millisecond), idle, peak, cycles, slowest.Round(time.Millisecond))
	if peak > 100<<10 {
		t.Errorf("daemon RSS peaked at %d KiB during the flood, over 100 MiB", peak)
	}
	// A hang guard, not a speed target: two transitions and a respawn.
	if slowest > 5*time.Second {
		t.Errorf("the other group's slowest cycle took %v during the flood", slowest)
	}

	// The log: every line bounded, flood lines cut and rate limited.
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	longest, cut, dropped, droppedLines := 0, 0, 0, 0
	for _, l := range strings.Split(string(data), "\n") {
		longest = max(longest, len(l))
		for _, tag := range []string{"short", "long", "endless"} {
			if !strings.Contains(l, `"tag": "`+tag+`"`) {
				continue
			}
			switch {
			case strings.Contains(l, "output lines dropped"):
				dropped++
				if _, n, ok := strings.Cut(l, `"lines": `); ok {
					k, _ := strconv.Atoi(strings.TrimRight(n, "}"))
					droppedLines += k
				}
			case strings.Contains(l, "\tinfo\t"+strings.Repeat("x", 100)) || strings.Contains(l, "\tinfo\t"+strings.Repeat("z", 100)):
				counts[tag]++
				if strings.Contains(l, "[line cut]") {
					cut++
				}
			case strings.Contains(l, "\tinfo\ty\t"):
				counts[tag]++
			}
		}
	}
	t.Logf("log: %d bytes, longest line %d bytes; lines logged: %v; %d cut; %d lines dropped, in %d reports", len(data), longest, counts, cut, droppedLines, dropped)
	if longest > lineMax+512 {
		t.Errorf("a log line of %d bytes: lines must be cut at %d bytes", longest, lineMax)
	}
	if counts["short"] < burstLines || counts["long"] < burstLines || counts["endless"] != 1 {
		t.Errorf("lines logged %v: want at least a burst (%d) of short and long lines, and one cut line of the endless one", counts, burstLines)
	}
	if cut < burstLines {
		t.Errorf("%d cut lines, want at least %d: every long line is over %d bytes", cut, burstLines, lineMax)
	}
	// Whole seconds, rounded up, and one burst: what the limit allows.
	secs := int(time.Since(began)/time.Second) + 2
	allowed := burstLines + linesPerS*secs
	for _, tag := range []string{"short", "long"} {
		if counts[tag] > allowed {
			t.Errorf("%s: %d lines logged in %v, over the limit of %d", tag, counts[tag], time.Since(began).Round(time.Millisecond), allowed)
		}
	}
	// yes writes far more than a burst a second: most of it is dropped,
	// and counted, once a second at most for each of the two.
	if droppedLines < 10*burstLines || dropped > 2*secs {
		t.Errorf("%d lines reported dropped in %d reports: want over %d, in at most %d reports", droppedLines, dropped, 10*burstLines, 2*secs)
	}
	if n := len(d.log.String()); n > 64<<20 {
		t.Errorf("the daemon wrote %d bytes to stderr", n)
	}
}
