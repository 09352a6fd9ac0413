package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/internal/testkit"
)

// haCltab is the cltab of the failover and handoff figures, the same on
// the three nodes: web claims at plan, always passes its test, and its
// service is the timestamp helper (stamp.go) in hold mode, which writes
// the node it runs on and its first clock reading to
// shared/web.NODE.stamp. Fencing is configured: a stomith command that
// records the fenced node, and a fencetime long enough (60 s) that a
// quick failover can only come from the fence.
const haCltab = `:::nodes:3
:::fencetime:60s
:::stomith:echo $1 >> {shared}/fenced
:::stoptimeout:2s
web:claim:plan:once:true
web:check:test:test:true
web:srv:start:respawn:exec {stamp} {shared}/web.$CLINIT_NODE.stamp hold
`

// haCluster starts the three nodes of a failover or handoff figure, puts
// web under HA (`clinit --ha web start`, on n1, as an operator would),
// and waits until every node's hastat shows it DONE on one node.
func (b *bench) haCluster(name string) (*cluster, *multiWatch, *cnode, error) {
	return b.haClusterOf(name, 3, haCltab)
}

// haClusterOf is haCluster with n nodes and a cltab of its own.
func (b *bench) haClusterOf(name string, n int, tab string) (*cluster, *multiWatch, *cnode, error) {
	c, err := b.newCluster(name, n, 3, tab)
	if err != nil {
		return nil, nil, nil, err
	}
	w, owner, err := c.startHA()
	if err != nil {
		c.close()
		return nil, nil, nil, err
	}
	return c, w, owner, nil
}

func (c *cluster) startHA() (*multiWatch, *cnode, error) {
	// The stomith command runs as whichever node fences: the file is
	// everyone's.
	fenced := filepath.Join(c.shared, "fenced")
	if err := os.WriteFile(fenced, nil, 0o666); err != nil {
		return nil, nil, err
	}
	if err := os.Chmod(fenced, 0o666); err != nil {
		return nil, nil, err
	}
	w, err := c.watch()
	if err != nil {
		return nil, nil, err
	}
	if err := c.startAll(3); err != nil {
		w.close()
		return nil, nil, err
	}
	if _, err := c.waitAll(w, c.nodes, func(_ *cnode, v api.Hastat) bool { return v.Alive() == len(c.nodes) }, time.Minute, fmt.Sprintf("%d nodes alive", len(c.nodes))); err != nil {
		w.close()
		return nil, nil, err
	}
	if _, err := c.nodes[0].clinit("--ha", "web", "start"); err != nil {
		w.close()
		return nil, nil, err
	}
	owner, err := c.waitOwner(w, c.nodes, time.Minute)
	if err != nil {
		w.close()
		return nil, nil, err
	}
	return w, owner, nil
}

// waitOwner waits until the hastat of every node of nds shows web at
// start, DONE, on one and the same node, with every node alive.
func (c *cluster) waitOwner(w *multiWatch, nds []*cnode, timeout time.Duration) (*cnode, error) {
	// Whose hastat says first where web runs; then all must agree.
	var owner string
	all := len(c.nodes)
	if _, err := c.waitAll(w, nds[:1], func(_ *cnode, v api.Hastat) bool {
		owner = runsAt(v, "web", "start")
		return owner != "" && v.Alive() == all
	}, timeout, "web placed"); err != nil {
		return nil, err
	}
	if _, err := c.waitAll(w, nds, func(_ *cnode, v api.Hastat) bool {
		return runsAt(v, "web", "start") == owner && v.Alive() == all
	}, timeout, "every node agreeing that web runs on "+owner); err != nil {
		return nil, err
	}
	nd := c.byName(owner)
	if nd == nil {
		return nil, fmt.Errorf("hastat shows web on %q, not a node of the cluster", owner)
	}
	return nd, nil
}

// clearStamps removes the services' timestamp files.
func (c *cluster) clearStamps() error {
	ms, err := filepath.Glob(filepath.Join(c.shared, "web.*.stamp"))
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := os.Remove(m); err != nil {
			return err
		}
	}
	return nil
}

// stampNode is the node of a timestamp file's name, web.NODE.stamp; ""
// for any other name.
func stampNode(name string) string {
	if n, ok := strings.CutPrefix(name, "web."); ok {
		if n, ok := strings.CutSuffix(n, ".stamp"); ok {
			return n
		}
	}
	return ""
}

// takeover is what a failover or handoff run saw, as CLOCK_MONOTONIC
// nanoseconds (0: not seen).
type takeover struct {
	next  *cnode // where web went
	stamp int64  // the new service's first clock reading
	dead  int64  // a survivor's hastat first showed the old owner dead
	done  int64  // every survivor's hastat showed web DONE on next
}

// waitTakeover follows a failover or handoff from old: the first service
// to start on another node (its timestamp file in the shared directory),
// and the survivors' hastat files, until the new service has written its
// stamp, every survivor's hastat shows web DONE on that node, and (with
// needDead) a survivor's hastat has shown old dead.
func (c *cluster) waitTakeover(w *multiWatch, old *cnode, needDead bool, timeout time.Duration) (takeover, error) {
	var t takeover
	shared := len(c.nodes)
	survivors := c.others(old)
	seen := map[int]string{} // survivor -> the node its hastat shows web DONE on
	agreed := func() bool {
		if t.next == nil {
			return false
		}
		for _, s := range survivors {
			if seen[s.i] != t.next.name {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(timeout)
	for t.stamp == 0 || t.done == 0 || (needDead && t.dead == 0) {
		ev, err := w.next(deadline)
		if err != nil {
			what := fmt.Sprintf("stamp seen %v, survivors' hastat agreeing %v", t.stamp != 0, t.done != 0)
			if needDead {
				what += fmt.Sprintf(", %s seen dead %v", old.name, t.dead != 0)
			}
			return t, fmt.Errorf("after %s went: %w (%s); %s's hastat:\n%s", old.name, err, what,
				survivors[0].name, head(survivors[0].rpath("hastat"), 6))
		}
		switch {
		case ev.dir == shared:
			node := stampNode(ev.name)
			if node == "" || t.stamp != 0 {
				continue
			}
			if node == old.name {
				return t, fmt.Errorf("web started again on %s, the node that went", old.name)
			}
			st, err := readStamp(filepath.Join(c.shared, ev.name))
			if err != nil {
				return t, err
			}
			t.stamp, t.next = st.ns, c.byName(node)
			if t.next == nil {
				return t, fmt.Errorf("a web service on an unknown node %q", node)
			}
			if agreed() {
				t.done = ev.ns
			}
		case ev.name == "hastat" && ev.dir != old.i && ev.dir < shared:
			v, err := c.nodes[ev.dir].hastat()
			if err != nil {
				return t, err
			}
			if needDead && t.dead == 0 && v.NodeState(old.name) == api.NodeDead {
				t.dead = ev.ns
			}
			seen[ev.dir] = runsAt(v, "web", "start")
			if t.done == 0 && agreed() {
				t.done = ev.ns
			}
		}
	}
	return t, nil
}

// checkOne asks every live node (the Go client) where web is at a level
// other than stop: it must be exactly one node, want.
func (c *cluster) checkOne(want *cnode) error {
	var on []string
	for _, nd := range c.nodes {
		select {
		case <-nd.d.done:
			continue
		default:
		}
		st, err := nd.d.status()
		if err != nil {
			return fmt.Errorf("%s: %w", nd.name, err)
		}
		for _, g := range st.Groups {
			if g.Group == "web" && g.Level != "stop" {
				on = append(on, nd.name+" ("+g.Level+" "+g.State+")")
			}
		}
	}
	if len(on) != 1 || !strings.HasPrefix(on[0], want.name+" ") {
		return fmt.Errorf("web held on %v, want on %s only", on, want.name)
	}
	return nil
}

// restart starts nd's daemon again (state directory removed) once its
// old one has exited, and waits until every node's hastat shows the
// three nodes alive and web on owner.
func (c *cluster) restart(w *multiWatch, nd, owner *cnode) error {
	select {
	case <-nd.d.done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s's old daemon still running", nd.name)
	}
	if n := killTagged(nd.dir); n > 0 {
		return fmt.Errorf("%s: %d processes left behind by its old daemon", nd.name, n)
	}
	if err := nd.start(); err != nil {
		return err
	}
	got, err := c.waitOwner(w, c.nodes, time.Minute)
	if err != nil {
		return err
	}
	if got != owner {
		return fmt.Errorf("web moved from %s to %s when %s came back", owner.name, got.name, nd.name)
	}
	return c.waitCaughtUp(nd, owner)
}

// settle ends a run: web is held by next alone, and old, started again,
// has caught up with it.
func (c *cluster) settle(w *multiWatch, old, next *cnode) error {
	if err := c.checkOne(next); err != nil {
		return err
	}
	return c.restart(w, old, next)
}

// waitCaughtUp waits until nd's committed state gives web to owner with
// the epoch the owner's does: a voter that came back has the entries
// made while it was away, and the next commit does not wait for the
// leader to reach it again (raft backs off from a peer that failed, for
// seconds after a death of a few). The cluster has its redundancy back;
// a failure before that is a second failure, not the figure's.
func (c *cluster) waitCaughtUp(nd, owner *cnode) error {
	assigned := func(x *cnode) (string, uint64) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h, err := x.d.cl.Hastat(ctx)
		if err != nil {
			return "", 0
		}
		for _, g := range h.Groups {
			if g.Group == "web" {
				return g.Assigned, g.Epoch
			}
		}
		return "", 0
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, want := assigned(owner)
		if a, e := assigned(nd); a == owner.name && e == want && e != 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not catch up with the committed state within a minute", nd.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopHA stops the cluster at the end of a figure: web to stop (so that
// it is not handed from node to node), then every daemon `clinit -k`.
func (c *cluster) stopHA(w *multiWatch) error {
	if _, err := c.nodes[0].clinit("--ha", "web", "stop"); err != nil {
		return err
	}
	if _, err := c.waitAll(w, c.nodes, func(_ *cnode, v api.Hastat) bool {
		g, ok := v.Group("web")
		return len(v.Groups) == 1 && ok && g.Level == "stop" && g.State == "-" && g.Node == "-"
	}, time.Minute, "web stopped"); err != nil {
		return err
	}
	return c.stopAll(3)
}

// benchFailover: the owner of an HA group, killed with its services
// (SIGKILL: the node is gone), to the group's service running on another
// node; three nodes (SPEC 8: median under 2 s).
//
// Each run kills the daemon and every process it started (each is in a
// process group of its own: the bench finds them by the variable every
// process of that node carries in its environment, and kills each
// process group), starting the clock just before the first kill. The
// figure ends at the new service's own first clock reading. Included:
// the leader's fence silence (no renewal for 1.5 s) and its pings of the
// dead node, the fencing (the stomith command, which must name the dead
// node), the commit of the new assignment, plan, test, start, and the
// helper's start-up. Two more rows split it: when a survivor's hastat first showed
// the owner dead (detection), and when both survivors' hastat showed web
// DONE on the new node.
//
// Between runs the killed node is started again (state directory
// removed, so it adopts nothing) and the bench waits until every hastat
// shows three nodes alive and web where it went: web stays there.
func benchFailover(b *bench) error {
	c, w, owner, err := b.haCluster("fo")
	if err != nil {
		return err
	}
	defer c.close()
	defer w.close()
	runs := b.runs(10, 3)
	var fail, detect, agree, fences []float64
	defer func() {
		b.add(newRow("failover, 3 nodes: owner SIGKILLed -> service running elsewhere", "ms", fail, "median under 2 s", 2000),
			newRow("failover: -> a survivor's hastat shows the owner dead", "ms", detect, "", 0),
			newRow("failover: -> both survivors' hastat show it DONE", "ms", agree, "", 0),
			newRow("failover: stomith runs per failover (1 expected)", "runs", fences, "", 0))
	}()
	fencedPath := filepath.Join(c.shared, "fenced")
	for run := 0; run < runs; run++ {
		fencedBefore, err := c.beginRun(w, fencedPath)
		if err != nil {
			return err
		}
		t0 := owner.killAll()
		t, err := c.waitTakeover(w, owner, true, time.Minute)
		if err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		fail = append(fail, ms(t.stamp-t0))
		detect = append(detect, ms(t.dead-t0))
		agree = append(agree, ms(t.done-t0))
		b.logf("failover %d of %d: %s killed, web on %s after %.0f ms (dead in hastat after %.0f ms)",
			run+1, runs, owner.name, t.next.name, ms(t.stamp-t0), ms(t.dead-t0))

		if err := c.settle(w, owner, t.next); err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		// The fences of this death, counted once the node is back (the
		// stomith command runs asynchronously): one is expected.
		fenced := testkit.Lines(fencedPath)[fencedBefore:]
		if len(fenced) == 0 || strings.Count(strings.Join(fenced, " ")+" ", owner.name+" ") != len(fenced) {
			return fmt.Errorf("run %d: fenced %q after %s was killed", run+1, fenced, owner.name)
		}
		fences = append(fences, float64(len(fenced)))
		if len(fenced) > 1 {
			var who []string
			for _, s := range c.others(owner) {
				data, _ := os.ReadFile(s.d.logPath)
				for _, l := range strings.Split(string(data), "\n") {
					if strings.Contains(l, "fenc") || strings.Contains(l, "HA") {
						who = append(who, s.name+": "+l)
					}
				}
			}
			if len(who) > 30 {
				who = who[len(who)-30:]
			}
			b.logf("run %d: %s fenced %d times; the survivors' last HA log lines:\n%s", run+1, owner.name, len(fenced), strings.Join(who, "\n"))
		}
		owner = t.next
	}
	return c.stopHA(w)
}

// killAll kills nd's daemon and every process it started, keeper
// included (each in a process group of its own, found by the variable
// every process of the node carries in its environment): the node is
// gone. It returns the monotonic time just before the first kill.
func (nd *cnode) killAll() int64 {
	pids := testkit.Tagged(benchEnv, tagged(nd.dir))
	own := syscall.Getpgrp()
	pgids := map[int]bool{}
	for _, pid := range pids {
		if pg, err := syscall.Getpgid(pid); err == nil && pg > 1 && pg != own {
			pgids[pg] = true
		}
	}
	t0 := monotonic()
	syscall.Kill(-nd.d.pid, syscall.SIGKILL) // first: it starts nothing more
	for pg := range pgids {
		syscall.Kill(-pg, syscall.SIGKILL)
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return t0
}

// noStomithCltab is haCltab without fencing, with a lease and a fence
// time of its own.
func noStomithCltab(n int, lease, fence time.Duration) string {
	voters := fmt.Sprintf(":::nodes:%d\n", n)
	if n > 5 {
		voters = ":::servers:n1,n2,n3\n"
	}
	return voters + fmt.Sprintf(":::lease:%v\n:::fencetime:%v\n:::stoptimeout:1s\n", lease, fence) + `web:claim:plan:once:true
web:check:test:test:true
web:srv:start:respawn:exec {stamp} {shared}/web.$CLINIT_NODE.stamp hold
`
}

// Failover without stomith (SPEC 8: under fencetime + 3 s at any
// size). The leader moves the group once the dead owner's lease has
// surely ended plus the fence time, T·1.01 + F after it last heard the
// owner: the figure is bounded by the lease, which an operator who wants
// it under F + 3 s sets to 2 s (raft then times its heartbeat at 500 ms,
// a quarter of the lease). The rows: 3 and 30 nodes at lease 2 s,
// fencetime 3 s, and 3 nodes at the default lease (8 s) for comparison.
var noStomithSizes = []struct {
	n            int
	lease, fence time.Duration
}{{3, 2 * time.Second, 3 * time.Second}, {30, 2 * time.Second, 3 * time.Second}, {3, 8 * time.Second, 3 * time.Second}}

// benchFailoverNoStomith: as benchFailover (the owner and all its
// processes SIGKILLed, to the service's first clock reading elsewhere),
// without a fencing command.
func benchFailoverNoStomith(b *bench) error {
	var errs []error
	for i, sz := range noStomithSizes {
		if b.quick && i == 1 {
			continue
		}
		if err := failoverNoStomithAt(b, fmt.Sprintf("fn%d", i), sz.n, sz.lease, sz.fence); err != nil {
			b.logf("failover without stomith, %d nodes, lease %v: %v", sz.n, sz.lease, err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func failoverNoStomithAt(b *bench, name string, n int, lease, fence time.Duration) error {
	c, w, owner, err := b.haClusterOf(name, n, noStomithCltab(n, lease, fence))
	if err != nil {
		return err
	}
	defer c.close()
	defer w.close()
	runs := b.runs(5, 2)
	var fail []float64
	label := fmt.Sprintf("failover without stomith, %d nodes, lease %v, fencetime %v: owner SIGKILLed -> service running elsewhere", n, lease, fence)
	target, limit := fmt.Sprintf("under fencetime + 3 s (%v)", fence+3*time.Second), ms(int64(fence+3*time.Second))
	if lease > 3*time.Second {
		bound := time.Duration(float64(lease)*1.01) + fence + time.Second
		target, limit = fmt.Sprintf("under lease·1.01 + fencetime + 1 s (%v)", bound.Round(100*time.Millisecond)), ms(int64(bound))
	}
	defer func() { b.add(newRow(label, "ms", fail, target, limit)) }()
	for run := 0; run < runs; run++ {
		if err := c.clearStamps(); err != nil {
			return err
		}
		w.drain()
		t0 := owner.killAll()
		t, err := c.waitTakeover(w, owner, false, 2*time.Minute)
		if err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		fail = append(fail, ms(t.stamp-t0))
		b.logf("failover without stomith, %d nodes, lease %v, %d of %d: %s killed, web on %s after %.0f ms",
			n, lease, run+1, runs, owner.name, t.next.name, ms(t.stamp-t0))
		if err := c.settle(w, owner, t.next); err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		owner = t.next
	}
	return c.stopHA(w)
}

// benchHandoff: `clinit -k` on the owner of an HA group to the group's
// service running on another node; three nodes (SPEC 8: median under
// 0.5 s).
//
// The clock starts just before the bench starts `clinit -s SOCK -k` (the
// client's own start-up is included) and ends at the new service's first
// clock reading. On -k the daemon stops its HA groups, marks itself
// leaving and leaves: the others start web without failure detection or
// fencing (the bench checks that nobody was fenced). A second row: both
// other nodes' hastat showing web DONE on the new node.
//
// Between runs the bench waits for the stopped daemon to exit (its
// memberlist port is then free) with none of its processes left, starts
// it again (state directory removed) and waits until every hastat shows
// three nodes alive and web where it went.
func benchHandoff(b *bench) error {
	c, w, owner, err := b.haCluster("ho")
	if err != nil {
		return err
	}
	defer c.close()
	defer w.close()
	runs := b.runs(10, 3)
	var hand, agree []float64
	defer func() {
		b.add(newRow("handoff, 3 nodes: clinit -k on the owner -> service running elsewhere", "ms", hand, "median under 0.5 s", 500),
			newRow("handoff: -> both other nodes' hastat show it DONE", "ms", agree, "", 0))
	}()
	fencedPath := filepath.Join(c.shared, "fenced")
	for run := 0; run < runs; run++ {
		fencedBefore, err := c.beginRun(w, fencedPath)
		if err != nil {
			return err
		}
		k := owner.d.command(context.Background(), "-k")
		owner.d.stopped = true
		t0 := monotonic()
		if err := k.Start(); err != nil {
			return err
		}
		t, err := c.waitTakeover(w, owner, false, time.Minute)
		kerr := k.Wait()
		if err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		if kerr != nil {
			return fmt.Errorf("run %d: clinit -s %s -k: %v", run+1, owner.d.sock, kerr)
		}
		hand = append(hand, ms(t.stamp-t0))
		agree = append(agree, ms(t.done-t0))
		b.logf("handoff %d of %d: %s stopped, web on %s after %.0f ms", run+1, runs, owner.name, t.next.name, ms(t.stamp-t0))

		select {
		case <-owner.d.done:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("run %d: %s still running 30 s after clinit -k", run+1, owner.name)
		}
		if n := countTagged(owner.dir); n > 0 {
			return fmt.Errorf("run %d: %s left %d processes behind after clinit -k", run+1, owner.name, n)
		}
		if fenced := testkit.Lines(fencedPath); len(fenced) != fencedBefore {
			return fmt.Errorf("run %d: %s was fenced after a graceful -k: %q", run+1, owner.name, fenced[fencedBefore:])
		}
		if err := c.settle(w, owner, t.next); err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		owner = t.next
	}
	return c.stopHA(w)
}

// beginRun readies the next run of a takeover figure: no stamp left of
// the last, no event queued; it returns how many fences the file at
// fencedPath holds before it.
func (c *cluster) beginRun(w *multiWatch, fencedPath string) (int, error) {
	if err := c.clearStamps(); err != nil {
		return 0, err
	}
	n := len(testkit.Lines(fencedPath))
	w.drain()
	return n, nil
}
