package daemon

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReplayJournal(t *testing.T) {
	st := savedState{Version: stateVersion, Groups: []savedGroup{{
		Group: "g", Told: true, Level: "1",
		Procs: []savedProc{{Tag: "a", Run: 3, Pid: 10}, {Tag: "b", Run: 1}},
	}}}
	var journal []byte
	for _, jl := range []journalLine{
		{Group: "g", Proc: savedProc{Tag: "a", Run: 2, Pid: 9}},  // older than the snapshot: ignored
		{Group: "g", Proc: savedProc{Tag: "b", Run: 2, Pid: 20}}, // newer: taken
		{Group: "h", Proc: savedProc{Tag: "c", Run: 1, Pid: 30}}, // a group the snapshot lacks
	} {
		line, _ := json.Marshal(jl)
		journal = append(append(journal, line...), '\n')
	}
	journal = append(journal, `{"group":"g","proc":{"tag":"a","ru`...) // cut by the crash
	replay(&st, journal)

	pids := map[string]int{}
	for _, g := range st.Groups {
		for _, p := range g.Procs {
			pids[g.Group+"/"+p.Tag] = p.Pid
		}
	}
	want := map[string]int{"g/a": 10, "g/b": 20, "h/c": 30}
	if len(pids) != len(want) {
		t.Fatalf("got %v, want %v", pids, want)
	}
	for k, v := range want {
		if pids[k] != v {
			t.Errorf("%s: pid %d, want %d", k, pids[k], v)
		}
	}
}

// A command name may hold spaces and parentheses: the fields after it
// must still be read right.
func TestProcStartOddName(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "a) b (c")
	if err := os.Symlink("/bin/sleep", odd); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	start, pgid, err := procStart(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	self, selfPgid, err := procStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if pgid != selfPgid {
		t.Errorf("pgid %d, want ours %d", pgid, selfPgid)
	}
	if start < self {
		t.Errorf("child start time %d before ours %d", start, self)
	}
	if !groupAlive(selfPgid) {
		t.Error("our own process group is not alive")
	}
}

func TestWatchPid(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	start, _, err := procStart(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := watchPid(pid, start+1, func() {}); err == nil {
		t.Error("watchPid accepted a pid whose start time differs")
	}
	// Not its own process group leader: not one of our children.
	if err := watchPid(pid, start, func() {}); err == nil {
		t.Error("watchPid accepted a process that leads no process group")
	}
	lead := exec.Command("/bin/sleep", "10")
	lead.SysProcAttr = setpgid()
	if err := lead.Start(); err != nil {
		t.Fatal(err)
	}
	start, _, _ = procStart(lead.Process.Pid)
	gone := make(chan struct{})
	if err := watchPid(lead.Process.Pid, start, func() { close(gone) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gone:
		t.Fatal("exit reported while the process runs")
	case <-time.After(50 * time.Millisecond):
	}
	lead.Process.Kill()
	lead.Wait()
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("exit not reported")
	}
	cmd.Process.Kill()
}

func setpgid() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// The journal's own encoder writes what encoding/json would, for every
// field set and unset, and strings that need escaping.
func TestJournalLineJSON(t *testing.T) {
	started := time.Date(2026, 12, 1, 20, 30, 1, 123456789, time.FixedZone("x", 3600))
	for _, jl := range []journalLine{
		{},
		{Group: "g", Proc: savedProc{Tag: "a", Mode: "respawn", Hash: "0123abcd", Run: 1}},
		{Group: "web", Proc: savedProc{Tag: "t", Mode: "once", Hash: "ff", Pid: 4242, Start: 123456789012, Run: 7, Epoch: 3,
			Started: started, Restarts: 2, Exited: true, Exit: 143, Retiring: true, Fifo: "/run/clinit/s.out/t.7",
			Residues: []int{5, 6, 7}, Linger: true}},
		{Group: "g", Proc: savedProc{Tag: "a", Exit: -1, Residues: []int{}, Started: time.Unix(0, 0).UTC()}},
		{Group: `q"uote\back<&>`, Proc: savedProc{Tag: "tab\there", Fifo: "é/\x01"}},
	} {
		want, err := json.Marshal(jl)
		if err != nil {
			t.Fatal(err)
		}
		if got := jl.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON:\n%s\njson.Marshal:\n%s", got, want)
		}
	}
}

// A wait or test entry's exit status is read where this daemon's
// wrapper writes it, beside the FIFOs, or, for a run an older daemon
// started, in the state directory's exit/.
func TestReadExitWhereItWasWritten(t *testing.T) {
	eng := newTestEngine(t, "g:chk:1:test:true\n", func(d string, c *Config) {
		c.StateDir, c.RunDir = filepath.Join(d, "state"), filepath.Join(d, "run")
	})
	p := eng.groups["g"].byTag["chk"]
	if got := eng.readExit(p); got != -1 {
		t.Errorf("no exit file: %d, want -1", got)
	}
	for _, f := range []struct{ path, code string }{{eng.oldExitFile("chk"), "3"}, {eng.exitFile("chk"), "5"}} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, []byte(f.code+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := strconv.Itoa(eng.readExit(p)); got != f.code {
			t.Errorf("with %s: %s, want %s", f.path, got, f.code)
		}
	}
	if !strings.HasPrefix(eng.exitFile("chk"), eng.cfg.RunDir+"/") {
		t.Errorf("exit file %s is not in the runtime directory %s", eng.exitFile("chk"), eng.cfg.RunDir)
	}
}

// Restore replays the journal files of the runtime directory and the one
// an older daemon kept in the state directory; the first durable
// snapshot after it removes them all.
func TestRestoreReadsEveryJournal(t *testing.T) {
	eng := newTestEngine(t, "g:a:1:once:true\ng:b:1:once:true\n", func(d string, c *Config) {
		c.StateDir, c.RunDir = filepath.Join(d, "state"), filepath.Join(d, "run")
		for _, dir := range []string{c.StateDir, c.RunDir} {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
	})
	g := eng.groups["g"]
	files := map[string]journalLine{
		filepath.Join(eng.cfg.StateDir, "journal"): {Group: "g", Proc: savedProc{Tag: "a", Mode: "once", Hash: g.byTag["a"].hash(), Run: 4}},
		eng.journalPath(7):                         {Group: "g", Proc: savedProc{Tag: "b", Mode: "once", Hash: g.byTag["b"].hash(), Run: 6}},
	}
	for path, jl := range files {
		line, _ := json.Marshal(jl)
		if err := os.WriteFile(path, append(line, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	runTestEngine(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var runs [2]int
	if err := eng.call(ctx, func() { runs = [2]int{g.byTag["a"].run, g.byTag["b"].run} }); err != nil {
		t.Fatal(err)
	}
	if runs != [2]int{4, 6} {
		t.Errorf("runs after restore: a %d, b %d; want 4 and 6 from the two journals", runs[0], runs[1])
	}
	if _, err := eng.Tell(ctx, "g", "1"); err != nil { // answered once a snapshot is durable
		t.Fatal(err)
	}
	for path := range files {
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s is still there after a durable snapshot", path)
		}
	}
	if err := eng.call(ctx, func() { runs = [2]int{g.byTag["a"].run, g.byTag["b"].run} }); err != nil {
		t.Fatal(err)
	}
	if runs != [2]int{5, 7} {
		t.Errorf("runs after the tell: a %d, b %d; want 5 and 7", runs[0], runs[1])
	}
}
