package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/clinit/clinit/api"
)

// benchTell: `clinit G L` to the first instruction of a `once` entry
// (SPEC 8: median under 3 ms, for the CLI).
//
// Each run starts its clock just before the tell request is sent and
// stops it at the helper's own clock reading (stamp.go): included are the
// request over the socket, the daemon's work until the fork (it persists
// the told level before it answers, but starts the entry first), the
// fork and exec of the helper (a command of plain words starts without a
// shell: daemon/direct.go) and the helper's start-up. Four ways,
// interleaved in every run:
//
//   - through the Go client (package client), in the bench's process:
//     the daemon's share without a client process;
//   - through the clinit binary as client (`clinit -s SOCK G L`), as
//     operators and scripts run it: adds the client process's own
//     start-up; the figure with the target;
//   - the floor: the bench itself starting the helper the same way
//     (fork, exec, helper) without any daemon: what no daemon can go
//     below on this machine, the Go client's floor; and, beside it for
//     comparison, the same through `/bin/sh -c` (what the shell's start
//     would add to each start);
//   - a Go program's start: the Go helper (bench/stamp, static, stripped)
//     started the way the CLI is, to its clock reading at package
//     initialisation. The CLI's floor is this plus the floor above, in
//     the same run: a client process with nothing to initialise, talking
//     to a daemon that takes no time.
//
// Between runs the group goes to level 2, where it has no entry, and the
// bench waits for DONE there: the once entry runs anew on the next tell.
func benchTell(b *bench) error {
	d, err := b.startDaemon("tell", `:::stoptimeout:2s
lat:once:1:once:exec {stamp} {dir}/once.stamp
`)
	if err != nil {
		return err
	}
	defer d.stop()
	file := filepath.Join(d.dir, "once.stamp")
	runs := b.runs(30, 5)
	var viaClient, viaCLI, floor, goStart, cliFloor, viaSh []float64
	defer func() {
		b.add(newRow("tell -> once first instruction (Go client)", "ms", viaClient, "", 0).withFloor(floorExec, floor),
			newRow("tell -> once first instruction (clinit CLI)", "ms", viaCLI, "median under 3 ms", 3).withFloor(floorExec+" + "+floorGo, cliFloor),
			newRow("floor: "+floorExec, "ms", floor, "", 0),
			newRow("floor: "+floorGo, "ms", goStart, "", 0),
			newRow("for comparison: "+floorSh, "ms", viaSh, "", 0))
	}()

	// One unmeasured run first: the daemon's first tell opens its journal
	// and makes its state directories.
	if _, err := tellRun(d, file, func() error { return d.tell("lat", "1") }); err != nil {
		return err
	}
	for i := 0; i < runs; i++ {
		v, err := tellRun(d, file, func() error { return d.tell("lat", "1") })
		if err != nil {
			return err
		}
		viaClient = append(viaClient, v)

		v, err = tellRun(d, file, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, b.bin, "-s", d.sock, "lat", "1").CombinedOutput()
			if err != nil {
				return fmt.Errorf("clinit -s %s lat 1: %v: %s", d.sock, err, out)
			}
			return nil
		})
		if err != nil {
			return err
		}
		viaCLI = append(viaCLI, v)

		v, err = floorRun(b, filepath.Join(d.dir, "floor.stamp"), false)
		if err != nil {
			return err
		}
		floor = append(floor, v)
		sh, err := floorRun(b, filepath.Join(d.dir, "floor.stamp"), true)
		if err != nil {
			return err
		}
		viaSh = append(viaSh, sh)

		g, err := goStartRun(b, filepath.Join(d.dir, "go.stamp"))
		if err != nil {
			return err
		}
		goStart = append(goStart, g)
		cliFloor = append(cliFloor, v+g)
	}
	return d.stop()
}

// The floors of the latency figures, and the shell's start beside them.
const (
	floorExec = "exec stamp, no daemon"
	floorGo   = "a Go program's start (exec stamp-go)"
	floorSh   = "sh -c 'exec stamp', no daemon"
)

// goStartRun starts the Go helper the way benchTell starts the CLI, and
// returns the time to its clock reading.
func goStartRun(b *bench, file string) (float64, error) {
	if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.stampGo, file)
	cmd.Env = append(cleanEnv(), benchEnv+"="+filepath.Join(b.tmp, "floor"))
	t0 := monotonic()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s %s: %v: %s", b.stampGo, file, err, out)
	}
	st, err := readStamp(file)
	if err != nil {
		return 0, err
	}
	return ms(st.ns - t0), nil
}

// tellRun is one measured tell: tell sends it, the helper's reading ends
// it. Then the group is taken to level 2 and the bench waits for it to
// settle there.
func tellRun(d *daemon, file string, tell func() error) (float64, error) {
	if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	w, err := watchDir(filepath.Dir(file))
	if err != nil {
		return 0, err
	}
	defer w.close()
	t0 := monotonic()
	if err := tell(); err != nil {
		return 0, err
	}
	st, err := waitStamp(w, file, 10*time.Second)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, d.logTail())
	}
	if err := d.tell("lat", "2"); err != nil {
		return 0, err
	}
	if _, err := d.waitState("lat", "2", api.StateDone, 30*time.Second); err != nil {
		return 0, err
	}
	return ms(st.ns - t0), nil
}

// floorRun starts the once entry's command the cheapest way a Go program
// can, as the daemon does (or, with shell, through /bin/sh -c), and
// waits for it.
func floorRun(b *bench, file string, shell bool) (float64, error) {
	if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	argv := []string{b.stamp, file}
	if shell {
		argv = []string{"/bin/sh", "-c", "exec " + b.stamp + " " + file}
	}
	t0 := monotonic()
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Env:   append(cleanEnv(), benchEnv+"="+filepath.Join(b.tmp, "floor")),
		Files: []*os.File{devnull, devnull, devnull},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return 0, err
	}
	if _, err := p.Wait(); err != nil {
		return 0, err
	}
	st, err := readStamp(file)
	if err != nil {
		return 0, err
	}
	return ms(st.ns - t0), nil
}

// benchRespawn: a `respawn` process killed to its replacement running
// (SPEC 8: median under 2 ms).
//
// The entry is the helper in hold mode: it writes its pid and clock
// reading and stays. Each run reads the current pid, starts the clock
// just before SIGKILL, and stops it at the replacement's reading: the
// kernel's kill and exit, the daemon learning of the exit (its Wait
// goroutine), the respawn decision, the fork and exec of the helper, and
// the helper's start-up. Its floor, timed after each run, is benchTell's:
// the bench starting the helper itself.
//
// The cltab sets :::respawnlimit: high: runs come faster than one a
// second, and the default limit (5 rapid restarts) would pause the entry
// for 60 s; the limit changes nothing else on this path.
func benchRespawn(b *bench) error {
	d, err := b.startDaemon("respawn", `:::stoptimeout:2s
:::respawnlimit:1000000
rsp:r:1:respawn:exec {stamp} {dir}/r.stamp hold
`)
	if err != nil {
		return err
	}
	defer d.stop()
	file := filepath.Join(d.dir, "r.stamp")
	runs := b.runs(30, 5)
	var samples, floor []float64
	defer func() {
		b.add(newRow("respawn: SIGKILL -> replacement's first instruction", "ms", samples, "median under 2 ms", 2).withFloor(floorExec, floor))
	}()
	w, err := watchDir(d.dir)
	if err != nil {
		return err
	}
	defer w.close()
	if err := d.tell("rsp", "1"); err != nil {
		return err
	}
	cur, err := waitStamp(w, file, 10*time.Second)
	if err != nil {
		return err
	}
	for i := 0; i < runs; i++ {
		// Let the daemon finish with the previous start: a status request
		// is answered by its loop only once it is done with the events
		// before it (persisting state and clstat included).
		if _, err := d.status(); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
		if err := os.Remove(file); err != nil {
			return err
		}
		t0 := monotonic()
		if err := syscall.Kill(cur.pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %d: %w", cur.pid, err)
		}
		next, err := waitStamp(w, file, 10*time.Second)
		if err != nil {
			return fmt.Errorf("no replacement: %v: %s", err, d.logTail())
		}
		if next.pid == cur.pid {
			return fmt.Errorf("the replacement has the pid %d of the killed process", cur.pid)
		}
		samples = append(samples, ms(next.ns-t0))
		cur = next
		f, err := floorRun(b, filepath.Join(d.dir, "floor.stamp"), false)
		if err != nil {
			return err
		}
		floor = append(floor, f)
	}
	return d.stop()
}
