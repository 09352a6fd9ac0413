package daemon

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A process group number remembered across a restart is ours only while
// a member still carries the entry's environment: a reused number is
// someone else's, never to be watched or signalled.
func TestGroupOf(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "10")
	cmd.SysProcAttr = setpgid()
	cmd.Env = append(os.Environ(), "CLINIT_GROUP=web", "CLINIT_TAG=httpd")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer cmd.Process.Kill()

	if !groupOf(pid, "web", "httpd") {
		t.Error("groupOf: a member with the entry's environment not recognized")
	}
	for _, c := range [][2]string{{"web", "http"}, {"we", "httpd"}, {"db", "httpd"}} {
		if groupOf(pid, c[0], c[1]) {
			t.Errorf("groupOf(%s, %s) holds for a process of web/httpd", c[0], c[1])
		}
	}
	if m, _, ok := groupMember(pid); !ok || m != pid {
		t.Errorf("groupMember = %d, %v; want %d", m, ok, pid)
	}

	f, err := openPidfd(pid)
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan struct{})
	go func() { awaitExit(f); close(gone) }()
	select {
	case <-gone:
		t.Fatal("awaitExit returned while the process runs")
	case <-time.After(50 * time.Millisecond):
	}
	cmd.Process.Kill()
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("awaitExit did not return after the process was killed")
	}
	// Exited (a zombie until waited for): no longer a live group.
	if groupOf(pid, "web", "httpd") || groupAlive(pid) {
		t.Error("an exited process group still counts as alive")
	}
	cmd.Wait()
}

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		line string
		want statFields
		ok   bool
	}{
		{"4242 (sleep) S 1 4242 4200 0 -1 4194560 100 0 0 0 2 1 0 0 20 0 1 0 123456 1048576 300 18446744073709551615\n", statFields{state: 'S', ppid: 1, pgid: 4242, sid: 4200, start: 123456}, true},
		// The command name may hold spaces and parentheses.
		{"7 (a) b (c)) Z 3 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0 0 0\n", statFields{state: 'Z', ppid: 3, pgid: 9, sid: 9, start: 77}, true},
		{"7 no parenthesis", statFields{}, false},
		{"7 (x) S 1 2", statFields{}, false},
		{"7 (x) S x 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0", statFields{}, false},
		{"7 (x) SS 3 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0", statFields{}, false},
	} {
		got, err := parseStat("/proc/7/stat", []byte(c.line))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v, ok %v", c.line, got, err, c.want, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "/proc/7/stat") {
			t.Errorf("parseStat(%q): %v does not name the file", c.line, err)
		}
	}
}

// procStart reads a live process: this test's own, and a child's, whose
// process group it leads.
func TestProcStart(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "10")
	cmd.SysProcAttr = setpgid()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	start, pgid, err := procStart(cmd.Process.Pid)
	if err != nil || pgid != cmd.Process.Pid || start == 0 {
		t.Errorf("procStart(child) = %d, %d, %v; want its own group and a start time", start, pgid, err)
	}
	self, _, err := procStart(os.Getpid())
	if err != nil || self == 0 || self > start {
		t.Errorf("procStart(self) = %d, %v; want a start time before the child's %d", self, err, start)
	}
	if _, _, err := procStart(1 << 30); err == nil || !strings.Contains(err.Error(), "/proc/1073741824/stat") {
		t.Errorf("procStart of no process: %v", err)
	}
}

// entryLeaders finds a run by its environment: the leader of its own
// process group, in the daemon's session, naming this daemon's state
// directory. Not another daemon's, not a descendant that left with
// setsid or made a group of its own, not one already known.
func TestEntryLeaders(t *testing.T) {
	dir := t.TempDir()
	start := func(keeper, tag string, sys *syscall.SysProcAttr, argv ...string) int {
		if argv == nil {
			argv = []string{"/bin/sleep", "10"}
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{"CLINIT_GROUP=g", "CLINIT_TAG=" + tag, "CLINIT_KEEPER=" + keeper, "CLINIT_NODE=n", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = sys
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Process.Kill(); cmd.Wait() })
		return cmd.Process.Pid
	}
	ours := start(dir, "ours", setpgid())
	start(dir+"x", "other", setpgid())
	start(dir, "left", &syscall.SysProcAttr{Setsid: true})
	known := start(dir, "known", setpgid())
	start(dir, "member", nil) // in this test's process group
	// A known run whose child makes a process group of its own.
	outer := start(dir, "outer", setpgid(), "/bin/sh", "-c", `perl -e 'setpgrp(0,0); exec "/bin/sleep", "10"' & wait`)
	inner := 0
	for deadline := time.Now().Add(10 * time.Second); inner == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		liveProcs(func(p procInfo) bool {
			if p.ppid == outer && p.pgid == p.pid {
				inner = p.pid
			}
			return inner == 0
		})
	}
	if inner == 0 {
		t.Fatal("the outer run's child made no process group of its own")
	}
	got := entryLeaders(dir, map[int]bool{known: true, outer: true})
	if len(got) != 1 || got[0].pid != ours || got[0].group != "g" || got[0].tag != "ours" || got[0].start == 0 {
		t.Fatalf("entryLeaders = %+v, want only pid %d, g/ours (not %d, the child of a run)", got, ours, inner)
	}
	if got := entryLeaders("", nil); got != nil {
		t.Errorf("entryLeaders with no directory = %+v", got)
	}
}
