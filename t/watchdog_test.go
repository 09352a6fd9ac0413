package t

import (
	"os/exec"
	"testing"
	"time"
)

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
	d.tell("g", "1")
	d.waitState("g", "1", "DONE")

	// Without WatchdogSec=, nothing is sent.
	quiet := startDaemon(t, "g:a:1:respawn:exec sleep 1000\n")
	time.Sleep(time.Second)
	if n := quiet.kd.Watchdogs(); n != 0 {
		t.Fatalf("%d WATCHDOG=1 messages without a watchdog", n)
	}
}
