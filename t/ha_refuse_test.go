package t

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --ha refuses a level at which the group has no entry (the cluster
// would keep it running nothing), and accepts a preferred node that is
// not in the cluster with a warning.
func TestHARefusesLevelWithoutEntries(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, haCltab)
	waitAlive(t, nodes, 3, "3 alive")
	out, errOut, code := nodes[0].clinit("--ha", "web", "remove")
	want := `clinit: group "web" has no entry at level "remove" in the cltab ` + nodes[0].cltab +
		": the cluster would keep web running nothing; nothing changed (its levels: plan, test, start, big, stop; stop runs it nowhere)\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("--ha web remove: status %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
	for _, nd := range nodes {
		if data, _ := os.ReadFile(filepath.Join(nd.dir, "hactl")); strings.Contains(string(data), "web") {
			t.Fatalf("%s: the refused edit is in the hactl: %q", nd.name, data)
		}
	}

	out, errOut, code = nodes[1].clinit("--ha", "web", "start", "--prefer", "n9,n3")
	wantWarn := "clinit: warning: preferred node n9 is not in this cluster (members: n1, n2, n3): it ranks first only once it joins\n"
	if code != 0 || !strings.HasPrefix(out, "web: HA level start, committed as hactl version ") || errOut != wantWarn {
		t.Fatalf("--ha web start --prefer n9,n3: status %d, stdout %q, stderr %q; want 0 and the warning %q", code, out, errOut, wantWarn)
	}
	if o := waitOwner(t, nodes, "start"); o != "n3" {
		t.Fatalf("web on %s, want n3, the first preferred node that is there", o)
	}
	// Known nodes: no warning.
	if _, errOut, code := nodes[2].clinit("--ha", "web", "start", "--prefer", "n3,n1"); code != 0 || errOut != "" {
		t.Fatalf("--ha with members preferred: status %d, stderr %q", code, errOut)
	}
}

// On a node where HA is off (the cltab names no voters) --ha is refused
// and changes nothing: the group told here keeps running.
func TestHARefusedWhereHAIsOff(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, strings.Replace(haCltab, ":::nodes:3\n", "", 1))
	d.tellDone("web", "start")
	pid := d.entry("web", "srv").Pid
	out, errOut, code := d.clinit("--ha", "web", "start")
	want := "clinit: HA is off: the cltab names no voters (:::nodes: or :::servers:), so no node would keep web at start; nothing changed (tell it here with clinit web start)\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("--ha web start with HA off: status %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
	settle()
	if e := d.entry("web", "srv"); e.Pid != pid || d.clstatLines()["web"] != "start DONE" {
		t.Fatalf("after the refused --ha: web %q, srv pid %d (was %d)", d.clstatLines()["web"], e.Pid, pid)
	}
	if exists(d.path("hactl")) {
		data, _ := os.ReadFile(d.path("hactl"))
		t.Fatalf("the refused edit wrote the hactl: %q", data)
	}

	// HA on in the cltab, but the node runs alone: no consensus to
	// commit to, refused alike.
	solo := startDaemon(t, haCltab)
	out, errOut, code = solo.clinit("--ha", "web", "start")
	want = "clinit: HA is off on this node: it runs alone (no --bind or --join), in no consensus, so no node would keep web at start; nothing changed (tell it here with clinit web start)\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("--ha web start on a lone node: status %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
}
