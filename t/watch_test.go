package t

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// watcher runs clinit --watch against a daemon and collects its events.
type watcher struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	evs  []map[string]string
	done chan error
}

func startWatch(t *testing.T, d *daemon, args ...string) *watcher {
	t.Helper()
	w := &watcher{done: make(chan error, 1)}
	w.cmd = exec.Command(clinitBin, append([]string{"-c", d.cltab, "-s", d.sock, "--watch"}, args...)...)
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev map[string]string
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = map[string]string{"bad": sc.Text()}
			}
			w.mu.Lock()
			w.evs = append(w.evs, ev)
			w.mu.Unlock()
		}
		w.done <- w.cmd.Wait()
	}()
	t.Cleanup(func() { w.cmd.Process.Kill() })
	return w
}

// saw reports whether an event with all of kv arrived.
func (w *watcher) saw(kv ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
next:
	for _, ev := range w.evs {
		for i := 0; i+1 < len(kv); i += 2 {
			if ev[kv[i]] != kv[i+1] {
				continue next
			}
		}
		return true
	}
	return false
}

// events returns what arrived so far, for failure messages.
func (w *watcher) events() []map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]map[string]string(nil), w.evs...)
}

func (w *watcher) all(f func(map[string]string) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.evs {
		if !f(ev) {
			return false
		}
	}
	return true
}

func TestWatch(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 2, webCltab)
	eventually(t, hang, everyNode(nodes, func(nd *node) bool { return nd.hastat().Alive() == 2 }), "2 alive")
	all := startWatch(t, nodes[0].daemon)
	only2 := startWatch(t, nodes[0].daemon, "n2")
	// Each stream starts with the current state: both members alive.
	eventually(t, hang, func() bool {
		return all.saw("node", "n2", "node_state", "alive") && only2.saw("node", "n2", "node_state", "alive")
	}, "both streams to start")
	nodes[1].tell("db", "run")
	nodes[0].tell("db", "run")
	if !poll(hang, func() bool {
		return all.saw("node", "n2", "group", "db", "level", "run", "state", "DONE") &&
			all.saw("node", "n1", "group", "db", "level", "run", "state", "DONE") &&
			only2.saw("node", "n2", "group", "db", "state", "DONE")
	}) {
		t.Fatalf("timed out waiting for the events of both nodes' db\nall: %v\nn2: %v\nn1's view: %+v\nn2's view: %+v", all.events(), only2.events(), nodes[0].hastat(), nodes[1].hastat())
	}
	if !only2.all(func(ev map[string]string) bool { return ev["node"] == "n2" }) {
		t.Fatalf("--watch n2 printed events of other nodes: %v", only2.evs)
	}
	// A member's departure is an event too.
	nodes[1].clinit("-k")
	eventually(t, hang, func() bool { return all.saw("node", "n2", "node_state", "left") }, "n2 left, in the stream")
	// The stream ends, with status 0, when the daemon stops.
	nodes[0].clinit("-k")
	for _, w := range []*watcher{all, only2} {
		select {
		case err := <-w.done:
			if err != nil {
				t.Fatalf("clinit --watch ended with %v", err)
			}
		case <-time.After(hang):
			t.Fatal("clinit --watch still running after the daemon stopped")
		}
	}
}
