package t

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func monotonicUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// lastStatus is the newest STATUS= the daemon sent.
func (d *daemon) lastStatus() string {
	st := ""
	for _, n := range d.notifications() {
		if s, ok := strings.CutPrefix(n, "STATUS="); ok {
			st = s
		}
	}
	return st
}

// Under systemd (NOTIFY_SOCKET) the daemon keeps a one-line STATUS=
// current, and a reread is RELOADING=1 (with MONOTONIC_USEC) and then
// READY=1 again.
func TestNotifyStatusAndReload(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "a:x:1:once:exec sleep 1000\ndb:mount:1:wait:exit 32\n")
	eventually(t, hang, func() bool { return d.lastStatus() == "no group told" }, "STATUS=no group told; sent %q", d.notifications())
	d.tell("a", "1")
	d.tell("db", "1")
	d.waitState("db", "1", "FAILED")
	eventually(t, hang, func() bool { return d.lastStatus() == "2 groups, 1 FAILED (db)" },
		"STATUS=2 groups, 1 FAILED (db); sent %q", d.notifications())

	before := len(d.notifications())
	t0 := monotonicUsec(t)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var reloading, ready int
	eventually(t, hang, func() bool {
		reloading, ready = -1, -1
		for i, n := range d.notifications()[before:] {
			if strings.HasPrefix(n, "RELOADING=1\n") && reloading < 0 {
				reloading = i
			}
			if n == "READY=1" && reloading >= 0 {
				ready = i
			}
		}
		return ready > reloading && reloading >= 0
	}, "RELOADING=1 then READY=1 after SIGHUP; sent %q", d.notifications()[before:])
	t1 := monotonicUsec(t)
	msg := d.notifications()[before+reloading]
	usec, err := strconv.ParseInt(strings.TrimPrefix(msg, "RELOADING=1\nMONOTONIC_USEC="), 10, 64)
	if err != nil || usec < t0 || usec > t1 {
		t.Errorf("%q: MONOTONIC_USEC not a CLOCK_MONOTONIC time between %d and %d", msg, t0, t1)
	}

	d.tell("db", "9")
	eventually(t, hang, func() bool { return d.lastStatus() == "2 groups" }, "STATUS=2 groups; sent %q", d.notifications())
}

// In a cluster the line says how many HA groups the node holds, whether
// it has quorum, and who leads.
func TestNotifyStatusCluster(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, haCltab)
	if out, errOut, code := nodes[0].clinit("--ha", "web", "start"); code != 0 {
		t.Fatalf("--ha: %s %s", out, errOut)
	}
	o := waitOwner(t, nodes, "start")
	leader := ""
	for _, nd := range nodes {
		held := "0"
		if nd.name == o {
			held = "1"
		}
		var st string
		eventually(t, hang, func() bool {
			st = nd.lastStatus()
			return strings.Contains(st, "; HA: "+held+" held here, quorum, leader n")
		}, "%s: STATUS with %s held here, quorum and a leader; sent %q", nd.name, held, nd.notifications())
		l := st[strings.LastIndex(st, "leader ")+len("leader "):]
		if leader != "" && l != leader {
			t.Errorf("%s says the leader is %s, another node %s", nd.name, l, leader)
		}
		leader = l
	}
	if byName(nodes, leader) == nil {
		t.Errorf("leader %q is none of the nodes", leader)
	}
}

// Under systemd's WatchdogSec= the daemon pets the watchdog while its
// engine loop answers.
func TestSystemdWatchdog(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	writeFile(t, dir+"/cltab", "g:a:1:respawn:exec sleep 1000\n")
	d := launchWith(t, dir, func(c *exec.Cmd) { c.Env = append(c.Env, "WATCHDOG_USEC=300000") })
	d.waitReady()
	start := time.Now()
	eventually(t, hang, func() bool { return d.kd.Watchdogs() >= 5 }, "5 WATCHDOG=1 messages")
	// Every third of the 300 ms interval: 5 take about 0.5 s.
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("5 watchdog messages took %v", took)
	}
	d.tellDone("g", "1")

	// Without WatchdogSec=, nothing is sent.
	quiet := startDaemon(t, "g:a:1:respawn:exec sleep 1000\n")
	time.Sleep(time.Second)
	if n := quiet.kd.Watchdogs(); n != 0 {
		t.Fatalf("%d WATCHDOG=1 messages without a watchdog", n)
	}
}
