package t

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBadNodeNameRefused: a --node that would forge or split hastat
// lines (a newline, a space, invalid UTF-8) stops the daemon before it
// makes anything, with the reason.
func TestBadNodeNameRefused(t *testing.T) {
	for _, node := range []string{"n1\nnode fake alive", "a b", "\xff", "web:x"} {
		dir := newCaseDir(t)
		writeFile(t, filepath.Join(dir, "cltab"), "g:a:1:once:true\n")
		d := launch(t, dir, "--node", node)
		if code := d.waitExit(); code != 1 {
			t.Fatalf("--node %q: exit %d, want 1; log:\n%s", node, code, d.log)
		}
		if log := d.log.String(); !strings.Contains(log, "bad node name") || !strings.Contains(log, "--node") {
			t.Fatalf("--node %q: log does not say why:\n%s", node, log)
		}
		if exists(d.sock) || exists(filepath.Join(dir, "state")) {
			t.Fatalf("--node %q: the daemon made its socket or state first", node)
		}
	}
}
