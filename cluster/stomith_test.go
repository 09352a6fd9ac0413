package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/reaper"
	"github.com/clinit/clinit/internal/reaper/reapertest"
)

// runner is what the daemon gives the cluster: commands run by the one
// reaper.
func runner(ctx context.Context, argv []string) ([]byte, error) {
	return reaper.Output(ctx, argv, reaper.Attrs{})
}

// fenceNode is one member whose fencing command runs through the reaper.
type fenceNode struct {
	*Cluster
	cmd string
}

func startFencer(t *testing.T, cltabText string) *fenceNode {
	t.Helper()
	tab, err := cltab.Parse("cltab", []byte(cltabText))
	if err != nil {
		t.Fatal(err)
	}
	n := &fenceNode{}
	n.cmd, _ = tab.Setting("stomith")
	n.Cluster, err = Start(Config{Node: "a", Log: testLogger(t), Tab: tab, Run: runner})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// fence runs the fencing command for node and returns the outcome:
// "NODE fenced", or "NODE failed: ERROR".
func (n *fenceNode) fence(t *testing.T, node string) string {
	t.Helper()
	if _, err := n.runFence(n.cmd, node); err != nil {
		return node + " failed: " + err.Error()
	}
	return node + " fenced"
}

// Fences run back to back, each leaving an orphan, while other commands
// leave orphans beside them: every exit status is taken for what it is.
// (The stomith command run by os/exec, racing the daemon's reaper, was
// taken for a failure about 40% of the time, and run again.)
func TestFenceStatusesUnderTheReaper(t *testing.T) {
	if err := reaper.BecomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	defer reapertest.Orphans(t)()
	// Nodes whose name ends in 3 or 7 fail to fence, with status 3.
	n := startFencer(t, `:::stomith:/bin/true & case "$1" in *[37]) exit 3;; esac`+"\n")
	wrong := 0
	for i := range 300 {
		node := fmt.Sprintf("d%d", i)
		want := node + " fenced"
		if i%10 == 3 || i%10 == 7 {
			want = node + " failed: exit status 3"
		}
		if got := n.fence(t, node); got != want {
			wrong++
			t.Errorf("fence %d: %q, want %q", i, got, want)
		}
		if wrong > 10 {
			t.Fatal("giving up")
		}
	}
}

// A fencing command that hangs is killed after :::stomithtimeout: and
// counts as failed, with a message naming the setting.
func TestFenceTimeout(t *testing.T) {
	n := startFencer(t, ":::stomith:/bin/sleep 100\n:::stomithtimeout:200ms\n")
	got := n.fence(t, "b")
	if !strings.HasPrefix(got, "b failed: still running after 200ms (:::stomithtimeout:)") {
		t.Errorf("outcome %q, want a failure after the timeout", got)
	}
}

func TestFenceWithoutRunner(t *testing.T) {
	out, err := runStomith(nil, "true", "b", time.Second)
	if err == nil || out != nil || !strings.Contains(err.Error(), "no command runner") {
		t.Errorf("out %q, err %v; want no runner", out, err)
	}
}
