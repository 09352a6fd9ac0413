package t

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestSocketRefusesBadNames: on the socket, a level, group or node that
// breaks the name rule is answered 400 with the reason, and clstat and
// --status stay clean.
func TestSocketRefusesBadNames(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "g:a:1:once:true\n")
	// Bounded: before the check, /v0/watch answered with an endless stream.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/v0/tell", `{"group":"g","level":"2\u0000x"}`},
		{"POST", "/v0/tell", `{"group":"g","level":"\u001b[2J"}`},
		{"POST", "/v0/tell", `{"group":"g","level":"` + strings.Repeat("x", 60000) + `"}`},
		{"POST", "/v0/ha", `{"group":"g","level":"start","prefer":["n1\nnode fake alive"]}`},
		{"GET", "/v0/watch?node=%0Anode", ""},
	} {
		r, _ := http.NewRequest(req.method, "http://clinit"+req.path, strings.NewReader(req.body))
		resp, err := hc.Do(r)
		if err != nil {
			t.Errorf("%s %s: %v", req.method, req.path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "name") || !strings.Contains(string(body), "printable") {
			t.Errorf("%s %s %.40q: %d %.200s, want 400 with the reason", req.method, req.path, req.body, resp.StatusCode, body)
		}
	}
	out, _, code := d.clinit("--status")
	if code != 0 || out != "" {
		t.Errorf("--status after refused tells: %d %q", code, out)
	}
	if lines := d.clstatLines(); len(lines) != 0 {
		t.Errorf("clstat after refused tells: %q", lines)
	}
}
