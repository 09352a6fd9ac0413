package t

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/client"
)

// Load: 1,000 entries in one group, and 200 groups of 5. Start, stop,
// reread and -k complete, nothing is left behind, and the daemon's memory
// stays flat across rounds. The cases are not parallel: each has 1,000
// processes of its own, and they measure the daemon alone.

// loadHang bounds each bulk step: 1,000 processes started or stopped on
// two loaded cores under the race detector. A hang guard only.
const loadHang = 90 * time.Second

// jsonStatus asks the daemon for its status through the client library:
// cheaper than a clinit process for the many looks of these cases.
func (d *daemon) jsonStatus() api.Status {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	st, err := client.New(d.sock).Status(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	return st
}

// waitAll waits until cond holds for the status, looking every 100 ms,
// and returns how long that took.
func (d *daemon) waitAll(what string, cond func(api.Status) (bool, string)) time.Duration {
	d.t.Helper()
	began := time.Now()
	var why string
	for {
		var ok bool
		if ok, why = cond(d.jsonStatus()); ok {
			return time.Since(began)
		}
		if time.Since(began) > loadHang {
			d.t.Fatalf("%s: not after %v: %s", what, loadHang, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// levelReached holds when every group named is DONE at level with each of
// its entries running (running) or none (!running).
func levelReached(groups map[string]bool, level string, running bool) func(api.Status) (bool, string) {
	return func(st api.Status) (bool, string) {
		seen := 0
		for _, g := range st.Groups {
			if !groups[g.Group] {
				continue
			}
			seen++
			if g.Level != level || g.State != api.StateDone {
				return false, fmt.Sprintf("group %s is %s %s", g.Group, g.Level, g.State)
			}
			for _, e := range g.Entries {
				if (e.Mode == "respawn" || !running) && (e.Pid != 0) != running {
					return false, fmt.Sprintf("%s/%s has pid %d", g.Group, e.Tag, e.Pid)
				}
			}
		}
		return seen == len(groups), fmt.Sprintf("%d of %d groups told", seen, len(groups))
	}
}

// pids returns tag -> pid of the entries of the groups named.
func pids(st api.Status, groups map[string]bool) map[string]int {
	m := map[string]int{}
	for _, g := range st.Groups {
		if groups[g.Group] {
			for _, e := range g.Entries {
				m[e.Tag] = e.Pid
			}
		}
	}
	return m
}

// cmdline returns a process's command line, spaces between arguments.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// tellAll tells every group named to go to level, 20 clients at a time.
func (d *daemon) tellAll(groups map[string]bool, level string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loadHang)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(groups))
	sem := make(chan struct{}, 20)
	for g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := client.New(d.sock).Tell(ctx, g, level); err != nil {
				errs <- fmt.Errorf("tell %s %s: %w", g, level, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		d.t.Fatal(err)
	}
}

// kill stops the daemon with -k, checks it, and returns how long it took.
func (d *daemon) killAll() time.Duration {
	d.t.Helper()
	began := time.Now()
	if out, errOut, code := d.clinit("-k"); code != 0 {
		d.t.Fatalf("clinit -k: status %d, %q %q", code, out, errOut)
	}
	took := time.Since(began)
	if c := d.waitExit(); c != 0 {
		d.t.Fatalf("daemon exited %d after -k", c)
	}
	var left []string
	if !poll(hang, func() bool { left = d.leftovers(); return len(left) == 0 }) {
		d.t.Fatalf("%d processes left after -k, e.g. %v", len(left), left[:min(5, len(left))])
	}
	return took
}

func TestLoadOneGroup(t *testing.T) {
	const n = 1000
	cltab := func(changed bool) string {
		var b strings.Builder
		b.WriteString(":::stoptimeout:20\n")
		for i := range n {
			secs := 1000
			if changed && i%2 == 0 {
				secs = 2000
			}
			fmt.Fprintf(&b, "big:s%d:1:respawn:exec sleep %d\n", i, secs)
		}
		return b.String()
	}
	// Unwatched: only the explicit reread applies the new cltab.
	d := startDaemonUnwatched(t, cltab(false))
	pid := d.cmd.Process.Pid
	big := map[string]bool{"big": true}

	began := time.Now()
	d.tell("big", "1")
	told := time.Since(began)
	d.waitAll("1,000 entries running", levelReached(big, "1", true))
	t.Logf("1,000 respawn entries running %v after the tell (which answered in %v); daemon RSS %d KiB, %s threads with 1,000 children",
		time.Since(began).Round(time.Millisecond), told.Round(time.Millisecond), vmRSS(pid), procStatus(pid)["Threads"])

	// Rounds of stop and start: the daemon's memory stays flat.
	var rss []int
	var stops, starts time.Duration
	for range 10 {
		began := time.Now()
		d.tell("big", "2")
		d.waitAll("1,000 entries stopped", levelReached(big, "2", false))
		stops += time.Since(began)
		began = time.Now()
		d.tell("big", "1")
		d.waitAll("1,000 entries running", levelReached(big, "1", true))
		starts += time.Since(began)
		rss = append(rss, vmRSS(pid))
	}
	t.Logf("10 rounds: stop %v, start %v on average; daemon RSS (KiB) after each round: %v",
		(stops / 10).Round(time.Millisecond), (starts / 10).Round(time.Millisecond), rss)
	if last, second := rss[len(rss)-1], rss[1]; last > second+second/2+8<<10 {
		t.Errorf("daemon RSS grew over the rounds: %d KiB after the second, %d KiB after the last", second, last)
	}

	// Reread with half of the commands changed: those restart, the
	// others run on untouched.
	before := pids(d.jsonStatus(), big)
	d.writeCltab(cltab(true))
	d.reread()
	took := d.waitAll("the changed half restarted", func(st api.Status) (bool, string) {
		if ok, why := levelReached(big, "1", true)(st); !ok {
			return false, why
		}
		for tag, p := range pids(st, big) {
			var i int
			fmt.Sscanf(tag, "s%d", &i)
			if changed := i%2 == 0; changed == (p == before[tag]) {
				return false, fmt.Sprintf("%s: pid %d, was %d", tag, p, before[tag])
			}
		}
		return true, ""
	})
	t.Logf("reread changing 500 of 1,000 commands: done in %v", took.Round(time.Millisecond))
	for tag, p := range pids(d.jsonStatus(), big) {
		var i int
		fmt.Sscanf(tag, "s%d", &i)
		want := "sleep 1000"
		if i%2 == 0 {
			want = "sleep 2000"
		}
		if got := cmdline(p); got != want {
			t.Fatalf("%s: pid %d runs %q, want %q", tag, p, got, want)
		}
	}
	t.Logf("clinit -k with 1,000 children: %v", d.killAll().Round(time.Millisecond))
}

func TestLoadManyGroups(t *testing.T) {
	const groups = 200
	cltab := func(changed bool) string {
		var b strings.Builder
		b.WriteString(":::stoptimeout:20\n")
		for i := range groups {
			cmd := "exec sleep 1000"
			if changed && i%2 == 0 {
				cmd = "exec sleep 2000"
			}
			fmt.Fprintf(&b, "g%d:g%dprep:1:wait:true\n", i, i)
			for j := range 3 {
				fmt.Fprintf(&b, "g%d:g%dr%d:1:respawn:%s\n", i, i, j, cmd)
			}
			fmt.Fprintf(&b, "g%d:g%donce:1:once:exec sleep 1000\n", i, i)
		}
		return b.String()
	}
	// Unwatched: only the explicit reread applies the new cltab.
	d := startDaemonUnwatched(t, cltab(false))
	pid := d.cmd.Process.Pid
	all := map[string]bool{}
	for i := range groups {
		all[fmt.Sprintf("g%d", i)] = true
	}
	onceRunning := func(st api.Status) (bool, string) {
		for _, g := range st.Groups {
			if e, ok := jGroup(g).entry(g.Group + "once"); ok && e.Pid == 0 {
				return false, g.Group + ": once entry not running"
			}
		}
		return true, ""
	}
	both := func(a, b func(api.Status) (bool, string)) func(api.Status) (bool, string) {
		return func(st api.Status) (bool, string) {
			if ok, why := a(st); !ok {
				return false, why
			}
			return b(st)
		}
	}

	// Fewer rounds than the one big group: each tell is answered only
	// once the state is on disk, and 200 of them take a while.
	const rounds = 3
	var rss []int
	var stops, starts time.Duration
	for round := range rounds {
		began := time.Now()
		d.tellAll(all, "1")
		d.waitAll("200 groups at level 1", both(levelReached(all, "1", true), onceRunning))
		starts += time.Since(began)
		if round == 0 {
			t.Logf("200 groups of 5 at level 1 in %v; daemon RSS %d KiB with 800 children", time.Since(began).Round(time.Millisecond), vmRSS(pid))
		}
		began = time.Now()
		d.tellAll(all, "99")
		d.waitAll("200 groups stopped", levelReached(all, "99", false))
		stops += time.Since(began)
		rss = append(rss, vmRSS(pid))
	}
	t.Logf("%d rounds: start %v, stop %v on average; daemon RSS (KiB) after each round: %v",
		rounds, (starts / rounds).Round(time.Millisecond), (stops / rounds).Round(time.Millisecond), rss)
	if last, second := rss[len(rss)-1], rss[1]; last > second+second/2+8<<10 {
		t.Errorf("daemon RSS grew over the rounds: %d KiB after the second, %d KiB after the last", second, last)
	}

	// Reread with the respawn commands of half of the groups changed.
	d.tellAll(all, "1")
	d.waitAll("200 groups at level 1", both(levelReached(all, "1", true), onceRunning))
	before := pids(d.jsonStatus(), all)
	d.writeCltab(cltab(true))
	out := d.reread()
	for i := range groups {
		if changed := strings.Contains(out, fmt.Sprintf(" g%d,", i)) || strings.HasSuffix(strings.TrimSpace(out), fmt.Sprintf(" g%d", i)); changed != (i%2 == 0) {
			t.Fatalf("reread answered %q: group g%d changed %v", out, i, changed)
		}
	}
	took := d.waitAll("the changed groups restarted their respawn entries", func(st api.Status) (bool, string) {
		if ok, why := levelReached(all, "1", true)(st); !ok {
			return false, why
		}
		for tag, p := range pids(st, all) {
			var i, j int
			if k, _ := fmt.Sscanf(tag, "g%dr%d", &i, &j); k != 2 {
				if p != before[tag] {
					return false, fmt.Sprintf("%s: pid %d, was %d", tag, p, before[tag])
				}
				continue
			}
			if changed := i%2 == 0; changed == (p == before[tag]) {
				return false, fmt.Sprintf("%s: pid %d, was %d", tag, p, before[tag])
			}
		}
		return true, ""
	})
	t.Logf("reread changing 300 entries in 100 of 200 groups: done in %v", took.Round(time.Millisecond))
	t.Logf("clinit -k with 800 children in 200 groups: %v", d.killAll().Round(time.Millisecond))
}
