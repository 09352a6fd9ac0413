package t

import (
	"strings"
	"testing"
)

// A tell acts on the cltab as it is on disk when it is made, as
// Cluster::Init's does (its t/47reread.t): a group added a moment before
// can be told at once, a changed entry restarts with its new command as
// on any reread, and an invalid file is reported to the teller. The
// daemon's watcher cannot see these writes (the cltab is a symlink), so
// only the tell's own reread can apply them.
func TestTellRereadsChangedCltab(t *testing.T) {
	t.Parallel()
	d := startDaemonUnwatched(t, `
A:a:1:once:echo v1 >> {dir}/a
`)
	d.tell("A", "1")
	waitLines(t, d.path("a"), 1)

	d.writeCltab(`
A:a:1:once:echo v2 >> {dir}/a
N:n:1:once:echo n >> {dir}/n
`)
	d.tell("N", "1")
	waitLines(t, d.path("n"), 1)
	// The reread restarted the changed entry of A at its level.
	if got := strings.Join(waitLines(t, d.path("a"), 2), " "); got != "v1 v2" {
		t.Fatalf("a ran %q, want %q", got, "v1 v2")
	}

	// The same size, the same inode: only the times tell this edit apart.
	d.writeCltab(`
A:a:1:once:echo v3 >> {dir}/a
N:n:1:once:echo n >> {dir}/n
`)
	d.tell("N", "1")
	if got := strings.Join(waitLines(t, d.path("a"), 3), " "); got != "v1 v2 v3" {
		t.Fatalf("a ran %q, want %q", got, "v1 v2 v3")
	}

	d.writeCltab(`
A:a:1:once:echo v3 >> {dir}/a
N:n:1:bogus:echo n >> {dir}/n
`)
	out, errOut, code := d.clinit("A", "2")
	if code != 1 || out != "" || !strings.Contains(errOut, d.cltab+":3: ") && !strings.Contains(errOut, d.target+":3: ") {
		t.Fatalf("tell with an invalid cltab on disk: status %d, stdout %q, stderr %q; want status 1 and the PATH:3: error", code, out, errOut)
	}
	if s := d.clstatLines()["A"]; s != "1 DONE" {
		t.Fatalf("after a refused tell A is %q, want 1 DONE", s)
	}
}

// The same with the watcher on, as Cluster::Init's t/47reread.t does it:
// the tell right after the edit does not wait for the watcher's reread,
// which then finds nothing more to do.
func TestTellRightAfterEditWatched(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
A:a:1:once:true
`)
	d.writeCltab(`
A:a:1:once:true
N:n:1:respawn:echo $$ >> {dir}/n; exec sleep 1000
`)
	d.tell("N", "1")
	pid := readPid(t, d.path("n"), 0)
	// The watcher rereads once the file has been quiet for 150 ms; its
	// reread must change nothing.
	settle()
	if got := lines(d.path("n")); len(got) != 1 || !alive(pid) {
		t.Fatalf("after the watcher's reread n started %d times (%q), first alive %v; want once, still running", len(got), got, alive(pid))
	}
}
