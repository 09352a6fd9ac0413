package t

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// go-systemd's journal package sends to /run/systemd/journal/socket, a
// path it lets the build override (-X). These cases build clinit once more
// with the socket in a directory of their own, listen there as journald
// does, and give the daemon a stderr that JOURNAL_STREAM names, as systemd
// does for a unit.
var journalBuild struct {
	once   sync.Once
	bin    string
	socket string
	err    error
}

func journalClinit(t *testing.T) (bin, socket string) {
	t.Helper()
	journalBuild.once.Do(func() {
		// Beside clinitBin: removed with it when the tests end.
		dir := filepath.Dir(clinitBin)
		journalBuild.bin = filepath.Join(dir, "clinit-journal")
		journalBuild.socket = filepath.Join(dir, "journal.sock")
		build := exec.Command("go", "build", "-o", journalBuild.bin,
			"-ldflags", "-X github.com/coreos/go-systemd/v22/journal.journalSocket="+journalBuild.socket,
			"github.com/clinit/clinit/cmd/clinit")
		build.Dir = ".."
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			journalBuild.err = fmt.Errorf("building clinit with the journal socket at %s: %v\n%s", journalBuild.socket, err, out)
		}
	})
	if journalBuild.err != nil {
		t.Fatal(journalBuild.err)
	}
	return journalBuild.bin, journalBuild.socket
}

// underSystemd runs the daemon as a unit's would be: bin, stderr into a
// file, and JOURNAL_STREAM naming that file's device and inode.
func underSystemd(t *testing.T, bin, stderrPath string) func(*exec.Cmd) {
	f, err := os.Create(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return func(c *exec.Cmd) {
		c.Path = bin
		c.Stderr = f
		c.Env = append(withoutEnv(c.Env, "JOURNAL_STREAM"), fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	}
}

func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// journalEntries receives datagrams of journald's native protocol.
type journalEntries struct {
	mu      sync.Mutex
	entries []map[string]string
	bad     []string
}

func listenJournal(t *testing.T, path string) *journalEntries {
	t.Helper()
	os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); os.Remove(path) })
	j := &journalEntries{}
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			e, err := parseJournalDatagram(buf[:n])
			j.mu.Lock()
			if err != nil {
				j.bad = append(j.bad, err.Error())
			} else {
				j.entries = append(j.entries, e)
			}
			j.mu.Unlock()
		}
	}()
	return j
}

// parseJournalDatagram reads one entry: NAME=value lines, or NAME, a
// newline, a 64-bit little-endian length, the value and a newline.
func parseJournalDatagram(b []byte) (map[string]string, error) {
	e := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("entry without a final newline: %q", b)
		}
		line := b[:nl]
		if k, v, ok := bytes.Cut(line, []byte("=")); ok {
			e[string(k)] = string(v)
			b = b[nl+1:]
			continue
		}
		rest := b[nl+1:]
		if len(rest) < 8 {
			return nil, fmt.Errorf("field %s: no length", line)
		}
		size := binary.LittleEndian.Uint64(rest)
		if uint64(len(rest)) < 8+size+1 {
			return nil, fmt.Errorf("field %s: %d bytes announced, %d there", line, size, len(rest)-8)
		}
		e[string(line)] = string(rest[8 : 8+size])
		b = rest[8+size+1:]
	}
	return e, nil
}

// find returns the first entry that has every field of want.
func (j *journalEntries) find(want map[string]string) (map[string]string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range j.entries {
		ok := true
		for k, v := range want {
			if e[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return e, true
		}
	}
	return nil, false
}

func (j *journalEntries) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var b strings.Builder
	for _, e := range j.entries {
		fmt.Fprintf(&b, "%v\n", e)
	}
	for _, s := range j.bad {
		fmt.Fprintf(&b, "unreadable: %s\n", s)
	}
	return b.String()
}

// Under systemd the daemon logs to the journal: a child's output line at
// info with its group, tag and pid as fields, a failure at warning, the
// daemon's own lines with the node; nothing of it on stderr.
func TestJournalNative(t *testing.T) {
	bin, socket := journalClinit(t)
	j := listenJournal(t, socket)
	dir := newCaseDir(t)
	writeFile(t, filepath.Join(dir, "cltab"), "web:hello:1:wait:echo hello from web\nweb:bad:1:wait:exit 3\n")
	stderr := filepath.Join(dir, "stderr")
	d := launchWith(t, dir, underSystemd(t, bin, stderr), "--node", "jn1")
	d.waitReady()
	d.tell("web", "1")
	d.waitState("web", "1", "FAILED")

	var hello map[string]string
	eventually(t, hang, func() bool {
		var ok bool
		hello, ok = j.find(map[string]string{"GROUP": "web", "TAG": "hello", "PRIORITY": "6", "SYSLOG_IDENTIFIER": "clinit"})
		return ok && strings.HasPrefix(hello["MESSAGE"], "hello from web")
	}, "the child's line in the journal; got:\n%s", j)
	if pid, err := strconv.Atoi(hello["PID"]); err != nil || pid <= 0 {
		t.Errorf("child's line: PID=%q, want its pid", hello["PID"])
	}
	eventually(t, hang, func() bool {
		_, ok := j.find(map[string]string{"GROUP": "web", "TAG": "bad", "PRIORITY": "4", "EXIT": "3"})
		return ok
	}, "the failed wait at warning priority; got:\n%s", j)
	if e, ok := j.find(map[string]string{"NODE": "jn1", "PRIORITY": "6"}); !ok || !strings.Contains(e["MESSAGE"], "clinit daemon ready") {
		t.Errorf("no ready line with NODE=jn1 at info; got:\n%s", j)
	}
	d.clinit("-k")
	d.waitExit()
	if data, _ := os.ReadFile(stderr); len(data) != 0 {
		t.Errorf("stderr written while the journal takes the log:\n%s", data)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.bad) > 0 {
		t.Errorf("datagrams not in the journal's native protocol: %q", j.bad)
	}
}

// When the journal's socket does not answer, the log goes to stderr (the
// journal's stream) with `<N>` priority prefixes, after a warning that
// says so. With JOURNAL_STREAM naming another file, stderr is as always.
func TestJournalPrefixes(t *testing.T) {
	bin, socket := journalClinit(t)
	os.Remove(socket) // nobody listens
	dir := newCaseDir(t)
	writeFile(t, filepath.Join(dir, "cltab"), "web:hello:1:wait:echo hello from web\nweb:bad:1:wait:exit 3\n")
	stderr := filepath.Join(dir, "stderr")
	d := launchWith(t, dir, underSystemd(t, bin, stderr))
	d.waitReady()
	d.tell("web", "1")
	d.waitState("web", "1", "FAILED")
	d.clinit("-k")
	d.waitExit()
	got := lines(stderr)
	want := []string{"<4>the journal's socket does not answer", "<6>clinit daemon ready", "<6>hello from web\t{\"group\": \"web\", \"tag\": \"hello\"", "<4>failed\t{\"group\": \"web\", \"tag\": \"bad\""}
	for _, w := range want {
		found := false
		for _, l := range got {
			found = found || strings.HasPrefix(l, w)
		}
		if !found {
			t.Errorf("no stderr line starting %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
	for _, l := range got {
		if !strings.HasPrefix(l, "<") {
			t.Errorf("stderr line without a priority prefix: %q", l)
		}
	}

	// JOURNAL_STREAM names a file that is not stderr: not under systemd.
	other := newCaseDir(t)
	writeFile(t, filepath.Join(other, "cltab"), "web:hello:1:wait:echo hello from web\n")
	plain := launchWith(t, other, func(c *exec.Cmd) {
		c.Env = append(withoutEnv(c.Env, "JOURNAL_STREAM"), "JOURNAL_STREAM=1:1")
	})
	plain.waitReady()
	plain.tellDone("web", "1")
	eventually(t, hang, func() bool { return plain.logHas("\tinfo\t", "hello from web", `"tag": "hello"`) },
		"the child's line in the plain form on stderr")
	if strings.Contains(plain.log.String(), "<6>") {
		t.Errorf("priority prefixes on a stderr that is not the journal's:\n%s", plain.log.String())
	}
}
