package t

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePortRange finds n consecutive ports free for TCP and UDP on
// loopback (the demo's three nodes use six from its base).
func freePortRange(t *testing.T, n int) int {
	t.Helper()
next:
	for range 200 {
		base := 20000 + rand.IntN(30000)
		var held []func()
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				for _, c := range held {
					c()
				}
				continue next
			}
			pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ln.Close()
				for _, c := range held {
					c()
				}
				continue next
			}
			held = append(held, func() { ln.Close(); pc.Close() })
		}
		for _, c := range held {
			c()
		}
		return base
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// tagged lists the live processes whose environment holds kv.
func tagged(kv string) []string {
	want := []byte(kv + "\x00")
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !(bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...))) {
			continue
		}
		if alive(pid) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			out = append(out, fmt.Sprintf("%d(%s)", pid, bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '})))
		}
	}
	return out
}

// make demo's two scripts, run by dash (the /bin/sh of Debian and
// Ubuntu, whose kill once failed there in silence) as make runs them,
// each from a directory holding a copy of examples/: they succeed, show
// what they say they show, and leave no process behind.
func TestDemoLeavesNothingRunning(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("dash")
	if err != nil {
		sh = "/bin/sh"
		t.Logf("no dash here: running the demos with %s", sh)
	}
	dir := newCaseDir(t)
	if err := os.Mkdir(filepath.Join(dir, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"demo.sh", "demo-cluster.sh", "cltab", "ha-cltab"} {
		data, err := os.ReadFile(filepath.Join("..", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "examples", f), string(data))
	}
	tag := "CLT_DEMO=" + dir
	defer func() {
		for _, l := range tagged(tag) {
			pid, _ := strconv.Atoi(l[:strings.IndexByte(l, '(')])
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	for _, c := range []struct {
		script string
		want   []string
	}{
		{"demo.sh", []string{"httpd respawned: pid ", "daemon exited; clstat removed: yes"}},
		// The owner's services die with it, and the script checks they
		// did (dash's kill once failed there without a word).
		{"demo-cluster.sh", []string{"children (its keeper, web's services) are gone", "web moved from n", " s after the kill"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, sh, filepath.Join("examples", c.script), clinitBin)
		cmd.Dir = dir
		cmd.Env = append(withoutEnv(withoutEnv(os.Environ(), "NOTIFY_SOCKET"), "JOURNAL_STREAM"),
			tag, "CLINIT_DEMO_PORT="+strconv.Itoa(freePortRange(t, 6)))
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", sh, c.script, err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: no %q in its output:\n%s", c.script, w, out)
			}
		}
		var left []string
		if !poll(hang, func() bool { left = tagged(tag); return len(left) == 0 }) {
			t.Fatalf("%s left processes running: %v\n%s", c.script, left, out)
		}
		t.Logf("%s:\n%s", c.script, out)
	}
}
