package t

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// TestKeyFile: clinit --keygen PATH writes a key only its owner can
// read, and a daemon refuses a key file that others can read.
func TestKeyFile(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	key := filepath.Join(dir, "key")
	out, errOut, code, err := runClinit("--keygen", key)
	if err != nil || code != 0 || !strings.Contains(out, key) {
		t.Fatalf("clinit --keygen %s: %d %q %q %v", key, code, out, errOut, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if _, errOut, code, _ := runClinit("--keygen", key); code != 1 || !strings.Contains(errOut, "file exists") {
		t.Fatalf("clinit --keygen over an existing key: %d %q", code, errOut)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "cltab"), "g:a:1:once:true\n")
	d := launch(t, dir, "--bind", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--keyfile", key)
	if code := d.waitExit(); code != 1 || !strings.Contains(d.log.String(), "chmod 600 "+key) {
		t.Fatalf("a daemon with a key of mode 0644: exit %d, log:\n%s", code, d.log)
	}
}

// TestStatusPageHostCheck: the status page and status.json answer only a
// Host that names them (their address, localhost, the node): a browser
// led there by DNS rebinding sends the attacker's name, and gets 403.
func TestStatusPageHostCheck(t *testing.T) {
	t.Parallel()
	port := strconv.Itoa(freePort(t))
	d := startDaemon(t, "web:srv:1:once:true\n", "--metrics", port)
	get := func(path, host string) int {
		req, err := http.NewRequest("GET", "http://127.0.0.1:"+port+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/", "/status.json"} {
		for host, want := range map[string]int{
			"127.0.0.1:" + port: 200, "localhost:" + port: 200, "LOCALHOST": 200, d.node + ":" + port: 200,
			"evil.example:" + port: 403, "evil.example": 403, "127.0.0.2:" + port: 403,
		} {
			if got := get(path, host); got != want {
				t.Errorf("GET %s with Host %s: %d, want %d", path, host, got, want)
			}
		}
	}
	if got := get("/metrics", "evil.example"); got != 200 {
		t.Errorf("/metrics with another Host: %d, want 200 (scrapers name targets as they like)", got)
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

// TestUnsafeDirectoriesRefused: a state, socket or FIFO directory that
// another user owns or may write in is refused at start (sshd's
// StrictModes): there, anyone could plant symlinks that root would
// write through. The log is never opened through a symlink.
func TestUnsafeDirectoriesRefused(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(newCaseDir(t), "secret")
	writeFile(t, secret, "root only\n")
	for _, tc := range []struct {
		name  string
		setup func(dir string) []string // the flags
		want  string
	}{
		{"state dir mode 0777", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "state"), 0o777)
			return nil
		}, "state directory: " + "%s/state is mode 0777"},
		{"state dir of another user", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "state"), 0o700)
			os.Chown(filepath.Join(dir, "state"), 65534, 65534)
			return nil
		}, "belongs to uid 65534"},
		{"exit dir planted in the state dir", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "state"), 0o700)
			mkdirMode(t, filepath.Join(dir, "state", "exit"), 0o777)
			return nil
		}, "state/exit is mode 0777"},
		{"socket dir in an open dir", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "open"), 0o777)
			return []string{"-s", filepath.Join(dir, "open", "run", "sock")}
		}, "socket directory: "},
		{"FIFO dir of another user", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "sock.out"), 0o700)
			os.Chown(filepath.Join(dir, "sock.out"), 65534, 65534)
			return nil
		}, "output directory: "},
		{"log through a symlink", func(dir string) []string {
			os.Symlink(secret, filepath.Join(dir, "log"))
			return []string{"--log", filepath.Join(dir, "log")}
		}, "log file: "},
	} {
		dir := newCaseDir(t)
		writeFile(t, filepath.Join(dir, "cltab"), "g:a:1:once:true\n")
		d := launch(t, dir, tc.setup(dir)...)
		want := strings.ReplaceAll(tc.want, "%s", dir)
		if code := d.waitExit(); code != 1 || !strings.Contains(d.log.String(), want) {
			t.Errorf("%s: exit %d, want 1 and %q in:\n%s", tc.name, code, want, d.log)
		}
	}
	if data, _ := os.ReadFile(secret); string(data) != "root only\n" {
		t.Fatalf("the secret file was written: %q", data)
	}
}

func mkdirMode(t *testing.T, p string, mode uint32) {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(p, mode); err != nil {
		t.Fatal(err)
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
