package t

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
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
			// Every value as text: numbers as they read (pid, exit).
			var raw map[string]any
			ev := map[string]string{}
			if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
				ev["bad"] = sc.Text()
			}
			for k, v := range raw {
				ev[k] = fmt.Sprint(v)
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
	waitAlive(t, nodes, 2, "2 alive")
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

// --watch NODE for a node that is not in the cluster is an error that
// names the members, at once, not a stream that never says anything.
func TestWatchUnknownNode(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "g:a:1:once:true\n")
	out, errOut, code := d.clinit("--watch", "nosuch")
	want := "clinit: no such node: nosuch is not in this cluster (members: testnode)\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("clinit --watch nosuch: status %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
	// The node itself is one.
	w := startWatch(t, d, "testnode")
	d.tell("g", "1")
	eventually(t, hang, func() bool { return w.saw("event", "state", "node", "testnode", "group", "g", "state", "DONE") },
		"g DONE in --watch testnode; got %v", w.events())
}

// A respawn entry's restarts are in the stream, with how the last run
// ended, and so is its throttle, with until when and why.
func TestWatchRespawnAndThrottle(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, ":::respawnlimit:2\n:::respawnpause:60s\ng:crash:1:respawn:exit 3\ng:ok:1:respawn:exec sleep 1000\n")
	w := startWatch(t, d)
	eventually(t, hang, func() bool { return w.saw("event", "member", "node", "testnode") }, "the stream to start")
	d.tell("g", "1")
	eventually(t, hang, func() bool {
		return w.saw("event", "respawn", "node", "testnode", "group", "g", "tag", "crash", "exit", "3", "restarts", "2") &&
			w.saw("event", "throttle", "node", "testnode", "group", "g", "tag", "crash", "why", "respawning too rapidly")
	}, "respawns of crash, then its throttle; got %v", w.events())
	for _, ev := range w.events() {
		if ev["event"] == "throttle" && ev["until"] == "" {
			t.Errorf("throttle without until: %v", ev)
		}
		if ev["event"] == "respawn" && (ev["pid"] == "" || ev["pid"] == "0") {
			t.Errorf("respawn without the new pid: %v", ev)
		}
		if ev["tag"] == "ok" && ev["event"] == "respawn" {
			t.Errorf("a running entry reported as respawned: %v", ev)
		}
	}
	// A start after a tell is no respawn: at level 1 again, crash starts
	// (no event), is respawned twice, and rests at its third exit.
	d.tellDone("g", "9")
	before := len(w.events())
	d.tell("g", "1")
	count := func() (respawns, throttles int) {
		for _, ev := range w.events()[before:] {
			switch {
			case ev["event"] == "respawn" && ev["tag"] == "ok":
				t.Fatalf("a start after a level change reported as a respawn: %v", ev)
			case ev["event"] == "respawn":
				respawns++
			case ev["event"] == "throttle":
				throttles++
			}
		}
		return
	}
	eventually(t, hang, func() bool { _, th := count(); return th == 1 }, "crash throttled again; got %v", w.events()[before:])
	if r, _ := count(); r != 2 {
		t.Fatalf("%d respawns of crash at level 1 again, want 2 (the limit): %v", r, w.events()[before:])
	}
}

// The HA decisions are in the stream with their reasons: a node ruled
// out when its test fails, each assignment, the fencing of a dead owner
// (run by the leader, committed for all), and a lease lapse when quorum
// is lost.
func TestWatchHADecisions(t *testing.T) {
	t.Parallel()
	// The first fence fails: the stream shows it, and the retry.
	tab := strings.Replace(haCltab, ":::fencetime:2s", ":::fencetime:60s\n:::lease:2s\n"+
		":::stomith:test -e {dir}/fence.once || { touch {dir}/fence.once; echo first try fails >&2; exit 3; }; echo \"$1\" >> {dir}/fenced", 1)
	nodes, shared := startHA(t, tab)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	w1, w3 := startWatch(t, n1.daemon), startWatch(t, n3.daemon)
	only2 := startWatch(t, n1.daemon, "n2")
	eventually(t, hang, func() bool {
		return w1.saw("event", "member", "node", "n3") && w3.saw("event", "member", "node", "n1") && only2.saw("node", "n2")
	},
		"the streams to start")

	// n1 ranks first and fails its test: ruled out, then web goes to n2.
	writeFile(t, filepath.Join(shared, "fail.n1"), "")
	n1.clinit("--ha", "web", "start", "--prefer", "n1,n2")
	if o := waitOwner(t, nodes, "start"); o != "n2" {
		t.Fatalf("web on %s, want n2", o)
	}
	for _, w := range []*watcher{w1, w3} {
		eventually(t, hang, func() bool {
			return w.saw("event", "assign", "group", "web", "assigned", "n1", "why", "runs nowhere; n1 ranks first of 3") &&
				w.saw("event", "ruled_out", "group", "web", "node", "n1") &&
				w.saw("event", "assign", "group", "web", "assigned", "n2")
		}, "web assigned to n1, n1 ruled out, web assigned to n2; got %v", w.events())
	}
	for _, ev := range w1.events() {
		if ev["event"] == "ruled_out" && (ev["why"] == "" || ev["until"] == "") {
			t.Errorf("a rule-out without why or until: %v", ev)
		}
	}

	// The owner dies: the leader fences it, the first try fails, the
	// retry succeeds and is committed, web goes to n3 (n1 is still ruled
	// out).
	n2.kill9()
	if o := waitOwner(t, []*node{n1, n3}, "start"); o != "n3" {
		t.Fatalf("web on %s after n2 died, want n3", o)
	}
	eventually(t, hang, func() bool {
		return (w1.saw("event", "fencing", "node", "n2") || w3.saw("event", "fencing", "node", "n2")) &&
			(w1.saw("event", "fence_failed", "node", "n2") || w3.saw("event", "fence_failed", "node", "n2")) &&
			w1.saw("event", "fenced", "node", "n2") && w3.saw("event", "fenced", "node", "n2") &&
			w1.saw("event", "assign", "group", "web", "assigned", "n3", "why", "n2 is gone; n3 ranks first of 1")
	}, "n2's first fence failed, the retry fenced it and was committed, web assigned to n3; n1 saw %v\nn3 saw %v", w1.events(), w3.events())
	eventually(t, hang, func() bool {
		return only2.saw("event", "fenced", "node", "n2") && only2.saw("event", "assign", "assigned", "n2")
	}, "--watch n2 to show n2's assignment and fencing; got %v", only2.events())
	if !only2.all(func(ev map[string]string) bool { return ev["node"] == "n2" || ev["assigned"] == "n2" }) {
		t.Errorf("--watch n2 printed events about other nodes: %v", only2.events())
	}

	// n3 dies too: n1 alone has no quorum, and its lease lapses.
	n3.kill9()
	eventually(t, hang, func() bool { return w1.saw("event", "lease_lapsed", "node", "n1") },
		"n1's lease lapse in its stream; got %v", w1.events())
}
