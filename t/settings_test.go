package t

import (
	"path/filepath"
	"strings"
	"testing"
)

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
