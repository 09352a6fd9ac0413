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
	"strconv"
	"strings"
	"testing"
	"time"
)

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
	d.tell("web", "1")
	d.waitState("web", "1", "DONE")
	base := "http://127.0.0.1:" + strconv.Itoa(port)

	m := httpGet(t, base+"/metrics")
	for _, want := range []string{
		`clinit_group_state{group="web",level="1",state="DONE"} 1`,
		`clinit_processes 1`,
		`clinit_entry_restarts_total{group="web",tag="srv"} 0`,
		`clinit_entry_throttled{group="web",tag="srv"} 0`,
		`clinit_members{state="alive"} 1`,
		`clinit_fencing_runs_total{result="ok"} 0`,
		`clinit_ha_lease_remaining_seconds 0`, // a single node holds no lease
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(m, "clinit_group_transitions_total ") {
		t.Errorf("/metrics lacks the transitions counter")
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
