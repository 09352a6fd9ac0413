package t

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A crash-looping respawn entry that rests makes its group FAILED, with
// the reason wherever the group is shown: clstat (and -v, which prints
// its lines as they are), --status, --json, the
// cluster view (--hastat --json), the status page's data and the
// metrics. Once the pause ends and the entry runs again, the group is
// DONE again and the reason gone.
func TestThrottledGroupFailed(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	d := startDaemon(t, `
:::respawnlimit:2
:::respawnwindow:10s
:::respawnpause:5s
crash:c:1:respawn:[ -e {dir}/fixed ] && exec sleep 1000; echo start >> {dir}/c; exit 1
crash:steady:1:respawn:exec sleep 1000
`, "--metrics", strconv.Itoa(port))
	d.tell("crash", "1")
	throttledSnapshot(t, d, "crash", "c")
	const why = "c respawning too rapidly: resting for 5s"

	d.waitState("crash", "1", "FAILED")
	if out, errOut, code := d.clinit("--status"); code != 0 || out != "crash 1 FAILED  ("+why+")\n" {
		t.Fatalf("clinit --status: status %d, stdout %q, stderr %q; want the FAILED line with why", code, out, errOut)
	}
	// -v prints exactly the clstat lines (SPEC 4).
	if out, errOut, code := d.clinit("-v"); code != 0 || out != "cltab reread: no group changed\ncrash 1 FAILED\n" {
		t.Fatalf("clinit -v: status %d, stdout %q, stderr %q; want the clstat line as it is", code, out, errOut)
	}
	g, _ := d.status().group("crash")
	if g.State != "FAILED" || g.Why != why {
		t.Fatalf("--json: group %+v, want FAILED with why %q", g, why)
	}
	if e, _ := g.entry("c"); e.ThrottledUntil.IsZero() || time.Until(e.ThrottledUntil) > 5*time.Second {
		t.Fatalf("--json: entry %v throttled until %v, want within the 5s pause", e, e.ThrottledUntil)
	}
	out, errOut, code := d.clinit("--hastat", "--json")
	var h struct {
		Nodes []struct {
			Node   string
			Groups []struct{ Group, State, Why string }
		}
	}
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil {
		t.Fatalf("clinit --hastat --json: status %d, %v, stderr %q", code, err, errOut)
	}
	if len(h.Nodes) != 1 || len(h.Nodes[0].Groups) != 1 || h.Nodes[0].Groups[0].State != "FAILED" || h.Nodes[0].Groups[0].Why != why {
		t.Fatalf("--hastat --json: %+v, want crash FAILED with why %q", h.Nodes, why)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if m := httpGet(t, base+"/metrics"); !strings.Contains(m, `clinit_group_failed{group="crash",why="`+why+`"} 1`) ||
		!strings.Contains(m, `clinit_group_state{group="crash",level="1",state="FAILED"} 1`) {
		t.Fatalf("/metrics lacks the FAILED group and its why:\n%s", m)
	}
	if j := httpGet(t, base+"/status.json"); !strings.Contains(j, `"why":"`+why+`"`) {
		t.Fatalf("/status.json lacks why %q:\n%s", why, j)
	}
	if page := httpGet(t, base+"/"); !strings.Contains(page, "g.why") {
		t.Fatal("the status page does not show why a group failed")
	}

	writeFile(t, d.path("fixed"), "")
	d.waitState("crash", "1", "DONE")
	if out, _, _ := d.clinit("--status"); out != "crash 1 DONE\n" {
		t.Fatalf("clinit --status after the pause: %q, want %q", out, "crash 1 DONE\n")
	}
	if g, _ := d.status().group("crash"); g.Why != "" {
		t.Fatalf("--json after the pause: %+v still has a why", g)
	}
	if m := httpGet(t, base+"/metrics"); strings.Contains(m, "clinit_group_failed{") {
		t.Fatalf("/metrics still has a failed group after the pause:\n%s", m)
	}
}
