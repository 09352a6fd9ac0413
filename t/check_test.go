package t

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// checkCltab is a cltab with a plain group and an HA group.
const checkCltab = `
plain:p:1:once:true
vip:claim:plan,:once:true
vip:addr:start,:wait:true
vip:web:start,:respawn:exec sleep 1000
vip:release:stop,:wait:true
`

// --check validates the hactl too: the --hactl path, else the cltab's
// hactl setting. Every problem is a PATH:LINE: line: a bad line, a group
// the cltab lacks, a level the group has no entry at.
func TestCheckHactl(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	tab, hactl := filepath.Join(dir, "cltab"), filepath.Join(dir, "hactl")
	writeFile(t, tab, checkCltab)
	writeFile(t, hactl, `# HA groups
vip strat
ghost start
plain
plain stop
`)
	out, errOut, code, err := runClinit("--check", "-c", tab, "--hactl", hactl)
	if err != nil || code != 1 {
		t.Fatalf("clinit --check with a bad hactl: status %d, err %v, stdout %q, stderr %q; want 1", code, err, out, errOut)
	}
	for _, want := range []string{
		hactl + `:2: group "vip" has no entry at level "strat"`,
		hactl + `:3: group "ghost" is not in the cltab`,
		hactl + `:4: missing level`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("--check: no %q in stderr:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, hactl+":5:") {
		t.Errorf("--check: a problem with the valid line 5 (stop needs no entries):\n%s", errOut)
	}

	writeFile(t, hactl, "vip start\nplain 1\n")
	out, errOut, code, err = runClinit("--check", "-c", tab, "--hactl", hactl)
	if err != nil || code != 0 || !strings.Contains(out, hactl+": ok: 2 HA groups") {
		t.Fatalf("clinit --check with a good hactl: status %d, err %v, stdout %q, stderr %q", code, err, out, errOut)
	}

	// The cltab's setting names the hactl when no flag does.
	writeFile(t, tab, ":::hactl:"+hactl+"\n"+checkCltab)
	writeFile(t, hactl, "vip start\nghost start\n")
	_, errOut, code, _ = runClinit("--check", "-c", tab)
	if code != 1 || !strings.Contains(errOut, hactl+`:2: group "ghost" is not in the cltab`) {
		t.Fatalf("clinit --check with the cltab's hactl: status %d, stderr %q; want the hactl's problem", code, errOut)
	}

	// A hactl named on the command line must exist.
	missing := filepath.Join(dir, "nohactl")
	if _, errOut, code, _ := runClinit("--check", "-c", tab, "--hactl", missing); code != 1 || !strings.Contains(errOut, missing) {
		t.Fatalf("clinit --check --hactl MISSING: status %d, stderr %q; want 1 naming it", code, errOut)
	}
}

// A runlevels field without a comma is one level per letter (the rule is
// Cluster::Init's), so an HA group's `start` is also the levels s, t, a
// and r, and `clinit vip t` would run it. --check warns of such fields of
// HA groups, suggesting `start,`, and still exits 0.
func TestCheckWarnsLetterLevels(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	tab, hactl := filepath.Join(dir, "cltab"), filepath.Join(dir, "hactl")
	writeFile(t, tab, `vip:claim:plan:once:true
vip:check:test:test:true
vip:addr:start:wait:true
vip:web:start,:respawn:exec sleep 1000
vip:release:stop:wait:true
vip:other:12:once:true
plain:p:start:once:true
`)
	writeFile(t, hactl, "vip start\n")
	out, errOut, code, err := runClinit("--check", "-c", tab, "--hactl", hactl)
	if err != nil || code != 0 || !strings.Contains(out, hactl+": ok: 1 HA groups") {
		t.Fatalf("clinit --check: status %d, err %v, stdout %q, stderr %q; want 0", code, err, out, errOut)
	}
	for _, w := range []struct {
		line       int
		levels     string
		letter     string
		suggestion string
	}{
		{1, "plan", "p", `"plan,"`},
		{2, "test", "t", `"test,"`},
		{3, "start", "s", `"start,"`},
		{5, "stop", "s", `"stop,"`},
	} {
		found := false
		for _, l := range strings.Split(errOut, "\n") {
			found = found || strings.HasPrefix(l, tab+":"+strconv.Itoa(w.line)+": warning: ") &&
				strings.Contains(l, `levels "`+w.levels+`"`) && strings.Contains(l, "clinit vip "+w.letter+" would run this entry") &&
				strings.Contains(l, "write "+w.suggestion)
		}
		if !found {
			t.Errorf("no warning for line %d (%s) suggesting %s in:\n%s", w.line, w.levels, w.suggestion, errOut)
		}
	}
	for _, line := range []string{":4:", ":6:", ":7:"} {
		if strings.Contains(errOut, tab+line) {
			t.Errorf("a warning for line %s, which is not an HA lifecycle level without a comma:\n%s", line, errOut)
		}
	}
}

// TestCheckRefusesSettingsThatCannotWork: --check names the line of a
// setting that cannot work (exit 1), and warns of an unsafe one (exit 0).
func TestCheckRefusesSettingsThatCannotWork(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	tab := filepath.Join(dir, "cltab")
	for _, tc := range []struct {
		text, want string
		code       int
	}{
		{":::nodes:3\n:::quorum:4\ng:a:1:once:true\n", tab + ":2: quorum 4 is more than nodes 3", 1},
		{":::respawnwindow:0\ng:a:1:respawn:false\n", tab + `:1: bad value for respawnwindow: "0": must be more than 0`, 1},
		{":::nodes:3\n:::fencetime:5s\n:::stoptimeout:8s\ng:a:1:once:true\n", tab + ":3: warning: stoptimeout 8s is not below fencetime 5s", 0},
		{"g:a:1:once:" + strings.Repeat("x", 70000) + "\n", tab + ":1: line is 70011 bytes, over the 65536-byte (64 KiB) limit", 1},
	} {
		writeFile(t, tab, tc.text)
		_, errOut, code, err := runClinit("--check", "-c", tab)
		if err != nil || code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("--check %.40q: exit %d, stderr %q; want %d and %q", tc.text, code, errOut, tc.code, tc.want)
		}
	}
}

// TestDaemonLogsUnsafeSettings: the daemon logs a cltab's warnings with
// their line when it starts, and again when a reread (here: the file
// changing) brings one.
func TestDaemonLogsUnsafeSettings(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, ":::nodes:3\n:::fencetime:5s\n:::stoptimeout:8s\ng:a:1:once:true\n")
	if !d.logHas("cltab:", "cltab:3: warning: stoptimeout 8s is not below fencetime 5s") {
		t.Fatalf("no warning logged at start:\n%s", d.log)
	}
	d.writeCltab(":::nodes:3\n:::stoptimeout:12s\ng:a:1:once:true\n")
	eventually(t, hang, func() bool { return d.logHas("cltab:2: warning: stoptimeout 12s is not below fencetime 10s") },
		"the warning logged after the cltab changed")
}
