package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clinit/clinit/api"
)

// nodeSizes are the cluster sizes of the placement curve; SPEC 8's
// targets are about 100.
var nodeSizes = []int{3, 30, 100}

func init() {
	flag.Func("groups", "the HA group count of the nodes group (default 1000)", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 9999 {
			return fmt.Errorf("bad group count %q: want 1 to 9999", s)
		}
		haGroupCount = n
		return nil
	})
	flag.Func("nodes", "the cluster sizes of the nodes group, comma-separated (default 3,30,100)", func(s string) error {
		sizes, err := parseSizes(s, "cluster size", 1000)
		if err != nil {
			return err
		}
		nodeSizes = sizes
		return nil
	})
}

// haGroupCount is the number of HA groups placed (SPEC 8: 1,000).
var haGroupCount = 1000

// nodesCltab is the cltab of an n-node cluster with haGroupCount HA
// groups, each with a plan, a test and a start entry (its service a
// sleep: haGroupCount sleeps in all, spread over the nodes).
func nodesCltab(n int) string {
	var t strings.Builder
	if n <= 5 {
		fmt.Fprintf(&t, ":::nodes:%d\n", n) // every node votes
	} else {
		// 3 voters: the others read the log from the leader.
		fmt.Fprintf(&t, ":::servers:n1,n2,n3\n")
	}
	fmt.Fprintf(&t, ":::stoptimeout:2s\n")
	if n > 30 {
		// A hundred daemons on one machine each get a hundredth of its
		// CPU, the voters too: with the 8 s default (raft's heartbeat
		// 2 s, its leader lease 1 s) the leader lost its quorum's
		// answers during the placement and stepped down. 16 s doubles
		// raft's timings, as Consul's raft_multiplier does for shared
		// machines, and the failover bound without stomith with them.
		fmt.Fprintf(&t, ":::lease:16s\n")
	}
	for i := 1; i <= haGroupCount; i++ {
		fmt.Fprintf(&t, "g%04d:p%04d:plan:once:true\n", i, i)
		fmt.Fprintf(&t, "g%04d:t%04d:test:test:true\n", i, i)
		fmt.Fprintf(&t, "g%04d:s%04d:start:respawn:exec sleep 100000\n", i, i)
	}
	return t.String()
}

// nodesHactl puts every group at level.
func nodesHactl(level string) []byte {
	var h bytes.Buffer
	for i := 1; i <= haGroupCount; i++ {
		fmt.Fprintf(&h, "g%04d %s\n", i, level)
	}
	return h.Bytes()
}

type nodesResult struct {
	place, placed, unplace, gossipIdle, gossipPlaced, falseDead, falsePlacing, busiest, rss, cpu, cpuIdle []float64
}

// benchNodes: 3, 30 and 100 daemons on this machine (SPEC 8 is about
// 100), each with the same cltab of 1,000 HA groups. Each size is a
// cluster of its own (cluster.go: own network namespace, own users),
// started, measured and killed before the next; a size that fails does
// not keep the next from being measured.
//
//   - place: the clock starts just before the bench renames a new hactl,
//     with the 1,000 groups at `start`, into place on n1 (an operator's
//     edit: n1's daemon sees it, replicates it to every node, and each
//     node claims its share). It stops when the bench has seen every
//     node's hastat show all 1,000 groups `start DONE` on a node, each
//     on exactly one (hastat lists a group once per node holding it; a
//     group seen at start on two nodes fails the figure). Then the bench
//     asks every daemon for its status over its socket: each group must
//     be held by exactly one node, at start. SPEC 8: within 5 s at 100
//     nodes. The wait is cut at placeLimit so that `make bench` ends; a
//     run cut short is an error, with how far the placement got, and the
//     size's other runs are skipped.
//   - placed: how many groups n1's hastat shows `start DONE` at the end
//     of the wait (all of them, unless the wait was cut short): the
//     curve the README can show while the placement misses its target.
//   - unplace: the hactl with every group at `stop`, to every hastat
//     showing all 1,000 stopped (`stop - -`: running nowhere).
//   - gossip: what all the daemons sent over the cluster's private
//     loopback (netns.go: memberlist's UDP and TCP, as IP packets),
//     divided by the node count and the window (5 s windows); twice: 10 s
//     after the cluster has converged, before the hactl (idle), and 5 s
//     after the groups are placed (SPEC 8: under 20 KiB/s per node at 100
//     nodes).
//   - false failure detections: the times a daemon's memberlist declared
//     another member failed (its "Marking NODE as failed" log line), per
//     minute, while the idle gossip is measured, and while the groups are
//     being placed. Every node is alive throughout, so each one is false;
//     a cluster that flaps gossips and works much more, and moves groups.
//   - busiest: the HA groups on the node that holds most (the spread of
//     the placement), from the daemons' status.
//   - RSS: every daemon's VmRSS once the cluster has converged, a sample
//     per daemon.
//   - idle CPU: what all the daemons use together, converged, before the
//     hactl, over the idle gossip windows, in % of one CPU.
//   - CPU: the CPU time all the daemons used from the hactl's write to
//     the end of the placement (user and system, without their
//     children): what the placement costs the cluster, whatever the
//     machine's load.
func benchNodes(b *bench) error {
	res := map[int]*nodesResult{}
	defer func() { b.add(nodesRows(res)...) }()
	var errs []error
	for _, n := range nodeSizes {
		r := &nodesResult{}
		res[n] = r
		if err := nodesAt(b, n, r); err != nil {
			b.logf("nodes: %d nodes: %v", n, err)
			errs = append(errs, fmt.Errorf("%d nodes: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

func nodesRows(res map[int]*nodesResult) []Row {
	return rowsBySize(nodeSizes, res,
		func(n int, r *nodesResult) Row {
			target, limit := targetIf(n == 100 && haGroupCount == 1000, "within 5 s", 5000)
			return newRow(fmt.Sprintf("%d nodes, %d HA groups: hactl written -> every hastat shows all placed", n, haGroupCount), "ms", r.place, target, limit).
				on(chartPlace, fmt.Sprintf("%d groups placed", haGroupCount), float64(n))
		},
		func(n int, r *nodesResult) Row {
			return newRow(fmt.Sprintf("%d nodes: groups running at the end of the wait (n1's hastat)", n), "groups", r.placed, "", 0)
		},
		func(n int, r *nodesResult) Row {
			return newRow(fmt.Sprintf("%d nodes: hactl at stop -> every hastat shows all stopped", n), "ms", r.unplace, "", 0).
				on(chartPlace, fmt.Sprintf("%d groups stopped", haGroupCount), float64(n))
		},
		func(n int, r *nodesResult) Row {
			return newRow(fmt.Sprintf("gossip sent per node, %d nodes, converged, no group placed", n), "KiB/s", r.gossipIdle, "", 0).
				on(chartGossip, "converged, no group placed", float64(n))
		},
		func(n int, r *nodesResult) Row {
			target, limit := targetIf(n == 100 && haGroupCount == 1000, "under 20 KiB/s per node", 20)
			return newRow(fmt.Sprintf("gossip sent per node, %d nodes, %d groups placed", n, haGroupCount), "KiB/s", r.gossipPlaced, target, limit).
				on(chartGossip, fmt.Sprintf("%d groups placed", haGroupCount), float64(n))
		},
		func(n int, r *nodesResult) Row {
			return newRow(fmt.Sprintf("false failure detections, %d nodes, converged", n), "/min", r.falseDead, "", 0)
		},
		func(n int, r *nodesResult) Row {
			return newRow(fmt.Sprintf("false failure detections, %d nodes, while placing", n), "/min", r.falsePlacing, "", 0)
		},
		func(n int, r *nodesResult) Row {
			return newRow(fmt.Sprintf("HA groups on the busiest node, %d nodes", n), "groups", r.busiest, "", 0)
		},
		func(n int, r *nodesResult) Row {
			return newRow(fmt.Sprintf("daemon RSS, %d nodes, converged (a sample per daemon)", n), "MiB", r.rss, "", 0)
		},
		func(n int, r *nodesResult) Row {
			return newRow(fmt.Sprintf("CPU of all %d daemons, converged, no group placed", n), "% of a CPU", r.cpuIdle, "", 0)
		},
		func(n int, r *nodesResult) Row {
			return newRow(fmt.Sprintf("CPU of all %d daemons while %d groups are placed", n, haGroupCount), "s", r.cpu, "", 0)
		},
	)
}

// placeLimit is how long a placement is waited for before the run is
// given up: several times SPEC 8's 5 s, and short enough for `make
// bench` to end in time when the product is far off.
func (b *bench) placeLimit() time.Duration {
	if b.quick {
		return 30 * time.Second
	}
	return 45 * time.Second
}

// nodesAt runs one cluster of n nodes through its runs.
func nodesAt(b *bench, n int, r *nodesResult) error {
	c, err := b.newCluster(fmt.Sprintf("nodes%d", n), n, min(n, 3), nodesCltab(n))
	if err != nil {
		return err
	}
	defer c.close() // this size's daemons are gone before the next size starts
	w, err := c.watch()
	if err != nil {
		return err
	}
	defer w.close()

	t0 := monotonic()
	if err := c.startAll(4); err != nil {
		return err
	}
	started := monotonic()
	tUp, err := c.waitAll(w, c.nodes, func(_ *cnode, v api.Hastat) bool { return v.Alive() == n },
		90*time.Second, fmt.Sprintf("%d nodes alive", n))
	if err != nil {
		return err
	}
	b.logf("nodes: %d daemons ready %.1f s after the first start; every hastat lists %d alive after %.1f s",
		n, float64(started-t0)/1e9, n, float64(tUp-t0)/1e9)
	for _, nd := range c.nodes {
		m, err := procStatus(nd.d.pid, "VmRSS")
		if err != nil {
			return err
		}
		r.rss = append(r.rss, m["VmRSS"])
	}
	cpu0, at0 := c.daemonsCPU(), monotonic()
	if r.gossipIdle, r.falseDead, err = gossipRate(b, c, 10*time.Second, b.runs(2, 2)); err != nil {
		return err
	}
	r.cpuIdle = append(r.cpuIdle, 100*(c.daemonsCPU()-cpu0)/(float64(monotonic()-at0)/1e9))
	b.logf("nodes: %d nodes converged, no group placed: the daemons use %.0f%% of a CPU", n, r.cpuIdle[0])

	runs := b.runs(3, 2)
	for run := 0; run < runs; run++ {
		w.drain()
		failed := c.countLogs(" as failed")
		cpu0 := c.daemonsCPU()
		t0 := monotonic()
		if err := c.nodes[0].writeFile("hactl", nodesHactl("start"), 0o644); err != nil {
			return err
		}
		self0, _ := procCPU(os.Getpid())
		all, placed, err := c.waitPlaced(w, b.placeLimit())
		self1, _ := procCPU(os.Getpid())
		cpu := c.daemonsCPU() - cpu0
		b.logf("nodes: %d nodes: the bench itself used %.2f s of CPU while it waited", n, self1-self0)
		r.placed = append(r.placed, float64(placed))
		r.falsePlacing = append(r.falsePlacing, float64(c.countLogs(" as failed")-failed)/(float64(monotonic()-t0)/60e9))
		if err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		busiest, err := c.checkPlaced()
		if err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		r.place = append(r.place, ms(all-t0))
		r.busiest = append(r.busiest, float64(busiest))
		r.cpu = append(r.cpu, cpu)
		b.logf("nodes: %d nodes, run %d of %d: %d groups placed after %.0f ms, at most %d on one node; the daemons used %.2f s of CPU",
			n, run+1, runs, haGroupCount, ms(all-t0), busiest, cpu)
		if run == 0 {
			windows := b.runs(2, 2)
			if n == 100 {
				windows = b.runs(4, 2)
			}
			if r.gossipPlaced, _, err = gossipRate(b, c, 5*time.Second, windows); err != nil {
				return err
			}
		}

		w.drain()
		t0 = monotonic()
		if err := c.nodes[0].writeFile("hactl", nodesHactl("stop"), 0o644); err != nil {
			return err
		}
		t1, err := c.waitAll(w, c.nodes, func(_ *cnode, v api.Hastat) bool { return allStopped(v) },
			b.placeLimit(), "every group stopped")
		if err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		r.unplace = append(r.unplace, ms(t1-t0))
	}
	return c.stopAll(10)
}

// allStopped reports whether a hastat shows every group at stop, running
// nowhere.
func allStopped(v api.Hastat) bool {
	if len(v.Groups) != haGroupCount {
		return false
	}
	for _, g := range v.Groups {
		if g.Level != "stop" || g.Node != "-" {
			return false
		}
	}
	return true
}

// placedText reports whether a hastat shows every group at start, DONE,
// on exactly one node; and, if it shows a group at start on two nodes,
// that group's lines. It reads the text itself: 100 nodes rewrite their
// hastat (1,100 lines) very often while the groups are placed.
func placedText(data []byte) (ok bool, double string) {
	lines, good := 0, 0
	for _, l := range bytes.Split(data, []byte{'\n'}) {
		if len(l) == 0 || bytes.HasPrefix(l, []byte("node ")) {
			continue
		}
		lines++
		f := bytes.Fields(l)
		if len(f) == 4 && string(f[1]) == "start" && string(f[2]) == "DONE" && string(f[3]) != "-" {
			good++
		}
	}
	if lines > haGroupCount {
		at := map[string][]string{}
		v, err := api.ParseHastat(string(data))
		if err != nil {
			return false, err.Error()
		}
		for _, g := range v.Groups {
			if g.Level == "start" {
				at[g.Group] = append(at[g.Group], g.State+" on "+g.Node)
			}
		}
		for g, on := range at {
			if len(on) > 1 {
				return false, g + " at start: " + strings.Join(on, ", ")
			}
		}
	}
	return lines == haGroupCount && good == haGroupCount, ""
}

// waitPlaced waits until every node's hastat shows all groups placed, and
// returns when the bench saw the last one do so. A group seen at start on
// two nodes at once is an error; so is the timeout, with how far the
// placement got.
func (c *cluster) waitPlaced(w *multiWatch, timeout time.Duration) (at int64, placed int, err error) {
	good := make([]bool, len(c.nodes))
	nGood := 0
	var all int64
	check := func(nd *cnode) error {
		data, _ := os.ReadFile(nd.rpath("hastat"))
		ok, double := placedText(data)
		if double != "" {
			return fmt.Errorf("%s's hastat shows %s", nd.name, double)
		}
		if ok != good[nd.i] {
			good[nd.i] = ok
			if ok {
				nGood++
			} else {
				nGood--
			}
		}
		return nil
	}
	running := func() int {
		data, _ := os.ReadFile(c.nodes[0].rpath("hastat"))
		return bytes.Count(data, []byte(" start DONE "))
	}
	progress := func() string {
		data, _ := os.ReadFile(c.nodes[0].rpath("hastat"))
		return fmt.Sprintf("%d of %d hastat files show all placed; n1's shows %d groups start DONE, %d at plan, %d at test",
			nGood, len(c.nodes), bytes.Count(data, []byte(" start DONE ")), bytes.Count(data, []byte(" plan ")), bytes.Count(data, []byte(" test ")))
	}
	deadline := time.Now().Add(timeout)
	nextLog := time.Now().Add(10 * time.Second)
	for nGood < len(c.nodes) {
		if time.Now().After(nextLog) {
			nextLog = time.Now().Add(10 * time.Second)
			c.b.logf("nodes: %d nodes: %s", len(c.nodes), progress())
		}
		until := deadline
		if nextLog.Before(until) {
			until = nextLog
		}
		ev, err := w.next(until)
		if errors.Is(err, errTimeout) && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			return 0, running(), fmt.Errorf("groups not placed within %v: %w: %s; %d claims (HA moves to plan) and %d members declared failed in the daemons' logs",
				timeout, err, progress(), c.countLogs(`"level": "plan", "why"`), c.countLogs(" as failed"))
		}
		// A burst of rewrites is read once.
		dirty := map[int]int64{}
		w.burst(ev, func(ev watchEvent) {
			if ev.name == "hastat" && ev.dir < len(c.nodes) {
				dirty[ev.dir] = ev.ns
			}
		})
		for i, ns := range dirty {
			if err := check(c.nodes[i]); err != nil {
				return 0, running(), err
			}
			all = max(all, ns)
		}
	}
	return all, running(), nil
}

// daemonsCPU is the CPU time, in seconds, every daemon of the cluster
// has used so far (a daemon that cannot be read counts nothing).
func (c *cluster) daemonsCPU() float64 {
	sum := 0.0
	for _, nd := range c.nodes {
		if s, err := procCPU(nd.d.pid); err == nil {
			sum += s
		}
	}
	return sum
}

// countLogs counts the lines of every node's log that contain s.
func (c *cluster) countLogs(s string) int {
	n := 0
	for _, nd := range c.nodes {
		data, _ := os.ReadFile(nd.path("log"))
		n += strings.Count(string(data), s)
	}
	return n
}

// checkPlaced asks every daemon for its status: each group must be held
// by exactly one node, at start. It returns the most groups one node
// holds.
func (c *cluster) checkPlaced() (int, error) {
	on := map[string][]string{}
	busiest := 0
	for _, nd := range c.nodes {
		st, err := nd.d.status()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", nd.name, err)
		}
		held := 0
		for _, g := range st.Groups {
			if g.Level == "stop" {
				continue
			}
			on[g.Group] = append(on[g.Group], nd.name+" at "+g.Level+" "+g.State)
			held++
		}
		busiest = max(busiest, held)
	}
	var bad []string
	for i := 1; i <= haGroupCount; i++ {
		g := fmt.Sprintf("g%04d", i)
		if len(on[g]) != 1 || !strings.Contains(on[g][0], " at start ") {
			bad = append(bad, fmt.Sprintf("%s: %v", g, on[g]))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		if len(bad) > 10 {
			bad = append(bad[:10], fmt.Sprintf("... (%d groups)", len(bad)))
		}
		return 0, fmt.Errorf("the daemons' status once every hastat showed all placed: %s", strings.Join(bad, "; "))
	}
	return busiest, nil
}

// gossipRate measures, after settle, in windows of 5 s, the bytes every
// daemon of the cluster sent on its private loopback, per node per
// second, in KiB/s; and the members memberlist declared failed meanwhile,
// per minute.
func gossipRate(b *bench, c *cluster, settle time.Duration, windows int) (kibs, falseDead []float64, err error) {
	if c.ns == nil {
		b.logf("nodes: no network namespace: gossip not counted")
		return nil, nil, nil
	}
	window := 5 * time.Second
	if b.quick {
		settle, window = 2*time.Second, 3*time.Second
	}
	time.Sleep(settle)
	for i := 0; i < windows; i++ {
		m0 := c.countLogs(" as failed")
		b0, _, err := c.ns.loopbackTx()
		if err != nil {
			return nil, nil, err
		}
		t0 := monotonic()
		time.Sleep(window)
		b1, _, err := c.ns.loopbackTx()
		if err != nil {
			return nil, nil, err
		}
		secs := float64(monotonic()-t0) / 1e9
		m1 := c.countLogs(" as failed")
		kibs = append(kibs, float64(b1-b0)/float64(len(c.nodes))/secs/1024)
		falseDead = append(falseDead, float64(m1-m0)/secs*60)
	}
	b.logf("nodes: %d nodes: gossip per node %.1f KiB/s, members declared failed %.0f/min", len(c.nodes), kibs, falseDead)
	return kibs, falseDead, nil
}
