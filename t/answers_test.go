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
