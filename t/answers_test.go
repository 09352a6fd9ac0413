package t

import (
	"strings"
	"testing"
)

// `clinit web` (the level forgotten) tells the group named after the
// node: the answer says that a lone argument is a LEVEL, and, when it is
// the name of a group, how to tell that group.
func TestTellForgottenLevel(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
web:w:1:once:true
`, "--node", "n1")
	out, errOut, code := d.clinit("web")
	want := "clinit: no such group: n1 (a lone argument is a LEVEL, for the group named after this node, n1; to tell the group web, give its level too: clinit web LEVEL)\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("clinit web: status %d, stdout %q, stderr %q; want status 1 and %q", code, out, errOut, want)
	}
	out, errOut, code = d.clinit("7")
	want = "clinit: no such group: n1 (a lone argument is a LEVEL, for the group named after this node, n1)\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("clinit 7: status %d, stdout %q, stderr %q; want status 1 and %q", code, out, errOut, want)
	}
	// Two arguments name the group: no hint there.
	if _, errOut, code := d.clinit("ghost", "1"); code != 1 || errOut != "clinit: no such group: ghost\n" {
		t.Fatalf("clinit ghost 1: status %d, stderr %q", code, errOut)
	}
}

// A tell to a level where none of the group's entries runs stops
// everything of the group: the answer says so.
func TestTellLevelWithoutEntries(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
web:w:1:respawn:exec sleep 1000
web:x:7:off:true
`)
	if out, errOut, code := d.clinit("web", "1"); code != 0 || out != "web: going to level 1\n" {
		t.Fatalf("clinit web 1: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	d.waitState("web", "1", "DONE")
	out, errOut, code := d.clinit("web", "7")
	if want := "web: going to level 7: " + noEntryNote("web", "7") + "\n"; code != 0 || out != want {
		t.Fatalf("clinit web 7: status %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	d.waitState("web", "7", "DONE")
	if g, _ := d.status().group("web"); strings.Join(g.tags(), " ") != "w x" || g.Entries[0].Pid != 0 {
		t.Fatalf("at level 7: %v, want w stopped", g.Entries)
	}
}

// A process killed by a signal is logged with the signal's name, not as
// exit -1; a wait killed so makes its group FAILED saying by what. (A
// wait's command that a signal kills inside it is seen as the shell says,
// exit 128+N; here the command kills its whole process group.)
func TestSignalNamed(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:k:1:once:kill -TERM $$
G:w:2:wait:kill -KILL 0
`)
	d.tell("G", "1")
	eventually(t, hang, func() bool { return d.logHas(`"tag": "k"`, `"signal": "SIGTERM"`) }, "k's end logged with SIGTERM")
	if d.logHas(`"tag": "k"`, `"exit": -1`) {
		t.Fatal("k's end logged as exit -1")
	}
	if e := d.entry("G", "k"); e.Signal != "SIGTERM" || e.Exit == nil || *e.Exit != -1 {
		t.Fatalf("--json: k is %v signal %q, want exit -1 and signal SIGTERM", e, e.Signal)
	}
	d.tell("G", "2")
	d.waitState("G", "2", "FAILED")
	if out, _, _ := d.clinit("--status"); out != "G 2 FAILED  (w was killed by SIGKILL)\n" {
		t.Fatalf("clinit --status: %q, want the wait killed by SIGKILL", out)
	}
	if !d.logHas(`failed`, `"tag": "w"`, `"signal": "SIGKILL"`) {
		t.Fatal("the wait's failure is not logged with SIGKILL")
	}
}
