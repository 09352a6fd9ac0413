package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/daemon"
	"github.com/clinit/clinit/internal/reaper"
	"github.com/clinit/clinit/internal/testkit"
)

// fakeShutdownEnv makes the test binary a stand-in daemon on the socket
// it names: it answers one shutdown request, then exits.
const fakeShutdownEnv = "CLINIT_CLI_TEST_SHUTDOWN"

func TestMain(m *testing.M) {
	if sock := os.Getenv(fakeShutdownEnv); sock != "" {
		os.Exit(shutdownOnce(sock))
	}
	os.Exit(m.Run())
}

func shutdownOnce(sock string) int {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return 1
	}
	answered := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.PathShutdown || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(api.Message{Message: "every group stopped; daemon exiting"})
		close(answered)
	})}
	go srv.Serve(ln)
	os.Stdout.WriteString("listening\n")
	<-answered
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if srv.Shutdown(ctx) != nil { // once the answer is out
		return 1
	}
	return 0
}

// run runs the command line with args and returns its exit status and
// what it printed.
func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Run(args, &o, &e)
	return code, o.String(), e.String()
}

// tempDir is a short directory (a socket path must stay under 108
// bytes), removed at the end of the test.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// served is a real daemon engine of node n1 answering on a real socket,
// in this process: what the command line talks to.
type served struct {
	dir, cltab, sock, clstat string
	eng                      *daemon.Engine
}

// serveDaemon runs the engine and server of package daemon on tab
// ({dir} is the test's directory), stopped at the end of the test.
func serveDaemon(t *testing.T, tab string) *served {
	t.Helper()
	dir := tempDir(t)
	s := &served{dir: dir, cltab: filepath.Join(dir, "cltab"), sock: filepath.Join(dir, "sock"), clstat: filepath.Join(dir, "clstat")}
	writeFile(t, s.cltab, strings.ReplaceAll(tab, "{dir}", dir))
	parsed, err := cltab.Load(s.cltab)
	if err != nil {
		t.Fatal(err)
	}
	s.eng, err = daemon.NewEngine(daemon.Config{CltabPath: s.cltab, Tab: parsed, Clstat: s.clstat, RunDir: dir, Node: "n1", Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	go s.eng.Run()
	srv := daemon.NewServer(s.eng, zap.NewNop(), daemon.ServerOptions{})
	ln, err := daemon.Listen(s.sock)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.eng.Shutdown(ctx) // an error only once it has stopped already (-k)
		select {
		case <-s.eng.Done():
		case <-ctx.Done():
			t.Error("the engine did not stop")
		}
	})
	return s
}

// clinit runs the command line against the daemon (-c and -s given).
func (s *served) clinit(args ...string) (code int, stdout, stderr string) {
	return run(append([]string{"-c", s.cltab, "-s", s.sock}, args...)...)
}

// Usage errors: status 2, a message on stderr that says what is wrong,
// nothing on stdout, and no daemon asked (there is none).
func TestUsageErrors(t *testing.T) {
	sock := filepath.Join(tempDir(t), "none")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-d", "-k"}, "exclude each other"},
		{[]string{"--check", "--hastat"}, "exclude each other"},
		{[]string{"--ha", "web"}, "--ha wants GROUP LEVEL"},
		{[]string{"--watch", "n1", "n2"}, "--watch takes at most one NODE"},
		{[]string{"--keygen", "a", "b"}, "--keygen takes at most one PATH"},
		{[]string{"--check", "extra"}, `unexpected argument "extra"`},
		{[]string{"-k", "extra"}, `unexpected argument "extra"`},
		{[]string{"a", "b", "c"}, `too many arguments: ["a" "b" "c"]`},
		{[]string{"--prefer", "n1", "web", "start"}, "--prefer goes with --ha"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"-x"}, "unknown shorthand flag: 'x'"},
		{[]string{"we:b", "1"}, ":"},
		{[]string{"web", "a,b"}, ","},
		{[]string{"--ha", "web", "start", "--prefer", "n 1"}, "n 1"},
		{[]string{"--watch", "n\x01"}, "node"},
	} {
		code, out, errOut := run(append([]string{"-s", sock}, tc.args...)...)
		if code != ExitUsage || out != "" || !strings.Contains(errOut, tc.want) || !strings.HasSuffix(errOut, "run clinit -h for help\n") {
			t.Errorf("clinit %q: status %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, ExitUsage, tc.want)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, out, errOut := run("-h")
	if code != ExitOK || errOut != "" || !strings.HasPrefix(out, "usage:\n") || !strings.Contains(out, "exit status: 0 done, 1 failed") ||
		!strings.Contains(out, "--state-dir string") {
		t.Errorf("-h: status %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	code, out, _ = run("--version")
	if code != ExitOK || !strings.HasPrefix(out, "clinit ") || out != "clinit "+Version()+"\n" {
		t.Errorf("--version: status %d, %q", code, out)
	}
}

func TestKeygen(t *testing.T) {
	code, out, _ := run("--keygen")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(out, "\n"))
	if code != ExitOK || err != nil || len(key) != 32 {
		t.Fatalf("--keygen: status %d, %q (%v)", code, out, err)
	}
	path := filepath.Join(tempDir(t), "key")
	if code, out, _ := run("--keygen", path); code != ExitOK || out != "new cluster key in "+path+" (mode 0600)\n" {
		t.Fatalf("--keygen PATH: status %d, %q", code, out)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v, %v", fi, err)
	}
	// Never over a file that is there.
	if code, _, errOut := run("--keygen", path); code != ExitFail || !strings.Contains(errOut, path) {
		t.Fatalf("--keygen over a key: status %d, %q", code, errOut)
	}
}

func TestCheck(t *testing.T) {
	dir := tempDir(t)
	good, bad, hactl := filepath.Join(dir, "good"), filepath.Join(dir, "bad"), filepath.Join(dir, "hactl")
	writeFile(t, good, "web:a:1:once:true\nweb:b:2:wait:true\ndb:c:1:off:\n")
	writeFile(t, hactl, "web 2 n1,n2\n")
	writeFile(t, bad, "web:a:1:once:true\nweb:a:1:bogus:true\n")
	for _, tc := range []struct {
		args          []string
		code          int
		stdout, inErr string
	}{
		{[]string{"--check", "-c", good}, ExitOK, good + ": ok: 3 entries in 2 groups\n", ""},
		{[]string{"--check", "-c", good, "--hactl", hactl}, ExitOK, good + ": ok: 3 entries in 2 groups\n" + hactl + ": ok: 1 HA groups\n", ""},
		{[]string{"--check", "-c", good, "--hactl", filepath.Join(dir, "none")}, ExitFail, good + ": ok: 3 entries in 2 groups\n", "none: no such hactl"},
		{[]string{"--check", "-c", bad}, ExitFail, "", bad + ":2: "},
		{[]string{"--check", "-c", filepath.Join(dir, "missing")}, ExitFail, "", "missing"},
	} {
		code, out, errOut := run(tc.args...)
		if code != tc.code || out != tc.stdout || !strings.Contains(errOut, tc.inErr) {
			t.Errorf("clinit %q: status %d, stdout %q, stderr %q; want %d, %q and %q", tc.args, code, out, errOut, tc.code, tc.stdout, tc.inErr)
		}
	}
}

// Each client command path against a real daemon: what it prints, where,
// and its status.
func TestClientCommands(t *testing.T) {
	s := serveDaemon(t, "g:a:1:once:exec sleep 1000\ng:b:2:once:true\nn1:c:1:once:true\n")
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"g", "1"}, ExitOK, "g: going to level 1\n", ""},
		{[]string{"1"}, ExitOK, "n1: going to level 1\n", ""},
		{[]string{"g", "3"}, ExitOK, "g: going to level 3: no entry of g runs at level 3, so every process of it stops\n", ""},
		{[]string{"nope", "1"}, ExitFail, "", "clinit: no such group: nope\n"},
		{[]string{}, ExitOK, "cltab reread: no group changed\n", ""},
	} {
		code, out, errOut := s.clinit(tc.args...)
		if code != tc.code || out != tc.stdout || errOut != tc.stderr {
			t.Errorf("clinit %q: status %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out, errOut, tc.code, tc.stdout, tc.stderr)
		}
	}
	// -v prints the answer, then the status lines (clstat's), which
	// show the level just told; --status the same lines alone.
	code, out, _ := s.clinit("-v", "g", "2")
	answer, rest, _ := strings.Cut(out, "\n")
	st, err := api.ParseClstat(rest)
	if g, ok := st.Group("g"); code != ExitOK || answer != "g: going to level 2" || err != nil || !ok || g.Level != "2" || len(st.Groups) != 2 {
		t.Errorf("-v g 2: status %d, %q (%v)", code, out, err)
	}
	code, out, _ = s.clinit("--status")
	st, err = api.ParseClstat(out)
	if g, ok := st.Group("n1"); code != ExitOK || err != nil || !ok || g.Level != "1" || len(st.Groups) != 2 {
		t.Errorf("--status: status %d, %q (%v)", code, out, err)
	}
	code, out, _ = s.clinit("--json")
	st = api.Status{}
	if err := json.Unmarshal([]byte(out), &st); code != ExitOK || err != nil || st.Node != "n1" || len(st.Groups) != 2 || len(st.Groups[0].Entries) != 2 {
		t.Errorf("--json: status %d, %v, %+v", code, err, st)
	}
}

// The socket is the -s flag's, else the cltab's setting, even when the
// cltab is invalid otherwise (that is what a reread reports, line by line).
func TestSocketFromCltabAndInvalidReread(t *testing.T) {
	s := serveDaemon(t, "g:a:1:off:\n")
	writeFile(t, s.cltab, ":::socket:"+s.sock+"\ng:a:1:off:\ng:a:2:bogus:\n")
	code, out, errOut := run("-c", s.cltab)
	if code != ExitFail || out != "" || !strings.HasPrefix(errOut, s.cltab+":3: ") || !strings.HasSuffix(errOut, "\nclinit: invalid cltab, nothing changed\n") {
		t.Fatalf("reread of an invalid cltab: status %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// -k answers once the daemon stopped every group and its process
// exited (the client waits for that on a pidfd): the daemon is a child
// process here, the test binary as a stand-in.
func TestKill(t *testing.T) {
	dir := tempDir(t)
	sock := filepath.Join(dir, "sock")
	// Started through the reaper, not os/exec: the engines other tests
	// of this package run start the reaper, which waits for every child
	// of the test process, an exec.Cmd's too.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pid, exited, err := reaper.Start([]string{os.Args[0]}, reaper.Attrs{Env: append(os.Environ(), fakeShutdownEnv+"="+sock), Stdout: w})
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if line != "listening\n" {
		syscall.Kill(pid, syscall.SIGKILL)
		<-exited
		t.Fatalf("the stand-in daemon does not say it listens: %q", line)
	}
	// -v adds nothing after -k.
	code, stdout, errOut := run("-c", filepath.Join(dir, "cltab"), "-s", sock, "-k", "-v")
	if code != ExitOK || stdout != "every group stopped; daemon exiting\n" || errOut != "" {
		t.Errorf("-k: status %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	// Exited: a zombie, or reaped already by the reaper.
	if testkit.Alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Error("-k returned before the daemon exited")
	}
	if x := <-exited; !x.Status.Exited() || x.Status.ExitStatus() != 0 {
		t.Errorf("the stand-in daemon: %v", x.Status)
	}
}

func TestNoDaemon(t *testing.T) {
	dir := tempDir(t)
	sock := filepath.Join(dir, "sock")
	for _, args := range [][]string{{"g", "1"}, {}, {"--status"}, {"-k"}, {"--hastat"}, {"--ha", "g", "1"}, {"--watch"}} {
		code, out, errOut := run(append([]string{"-c", filepath.Join(dir, "cltab"), "-s", sock}, args...)...)
		if code != ExitNoDaemon || out != "" || !strings.Contains(errOut, sock) || !strings.Contains(errOut, "is clinit -d running?") {
			t.Errorf("clinit %q with no daemon: status %d, stdout %q, stderr %q; want %d naming %s", args, code, out, errOut, ExitNoDaemon, sock)
		}
	}
}

// fakeDaemon answers the cluster requests on a real socket the way a
// clustered daemon does, and records what it was asked.
type fakeDaemon struct {
	sock   string
	hastat api.Hastat
	asked  chan *http.Request
	bodies chan []byte
}

func serveFake(t *testing.T, h api.Hastat) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{sock: filepath.Join(tempDir(t), "sock"), hastat: h, asked: make(chan *http.Request, 10), bodies: make(chan []byte, 10)}
	ln, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	var body bytes.Buffer
	body.ReadFrom(r.Body)
	f.asked <- r
	f.bodies <- body.Bytes()
	switch r.URL.Path {
	case api.PathHastat:
		json.NewEncoder(w).Encode(f.hastat)
	case api.PathHA:
		var req api.HARequest
		json.Unmarshal(body.Bytes(), &req)
		if req.Group == "nope" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.Error{Error: "no such group in the cltab: nope"})
			return
		}
		json.NewEncoder(w).Encode(api.Message{Message: req.Group + ": at " + req.Level + " in the hactl"})
	case api.PathWatch:
		enc := json.NewEncoder(w)
		enc.Encode(api.Event{Node: "n1", Group: "web", Level: "start", State: "DONE"})
		enc.Encode(api.Event{Node: "n2", NodeState: "dead"})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeDaemon) clinit(args ...string) (code int, stdout, stderr string) {
	return run(append([]string{"-c", filepath.Join(filepath.Dir(f.sock), "cltab"), "-s", f.sock}, args...)...)
}

// request returns the next request the fake daemon got and its body.
func (f *fakeDaemon) request(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	select {
	case r := <-f.asked:
		return r, <-f.bodies
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon was asked nothing")
		return nil, nil
	}
}

func TestHastatCommand(t *testing.T) {
	since := time.Date(2026, 11, 23, 2, 0, 0, 0, time.Local)
	h := api.Hastat{Node: "n1",
		Groups: []api.HAGroupStatus{{Group: "web", Level: "start", State: "DONE", Node: "n2", Since: since}},
		Nodes:  []api.NodeStatus{{Node: "n1", State: api.NodeAlive, Load: 0.25}, {Node: "n2", State: api.NodeAlive}}}
	f := serveFake(t, h)
	code, out, errOut := f.clinit("--hastat")
	if code != ExitOK || errOut != "" || out != h.Explained() || !strings.HasPrefix(out, "web start DONE n2  since 2026-11-23 02:00:00\n") {
		t.Errorf("--hastat: status %d, stderr %q, stdout %q", code, errOut, out)
	}
	if r, _ := f.request(t); r.Method != http.MethodGet || r.URL.Path != api.PathHastat {
		t.Errorf("--hastat asked %s %s", r.Method, r.URL.Path)
	}
	code, out, _ = f.clinit("--hastat", "--json")
	var got api.Hastat
	if err := json.Unmarshal([]byte(out), &got); code != ExitOK || err != nil || got.Text() != h.Text() {
		t.Errorf("--hastat --json: status %d, %v, %q", code, err, out)
	}
	// --hastat PATH (with a /) is the path of the file, not the view: a
	// tell follows.
	f.request(t)
	code, _, _ = f.clinit("--hastat", "/x/hastat", "--status")
	if r, _ := f.request(t); code != ExitFail || r.URL.Path != api.PathStatus {
		t.Errorf("--hastat /x/hastat --status: status %d, asked %s", code, r.URL.Path)
	}
}

func TestHACommand(t *testing.T) {
	f := serveFake(t, api.Hastat{})
	for _, tc := range []struct {
		args   []string
		prefer []string // nil: kept as it is
	}{
		{[]string{"--ha", "web", "start"}, nil},
		{[]string{"--ha", "web", "start", "--prefer", "n2,n1"}, []string{"n2", "n1"}},
		{[]string{"--ha", "web", "start", "--prefer", ""}, []string{}},
	} {
		code, out, errOut := f.clinit(tc.args...)
		if code != ExitOK || out != "web: at start in the hactl\n" || errOut != "" {
			t.Errorf("clinit %q: status %d, stdout %q, stderr %q", tc.args, code, out, errOut)
		}
		r, body := f.request(t)
		var req api.HARequest
		if err := json.Unmarshal(body, &req); err != nil || r.Method != http.MethodPost || r.URL.Path != api.PathHA ||
			req.Group != "web" || req.Level != "start" || (req.Prefer == nil) != (tc.prefer == nil) || strings.Join(req.Prefer, ",") != strings.Join(tc.prefer, ",") {
			t.Errorf("clinit %q sent %s %s %s", tc.args, r.Method, r.URL.Path, body)
		}
	}
	if code, out, errOut := f.clinit("--ha", "nope", "start"); code != ExitFail || out != "" || errOut != "clinit: no such group in the cltab: nope\n" {
		t.Errorf("--ha of an unknown group: status %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestWatchCommand(t *testing.T) {
	f := serveFake(t, api.Hastat{})
	code, out, errOut := f.clinit("--watch", "n2")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != ExitOK || errOut != "" || len(lines) != 2 {
		t.Fatalf("--watch: status %d, stderr %q, stdout %q", code, errOut, out)
	}
	var ev api.Event
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil || ev.Node != "n2" || ev.NodeState != "dead" {
		t.Errorf("--watch's second line %q: %v", lines[1], err)
	}
	if r, _ := f.request(t); r.URL.Path != api.PathWatch || r.URL.Query().Get("node") != "n2" {
		t.Errorf("--watch n2 asked %s", r.URL)
	}
}
