package t

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/client"
)

// How long a daemon started after a SIGKILL of its predecessor takes to be
// right again with 100 children to adopt: its socket answering with every
// child adopted, and clstat rewritten by it. Measured and logged; the
// bound is a hang guard.
func TestRestartAdoptsHundred(t *testing.T) {
	const n = 100
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "g:s%d:1:respawn:echo $$ >> {dir}/starts; exec sleep 1000\n", i)
	}
	d := startDaemon(t, b.String())
	d.tellDone("g", "1")
	waitLines(t, d.path("starts"), n)
	before := pids(d.jsonStatus(), map[string]bool{"g": true})
	if len(before) != n {
		t.Fatalf("%d entries in the status, want %d", len(before), n)
	}

	d.cmd.Process.Kill()
	<-d.done
	began := time.Now()
	d2 := launch(t, d.dir)
	c := client.New(d2.sock)
	var ready, adopted, clstat time.Duration
	deadline := time.Now().Add(hang)
	for (ready == 0 || adopted == 0 || clstat == 0) && time.Now().Before(deadline) {
		if ready == 0 {
			select {
			case <-d2.ready:
				ready = time.Since(began)
			default:
			}
		}
		if adopted == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.Status(ctx)
			cancel()
			if err == nil && len(st.Groups) == 1 && st.Groups[0].Level == "1" && st.Groups[0].State == "DONE" {
				now := pids(st, map[string]bool{"g": true})
				same := len(now) == n
				for tag, p := range before {
					same = same && now[tag] == p
				}
				if same {
					adopted = time.Since(began)
				}
			}
		}
		if clstat == 0 {
			if fi, err := os.Stat(d2.clstat); err == nil && fi.ModTime().After(began) {
				if data, _ := os.ReadFile(d2.clstat); string(data) == "g 1 DONE\n" {
					clstat = time.Since(began)
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if ready == 0 || adopted == 0 || clstat == 0 {
		t.Fatalf("after %v: ready %v, every child adopted %v, clstat rewritten %v", hang, ready, adopted, clstat)
	}
	t.Logf("restart after SIGKILL with %d children: READY %v, status right (all adopted) %v, clstat rewritten %v after the new daemon was started",
		n, ready.Round(100*time.Microsecond), adopted.Round(100*time.Microsecond), clstat.Round(100*time.Microsecond))
	if l := len(lines(d.path("starts"))); l != n {
		t.Errorf("%d starts across the restart, want %d: none started twice", l, n)
	}
}
