package t

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseMetrics reads /metrics with Prometheus's own text parser.
func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus's parser refuses /metrics: %v\n%s", err, text)
	}
	return fams
}

// value is the one sample of a gauge or counter family, or of the
// series with the label values given (name=value pairs).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		if m.Counter != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no series %s %v in %v", name, labels, f)
	return 0
}

// --metrics does not delay the daemon's start: it answers on its socket
// as soon as without. (A collector that asked the engine, before its loop
// ran, for the metrics' first description once held the start for the
// 5 s of its timeout.)
func TestMetricsStartUp(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	writeFile(t, filepath.Join(dir, "cltab"), "G:a:1:once:true\n")
	port := freePort(t)
	start := time.Now()
	d := launch(t, dir, "--metrics", strconv.Itoa(port))
	d.waitReady()
	if _, _, code := d.clinit("--status"); code != 0 {
		t.Fatalf("--status: %d", code)
	}
	// A bound against the old 5 s wait, generous for a loaded machine:
	// the start takes some 50 ms.
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("with --metrics the socket answered %v after the start", took)
	}
	fams := parseMetrics(t, httpGet(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/metrics"))
	if v := value(t, fams, "clinit_processes"); v != 0 {
		t.Errorf("clinit_processes %v before any tell", v)
	}
}

// On a cluster with HA: the quorum, leader, lease and raft gauges, and
// memberlist's and raft's own metrics through the one go-metrics sink.
func TestMetricsCluster(t *testing.T) {
	t.Parallel()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	nodes := startClusterWith(t, 3, haCltab, func(i int) []string { return []string{"--metrics", strconv.Itoa(ports[i])} })
	waitAlive(t, nodes, 3, "3 alive")
	if out, errOut, code := nodes[0].clinit("--ha", "web", "start"); code != 0 {
		t.Fatalf("--ha: %s %s", out, errOut)
	}
	owner := waitOwner(t, nodes, "start")
	scrape := func(i int) map[string]*dto.MetricFamily {
		return parseMetrics(t, httpGet(t, "http://127.0.0.1:"+strconv.Itoa(ports[i])+"/metrics"))
	}
	leaders := 0
	var leader string
	for i, nd := range nodes {
		var fams map[string]*dto.MetricFamily
		// Every node holds a lease once the owner runs web (the owner's
		// own lease at least; the others' next renewal at most 0.5 s on).
		eventually(t, hang, func() bool {
			fams = scrape(i)
			return value(t, fams, "clinit_ha_quorum") == 1
		}, "%s: clinit_ha_quorum 1", nd.name)
		if v := value(t, fams, "clinit_ha_lease_remaining_seconds"); v <= 0 || v > 9 {
			t.Errorf("%s: lease remaining %v s, want within the 8 s lease", nd.name, v)
		}
		if value(t, fams, "clinit_raft_voter") != 1 || value(t, fams, "clinit_raft_peers") != 2 {
			t.Errorf("%s: not a voter with 2 peers", nd.name)
		}
		if value(t, fams, "clinit_raft_term") < 1 || value(t, fams, "clinit_raft_index", "which", "commit") < 1 ||
			value(t, fams, "clinit_raft_index", "which", "applied") > value(t, fams, "clinit_raft_index", "which", "last") {
			t.Errorf("%s: raft term and indexes: %v %v", nd.name, fams["clinit_raft_term"], fams["clinit_raft_index"])
		}
		for _, m := range fams["clinit_raft_state"].GetMetric() {
			if m.GetLabel()[0].GetValue() == "leader" {
				leaders++
			}
		}
		for _, m := range fams["clinit_ha_leader"].GetMetric() {
			if leader == "" {
				leader = m.GetLabel()[0].GetValue()
			} else if l := m.GetLabel()[0].GetValue(); l != leader {
				t.Errorf("%s: leader %s, another node says %s", nd.name, l, leader)
			}
		}
		if value(t, fams, "clinit_ha_group_running", "group", "web", "node", owner) != 1 {
			t.Errorf("%s: clinit_ha_group_running does not put web on %s", nd.name, owner)
		}
		// memberlist's and raft's own, through go-metrics.
		if value(t, fams, "memberlist_udp_sent") <= 0 || value(t, fams, "clinit_gossip_bytes_total", "direction", "sent", "proto", "udp") <= 0 {
			t.Errorf("%s: no gossip counted: %v", nd.name, fams["memberlist_udp_sent"])
		}
		if fams["raft_commitTime"].GetType() != dto.MetricType_SUMMARY && fams["raft_rpc_appendEntries"] == nil {
			t.Errorf("%s: neither raft_commitTime nor raft_rpc_appendEntries", nd.name)
		}
		if h := fams["memberlist_udp_sent"].GetHelp(); !strings.Contains(h, "memberlist.udp.sent") {
			t.Errorf("%s: memberlist_udp_sent help %q", nd.name, h)
		}
	}
	if leaders != 1 || leader == "" {
		t.Errorf("%d nodes say they lead (raft), %q is the leader (lease)", leaders, leader)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

func TestMetricsAndStatusPage(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	d := startDaemon(t, `
web:srv:1:respawn:exec sleep 1000
web:chk:1:test:true
`, "--metrics", strconv.Itoa(port))
	d.tellDone("web", "1")
	base := "http://127.0.0.1:" + strconv.Itoa(port)

	m := httpGet(t, base+"/metrics")
	for _, want := range []string{
		`clinit_build_info{version="`,
		`",goversion="` + runtime.Version() + `"} 1`,
		`clinit_group_state{group="web",level="1",state="DONE"} 1`,
		`clinit_processes 1`,
		`clinit_entry_restarts_total{group="web",tag="srv"} 0`,
		`clinit_entry_throttled{group="web",tag="srv"} 0`,
		`clinit_members{state="alive"} 1`,
		`clinit_fencing_runs_total{result="ok"} 0`,
		`clinit_ha_lease_remaining_seconds 0`, // a single node holds no lease
		`clinit_ha_quorum 0`,
		`clinit_raft_voter 0`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(m, "clinit_group_transitions_total ") {
		t.Errorf("/metrics lacks the transitions counter")
	}
	if strings.Contains(m, `tag="chk"`) {
		t.Errorf("a test entry has restart or throttle figures:\n%s", m)
	}
	fams := parseMetrics(t, m)
	for name, f := range fams {
		if strings.HasPrefix(name, "clinit_") && len(f.GetHelp()) < 30 {
			t.Errorf("%s: help %q does not say what it counts", name, f.GetHelp())
		}
	}

	// A level change and back restarts srv: that is no restart. Its
	// process killed and started again is one.
	restarts := func() string {
		for _, l := range strings.Split(httpGet(t, base+"/metrics"), "\n") {
			if v, ok := strings.CutPrefix(l, `clinit_entry_restarts_total{group="web",tag="srv"} `); ok {
				return v
			}
		}
		return "none"
	}
	d.tellDone("web", "2")
	d.tellDone("web", "1")
	pid := d.entry("web", "srv").Pid
	if r := restarts(); r != "0" || pid == 0 {
		t.Fatalf("after a level change and back: restarts %s (want 0), pid %d", r, pid)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	eventually(t, hang, func() bool { p := d.entry("web", "srv").Pid; return p != 0 && p != pid }, "srv restarted")
	if r := restarts(); r != "1" {
		t.Fatalf("after srv was killed and restarted: restarts %s, want 1", r)
	}

	var v struct {
		Status struct {
			Node   string
			Groups []struct{ Group, Level, State string }
		}
	}
	if err := json.Unmarshal([]byte(httpGet(t, base+"/status.json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Status.Node != d.node || len(v.Status.Groups) != 1 || v.Status.Groups[0].State != "DONE" {
		t.Fatalf("/status.json: %+v", v)
	}
	page := httpGet(t, base+"/")
	if !strings.Contains(page, "<title>clinit</title>") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Fatalf("status page: not ours, or it loads something from elsewhere:\n%.400s", page)
	}
	browse(t, base+"/", d.node)
}

// browse loads the status page in headless Chromium and checks what it
// shows: the DOM after its script ran, and a screenshot that is not
// blank. CI installs Chromium (.ci/run); a machine without it skips.
func browse(t *testing.T, url, node string) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Log("no chromium on this machine: the status page was not checked in a browser (.ci/run installs it)")
		return
	}
	dir := newCaseDir(t)
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--virtual-time-budget=5000", "--window-size=1000,700"}
	run := func(extra ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, chromium, append(args, append(extra, url)...)...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", extra, err)
		}
		return out
	}
	dom := string(run("--dump-dom"))
	// The tables are filled in by the page's script from /status.json.
	for _, want := range []string{"clinit on <span id=\"node\">" + node + "</span>", "<td>web</td>", "<td class=\"DONE\">DONE</td>", "srv: "} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q:\n%.2000s", want, dom)
		}
	}
	shot := filepath.Join(dir, "shot.png")
	run("--screenshot=" + shot)
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// Text was drawn: the top of the page has dark pixels, not one colour.
	dark := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Min.Y+200 && y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r+g+bl < 3*0x4000 {
				dark++
			}
		}
	}
	if dark < 100 {
		t.Fatalf("screenshot %dx%d looks blank (%d dark pixels)", b.Dx(), b.Dy(), dark)
	}
}
