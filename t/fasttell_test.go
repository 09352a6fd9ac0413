package t

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// initTrace runs clinit with GODEBUG=inittrace=1 and returns its stdout,
// the other lines of its stderr, its status, and the packages Go
// initialised before it exited.
func initTrace(t *testing.T, args ...string) (stdout, stderr string, code int, inits []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, clinitBin, args...)
	cmd.Env = append(cmd.Environ(), "GODEBUG=inittrace=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("clinit %q hung", args)
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	var rest []string
	for _, l := range strings.SplitAfter(e.String(), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "init" && strings.HasPrefix(f[2], "@") {
			inits = append(inits, f[1])
			continue
		}
		rest = append(rest, l)
	}
	return o.String(), strings.Join(rest, ""), code, inits
}

// The packages a plain tell must not wait for: the daemon's, the cluster's
// and their codecs'.
var heavyInits = []string{"encoding/gob", "net/http", "github.com/hashicorp/memberlist", "github.com/hashicorp/raft",
	"go.uber.org/zap/zapcore", "github.com/spf13/pflag", "github.com/clinit/clinit/daemon"}

// A plain `clinit GROUP LEVEL` talks to the daemon before the packages of
// the daemon and the cluster are initialised, and answers as the full
// command line does, which the same tell with -v goes through.
func TestFastTell(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
:::socket:{dir}/sock
G:a:1:once:true
`, "--node", "n1")
	out, errOut, code, inits := initTrace(t, "-c", d.cltab, "G", "1") // the socket from the cltab
	if code != 0 || out != "G: going to level 1\n" || errOut != "" {
		t.Fatalf("clinit G 1: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, p := range inits {
		for _, h := range heavyInits {
			if p == h {
				t.Errorf("a plain tell initialised %s before it exited (all: %v)", p, inits)
			}
		}
	}
	if len(inits) > 40 {
		t.Errorf("a plain tell initialised %d packages: %v", len(inits), inits)
	}
	d.waitState("G", "1", "DONE")

	// The full path: the same answer, every package initialised.
	out, errOut, code, full := initTrace(t, "-c", d.cltab, "-s", d.sock, "-v", "G", "2")
	if code != 0 || !strings.HasPrefix(out, "G: going to level 2: "+noEntryNote("G", "2")+"\n") || errOut != "" {
		t.Fatalf("clinit -v G 2: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(" "+strings.Join(full, " ")+" ", " github.com/hashicorp/memberlist ") {
		t.Errorf("the full command line did not initialise memberlist: %v", full)
	}

	// Failures read the same both ways.
	for _, args := range [][]string{{"nosuch", "1"}, {"1"}, {"no\"such\\", "1"}} {
		fo, fe, fc, _ := initTrace(t, append([]string{"-s", d.sock}, args...)...)
		so, se, sc, _ := initTrace(t, append([]string{"-s", d.sock, "-v"}, args...)...)
		if fo != so || fe != se || fc != sc || fc == 0 {
			t.Errorf("clinit %q: fast status %d, %q, %q; full status %d, %q, %q", args, fc, fo, fe, sc, so, se)
		}
	}
}
