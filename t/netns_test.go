package t

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/cluster/raftnode"
	"github.com/clinit/clinit/t/netbed"
)

// The scenarios of SPEC 7 on hosts of their own (t/netbed): one network
// namespace per host, joined by a switch the test controls, one real
// daemon per host. They need root (CI runs as root) and skip otherwise.
// Each builds its own bed with names of its own, so they run in
// parallel.
//
// The HA service records its starts and stops in an events file every
// host sees; after each scenario the checker (netbed.Check) computes the
// longest time it ran on two hosts at once (must be zero) and the
// longest time it ran nowhere while a quorate eligible host existed (must
// stay under the bound the product's timings give, below).

// netnsCltab: web claims at plan, tests at test, runs a service at start
// that records its start and stop, and records the stop level too.
const netnsCltab = `
:::nodes:{nodes}
:::fencetime:3s
:::settle:{settle}
:::stoptimeout:2s
web:claim:plan:once:echo "plan $CLINIT_NODE $(date +%s%N) $$" >> {dir}/events
web:check:test:test:true
web:srv:start:respawn:echo "start $CLINIT_NODE $(date +%s%N) $$" >> {dir}/events; trap 'echo "stop $CLINIT_NODE $(date +%s%N) $$" >> {dir}/events; exit 0' TERM; sleep 1000 & wait
web:release:stop:wait:echo "release $CLINIT_NODE $(date +%s%N) $$" >> {dir}/events
`

// bedCltab is tab for a bed of n hosts.
func bedCltab(tab string, n int) string {
	return strings.NewReplacer("{nodes}", fmt.Sprint(n), "{settle}", netnsSettle.String()).Replace(tab)
}

// netnsSettle is the beds' :::settle:, shorter than the default: a
// host cut before the first assignment was committed makes the others
// wait that long for it (TestNetnsCutIntoPlacement).
const netnsSettle = 3 * time.Second

// The product's timings the bounds are made of: memberlist's (exported
// by cluster), and those of the HA rules and the reconnection, which
// cluster keeps to itself:
// reconnectEvery (cluster/join.go).
const (
	fenceTime      = 3 * time.Second // :::fencetime: above
	stopTimeout    = 2 * time.Second // :::stoptimeout: above
	reconnectEvery = 10 * time.Second
	// lifecycle: the test and start levels, and the gossip of each step
	// (a few process starts and 100 ms gossip rounds).
	lifecycle = 2 * time.Second
	// noise: this machine's 2 cores are shared with other tests.
	noise = 2 * time.Second
)

// detectMax is the longest a member may take to declare another dead
// after a cut: a probe of it comes within one round of the others
// (n-1 probe intervals), and suspicion lasts at most SuspicionMaxTimeoutMult
// x SuspicionMult x max(1, log10(n)) probe intervals (no confirmation).
func detectMax(n int) time.Duration {
	return time.Duration(n-1)*cluster.ProbeInterval + cluster.ProbeTimeout +
		time.Duration(cluster.SuspicionMaxTimeoutMult*cluster.SuspicionMult)*cluster.ProbeInterval
}

// electionBound: a leader lost, the next one is elected and has made
// its term ready (raft's timings are half a second a step).
const electionBound = 5 * time.Second

// failoverBound without stomith: the old owner's lease runs out (counted
// from its last renewal, or from a new leader's election when the owner
// led), its keeper's fence time passes, then the lifecycle.
func failoverBound(n int) time.Duration {
	return electionBound + time.Duration(float64(raftnode.DefaultLease)*(1+raftnode.Drift)) + fenceTime + lifecycle + noise
}

// handoffBound: a graceful shutdown's stop, its release through the log,
// then the new owner's lifecycle (no detection, no fencing).
func handoffBound(n int) time.Duration {
	return stopTimeout + electionBound + lifecycle + noise
}

// mergeBound: after a healed split, the sides find each other when one
// tries its dead members again (every reconnectEvery; the join itself
// may take a TCP timeout), then the lifecycle.
func mergeBound(n int) time.Duration {
	return reconnectEvery + cluster.TCPTimeout + electionBound + lifecycle + noise
}

// netns builds a bed of n hosts running the netns cltab, and waits until
// every host sees all n alive.
func netns(t *testing.T, n int) *netbed.Bed {
	t.Helper()
	return netnsWith(t, n, netnsCltab)
}

// netnsWith is netns with another cltab (made a bed's by bedCltab).
func netnsWith(t *testing.T, n int, cltab string) *netbed.Bed {
	t.Helper()
	b := netbed.New(t, netbed.Config{Hosts: n, Bin: clinitBin, Start: true,
		Cltab: bedCltab(cltab, n)})
	waitUntil(t, 30*time.Second, func() bool { return allAlive(b.Hosts, n) }, "every host to see %d alive", n)
	return b
}

// heal heals h's link and waits until every host sees all n alive again;
// healed is when the link was healed.
func heal(t *testing.T, b *netbed.Bed, h *netbed.Host, n int) (healed time.Time) {
	t.Helper()
	healed = time.Now()
	b.Heal(h)
	b.Note("heal", h.Name)
	waitUntil(t, mergeBound(n)+hang, func() bool { return allAlive(b.Hosts, n) }, "every host to see %d alive after the heal", n)
	t.Logf("heal: all %d alive everywhere after %v", n, time.Since(healed).Round(time.Millisecond))
	return healed
}

// allAlive: every host's hastat shows n members alive.
func allAlive(hosts []*netbed.Host, n int) bool {
	for _, h := range hosts {
		if h.Hastat().Alive() != n {
			return false
		}
	}
	return true
}

// agreedOwner is the host every one of hosts sees running web at start,
// nil while they do not agree or it runs nowhere.
func agreedOwner(b *netbed.Bed, hosts []*netbed.Host) *netbed.Host {
	owner := ""
	for _, h := range hosts {
		g, ok := h.Hastat().Group("web")
		if !ok || g.Level != "start" || g.State != "DONE" || (owner != "" && g.Node != owner) {
			return nil
		}
		owner = g.Node
	}
	return b.Host(owner)
}

func waitOwnerAmong(t *testing.T, b *netbed.Bed, seenBy []*netbed.Host, among []*netbed.Host, timeout time.Duration) *netbed.Host {
	t.Helper()
	var o *netbed.Host
	waitUntil(t, timeout, func() bool {
		o = agreedOwner(b, seenBy)
		return o != nil && contains(among, o)
	}, "web running on one of %v, seen by %v", names(among), names(seenBy))
	return o
}

// placeWeb sets web to start (more: further flags of clinit --ha, such
// as --prefer) and waits until it runs on one host, seen by all; it
// returns that host and when the check of the scenario begins.
func placeWeb(t *testing.T, b *netbed.Bed, more ...string) (*netbed.Host, time.Time) {
	t.Helper()
	if out, errOut, code, err := b.Hosts[0].Clinit(append([]string{"--ha", "web", "start"}, more...)...); err != nil || code != 0 {
		t.Fatalf("clinit --ha web start %v: %d %v %s %s", more, code, err, out, errOut)
	}
	o := waitOwnerAmong(t, b, b.Hosts, b.Hosts, 30*time.Second)
	evs := events(t, b)
	if len(evs) == 0 {
		t.Fatal("web runs, but no event was recorded")
	}
	var from time.Time
	for _, e := range evs {
		if e.Kind == "start" {
			from = e.Time
			break
		}
	}
	if from.IsZero() {
		t.Fatalf("web runs, but no start was recorded: %v", evs)
	}
	t.Logf("web placed on %s", o.Name)
	return o, from
}

func events(t *testing.T, b *netbed.Bed) []netbed.Event {
	t.Helper()
	evs, err := netbed.ReadEvents(b.Events())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// runningOn lists the hosts whose service is running now (started, not
// stopped, its process alive).
func runningOn(t *testing.T, b *netbed.Bed) []string {
	t.Helper()
	r := netbed.Check(events(t, b), netbed.Window{From: time.Unix(0, 0), To: time.Now()}, nil)
	var on []string
	for _, run := range r.Runs {
		if run.Open && alive(run.Pid) {
			on = append(on, run.Host)
		}
	}
	return on
}

// firstAfter is the first event of kind on host (any host if "") at or
// after t0; ok is false if there is none.
func firstAfter(evs []netbed.Event, kind, host string, t0 time.Time) (netbed.Event, bool) {
	for _, e := range evs {
		if e.Kind == kind && (host == "" || e.Host == host) && !e.Time.Before(t0) {
			return e, true
		}
	}
	return netbed.Event{}, false
}

// runsOn checks that web's services run on one host now, and on host if
// it is not "": what the case is after when (for the message).
func runsOn(t *testing.T, b *netbed.Bed, host, when string) {
	t.Helper()
	if on := runningOn(t, b); len(on) != 1 || host != "" && on[0] != host {
		t.Errorf("after %s web services run on %v, want only %s", when, on, cmp.Or(host, "one host"))
	}
}

// moves runs the verdict on [from, now] (see verdict) and checks that
// web moved want times.
func moves(t *testing.T, b *netbed.Bed, from time.Time, bound time.Duration, want int) netbed.Report {
	t.Helper()
	r := verdict(t, b, from, nil, bound)
	if r.Moves != want {
		t.Errorf("web moved %d times, want %d", r.Moves, want)
	}
	return r
}

// stoppedFirst checks that the owner cut off at cut stopped web before
// next started it, logs both times (how says what the owner's is: a
// format with one %v), and returns both events.
func stoppedFirst(t *testing.T, b *netbed.Bed, owner, next *netbed.Host, cut time.Time, how string) (stop, start netbed.Event) {
	t.Helper()
	evs := events(t, b)
	stop, _ = firstAfter(evs, "stop", owner.Name, cut)
	start, _ = firstAfter(evs, "start", next.Name, cut)
	t.Logf("cut %s: "+how+"; %s started it after %v",
		owner.Name, stop.Time.Sub(cut).Round(time.Millisecond), next.Name, start.Time.Sub(cut).Round(time.Millisecond))
	if !stop.Time.Before(start.Time) {
		t.Errorf("%s started web %v before the cut-off %s stopped it", next.Name, stop.Time.Sub(start.Time).Round(time.Millisecond), owner.Name)
	}
	return stop, start
}

// memberDeaths counts the members the hosts' daemons logged dead.
func memberDeaths(b *netbed.Bed) int {
	deaths := 0
	for _, h := range b.Hosts {
		for _, l := range strings.Split(h.Log(), "\n") {
			if strings.Contains(l, "\tmember\t") && strings.Contains(l, `"state": "dead"`) {
				deaths++
			}
		}
	}
	return deaths
}

// verdict runs the checker on [from, now], logs the figures, and fails
// the case on a double run or a gap over bound.
func verdict(t *testing.T, b *netbed.Bed, from time.Time, excused []netbed.Window, bound time.Duration) netbed.Report {
	t.Helper()
	return verdictOf(t, "web", events(t, b), from, excused, bound)
}

// verdictOf is verdict for the events evs of one group.
func verdictOf(t *testing.T, group string, evs []netbed.Event, from time.Time, excused []netbed.Window, bound time.Duration) netbed.Report {
	t.Helper()
	r := netbed.Check(evs, netbed.Window{From: from, To: time.Now()}, excused)
	t.Logf("checker %s: %s", group, r)
	t.Logf("checker %s: longest double run %v; longest time running nowhere with a quorate host %v (bound %v)",
		group, r.Overlap.Round(time.Millisecond), r.Gap.Round(time.Millisecond), bound)
	for _, s := range r.Gaps {
		t.Logf("checker %s: ran nowhere %s", group, s)
	}
	if r.Overlap > 0 || len(r.Overlaps) > 0 {
		for _, s := range r.Overlaps {
			t.Errorf("%s ran on two hosts at once: %s", group, s)
		}
	}
	if r.Gap > bound {
		t.Errorf("%s ran nowhere for %v with a quorate eligible host, over the bound %v", group, r.Gap.Round(time.Millisecond), bound)
	}
	if t.Failed() {
		var sb strings.Builder
		for _, e := range evs {
			fmt.Fprintln(&sb, e)
		}
		t.Logf("timeline:\n%s", sb.String())
	}
	return r
}

// The owner's link is cut (1|2 of 3): the cut-off owner loses quorum and
// stops web by itself; the two others start it after the safe wait (no
// stomith), never while it still runs there. Healed: it does not move
// back, and no second copy starts.
func TestNetnsOwnerCut(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	owner, from := placeWeb(t, b)
	rest := without2(b.Hosts, owner)

	cut := time.Now()
	b.Note("cut", owner.Name)
	b.Cut(owner)
	next := waitOwnerAmong(t, b, rest, rest, failoverBound(n)+noise)
	waitUntil(t, detectMax(n)+stopTimeout+hang, func() bool { _, ok := firstAfter(events(t, b), "stop", owner.Name, cut); return ok },
		"the cut-off owner %s to stop web by itself", owner.Name)
	stop, start := stoppedFirst(t, b, owner, next, cut, "it stopped web after %v (detection on its side, then stop)")
	// Its deadline: detecting that it is alone, then the fence time.
	if d := stop.Time.Sub(cut); d > detectMax(n)+fenceTime+noise {
		t.Errorf("the cut-off %s stopped web %v after the cut, past detection and the fence time (%v)", owner.Name, d.Round(time.Millisecond), detectMax(n)+fenceTime+noise)
	}
	// Without stomith the others wait the fence time after seeing it dead.
	if d := start.Time.Sub(cut); d < fenceTime {
		t.Errorf("%s started web %v after the cut, before the fence time (%v) had passed", next.Name, d.Round(time.Millisecond), fenceTime)
	}

	heal(t, b, owner, n)
	staysOn(t, b, next, from, "the heal")
}

// staysOn waits long enough for a move back or a second copy to show (a
// claim takes a claim delay, the hold and the lifecycle), then checks
// that web runs on next alone, seen by every host, and moved once since
// from.
func staysOn(t *testing.T, b *netbed.Bed, next *netbed.Host, from time.Time, after string) {
	t.Helper()
	n := len(b.Hosts)
	time.Sleep(electionBound + lifecycle)
	if o := agreedOwner(b, b.Hosts); o != next {
		t.Errorf("after %s web runs on %v (seen by all), want it to stay on %s", after, hostName(o), next.Name)
	}
	runsOn(t, b, next.Name, after)
	moves(t, b, from, failoverBound(n), 1)
}

// The owner's link is cut just long enough for the others to declare it
// dead, not for it to declare them dead (they confirm each other's
// suspicion; nobody confirms its own), then healed: it never heard it was
// held dead, still runs web and still talks to them. The others try a
// dead holder every second, so it learns, refutes, and is alive again
// everywhere at once; when its link is cut again for good, the safe wait
// counts from then, not from the first death, and web never runs twice.
func TestNetnsStaleDeath(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	owner, from := placeWeb(t, b)
	rest := without2(b.Hosts, owner)

	cut := time.Now()
	b.Note("cut", owner.Name)
	b.Cut(owner)
	heldDead := func() bool {
		for _, h := range rest {
			if h.Hastat().NodeState(owner.Name) != "dead" {
				return false
			}
		}
		return true
	}
	waitUntil(t, detectMax(n)+hang, heldDead, "%v to see %s dead", names(rest), owner.Name)
	dead := time.Now()
	// Heal once the news of its death has had its few gossip rounds, but
	// well before the owner, which nobody can confirm to, sees the others
	// dead (probe round plus the longest suspicion, over 5 s).
	time.Sleep(min(time.Until(dead.Add(1500*time.Millisecond)), time.Until(cut.Add(4*time.Second))))
	b.Heal(owner)
	healed := time.Now()
	b.Note("heal", owner.Name)
	t.Logf("cut %s: the others held it dead after %v; healed after %v", owner.Name, dead.Sub(cut).Round(time.Millisecond), time.Since(cut).Round(time.Millisecond))
	if s := owner.Hastat(); s.Alive() != n {
		t.Logf("%s saw the others go too (%v): its view is not stale this time", owner.Name, s.Nodes)
	}
	// A try every second, which may wait for a TCP timeout.
	waitUntil(t, time.Second+cluster.TCPTimeout+noise, func() bool { return allAlive(b.Hosts, n) },
		"every host to see %s alive again after the heal", owner.Name)
	t.Logf("%s alive again everywhere %v after the heal", owner.Name, time.Since(healed).Round(time.Millisecond))
	// A cut longer than the lease stopped web on the owner (its lease
	// lapsed); it still holds the assignment (nobody may take it before
	// the lease and the fence time), renews, and starts it again.
	back := waitOwnerAmong(t, b, b.Hosts, b.Hosts, electionBound+lifecycle+noise)
	if back != owner {
		t.Errorf("after the short cut web runs on %s, want it to stay on %s", back.Name, owner.Name)
	}

	// Cut again for good when a safe wait counted from the first death
	// would end before the owner, cut off anew, has seen the others dead.
	time.Sleep(time.Until(dead.Add(detectMax(n) + raftnode.DefaultLease + fenceTime)))
	again := time.Now()
	b.Note("cut", owner.Name)
	b.Cut(owner)
	next := waitOwnerAmong(t, b, rest, rest, failoverBound(n)+noise)
	evs := events(t, b)
	start, _ := firstAfter(evs, "start", next.Name, again)
	t.Logf("cut %s again %v after the first death: %s started web %v after this cut",
		owner.Name, again.Sub(dead).Round(time.Millisecond), next.Name, start.Time.Sub(again).Round(time.Millisecond))
	moves(t, b, from, failoverBound(n), 1)
}

// A 2|2 split of 4 hosts: neither side has a quorum (3), so web runs
// nowhere, on either side, until the split heals; then it runs again.
func TestNetnsSplitTwoTwo(t *testing.T) {
	t.Parallel()
	const n = 4
	b := netns(t, n)
	owner, from := placeWeb(t, b)
	a, c := b.Hosts[:2], b.Hosts[2:]

	split := time.Now()
	b.Note("split", "-")
	b.Split(a, c)
	waitUntil(t, detectMax(n)+stopTimeout+hang, func() bool { return len(runningOn(t, b)) == 0 },
		"web to stop everywhere (no side is quorate)")
	stop, _ := firstAfter(events(t, b), "stop", owner.Name, split)
	t.Logf("split %v|%v: %s stopped web after %v", names(a), names(c), owner.Name, stop.Time.Sub(split).Round(time.Millisecond))
	// Hold the split past what a wrong claim needs (detection, the
	// safe wait, a claim), checking all along that nothing starts.
	hold := time.Now().Add(detectMax(n) + fenceTime + lifecycle)
	for time.Now().Before(hold) {
		if on := runningOn(t, b); len(on) > 0 {
			t.Errorf("web runs on %v during a 2|2 split", on)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if e, ok := firstAfter(events(t, b), "start", "", split); ok {
		t.Errorf("web started during the split: %v", e)
	}
	for _, h := range b.Hosts {
		if g, _ := h.Hastat().Group("web"); g.Node != "-" {
			t.Errorf("%s's hastat shows web on %s during the split", h.Name, g.Node)
		}
	}

	healed := time.Now()
	b.Unsplit()
	b.Note("heal", "-")
	o := waitOwnerAmong(t, b, b.Hosts, b.Hosts, mergeBound(n)+hang)
	start, _ := firstAfter(events(t, b), "start", o.Name, healed)
	t.Logf("heal: web runs again on %s %v after the heal", o.Name, start.Time.Sub(healed).Round(time.Millisecond))
	time.Sleep(electionBound + lifecycle)
	runsOn(t, b, "", "the heal")
	verdict(t, b, from, []netbed.Window{{From: split, To: healed}}, mergeBound(n))
}

// The owner is killed outright (its daemon and its services, SIGKILL)
// and started again once web moved: it rejoins, and web stays where it
// moved.
func TestNetnsOwnerKilled(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	owner, from := placeWeb(t, b)
	rest := without2(b.Hosts, owner)

	killed := time.Now()
	owner.Kill9()
	next := waitOwnerAmong(t, b, rest, rest, failoverBound(n)+noise)
	start, _ := firstAfter(events(t, b), "start", next.Name, killed)
	t.Logf("kill -9 of %s: web started on %s after %v", owner.Name, next.Name, start.Time.Sub(killed).Round(time.Millisecond))
	if d := start.Time.Sub(killed); d < fenceTime {
		t.Errorf("%s started web %v after the kill, before the fence time (%v) had passed", next.Name, d.Round(time.Millisecond), fenceTime)
	}

	restarted := time.Now()
	owner.Start()
	waitUntil(t, 30*time.Second, func() bool { return allAlive(b.Hosts, n) }, "every host to see %d alive after the restart", n)
	t.Logf("%s restarted: all 3 alive everywhere after %v", owner.Name, time.Since(restarted).Round(time.Millisecond))
	staysOn(t, b, next, from, "the restart")
}

// The first owner's link flaps for a minute, down and up for random
// stretches of a few seconds (some shorter than failure detection, some
// longer than detection and the safe wait): web never runs twice, and
// moves at most once per cut.
func TestNetnsFlap(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	owner, from := placeWeb(t, b)

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NETNS_FLAP_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("flapping %s's link for 60s (NETNS_FLAP_SEED=%d)", owner.Name, seed)
	end := time.Now().Add(60 * time.Second)
	cuts := 0
	var plan []string
	for time.Now().Before(end) {
		down := time.Duration(1000+rng.IntN(6000)) * time.Millisecond
		up := time.Duration(2000+rng.IntN(4000)) * time.Millisecond
		plan = append(plan, fmt.Sprintf("down %v up %v", down.Round(100*time.Millisecond), up.Round(100*time.Millisecond)))
		b.Note("cut", owner.Name)
		b.Cut(owner)
		cuts++
		time.Sleep(down)
		b.Heal(owner)
		b.Note("heal", owner.Name)
		time.Sleep(up)
	}
	t.Logf("flaps: %s", strings.Join(plan, ", "))
	waitUntil(t, mergeBound(n)+hang, func() bool { return allAlive(b.Hosts, n) && agreedOwner(b, b.Hosts) != nil },
		"every host to see %d alive and agree where web runs", n)
	time.Sleep(electionBound + lifecycle)
	runsOn(t, b, "", "the flapping")
	r := verdict(t, b, from, nil, failoverBound(n))
	t.Logf("%d cuts, %d moves", cuts, r.Moves)
	if r.Moves > cuts {
		t.Errorf("web moved %d times for %d cuts", r.Moves, cuts)
	}
}

// Every host is restarted in turn (clinit -k, then started again): web
// always runs somewhere, but for the handoffs.
func TestNetnsRollingRestart(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	_, from := placeWeb(t, b)

	for _, h := range b.Hosts {
		down := time.Now()
		wasOwner := agreedOwner(b, b.Hosts) == h
		h.Stop()
		b.Note("down", h.Name)
		rest := without2(b.Hosts, h)
		o := waitOwnerAmong(t, b, rest, rest, handoffBound(n)+hang)
		if wasOwner {
			start, _ := firstAfter(events(t, b), "start", o.Name, down)
			t.Logf("%s stopped (-k): web handed over to %s, running again %v after the -k", h.Name, o.Name, start.Time.Sub(down).Round(time.Millisecond))
		} else {
			t.Logf("%s stopped (-k): web stays on %s", h.Name, o.Name)
		}
		h.Start()
		b.Note("up", h.Name)
		waitUntil(t, 30*time.Second, func() bool { return allAlive(b.Hosts, n) && agreedOwner(b, b.Hosts) != nil },
			"every host to see %d alive after %s restarted", n, h.Name)
	}
	time.Sleep(electionBound + lifecycle)
	runsOn(t, b, "", "the rolling restart")
	r := verdict(t, b, from, nil, handoffBound(n))
	t.Logf("rolling restart: %d moves", r.Moves)
}

// 20% packet loss between all hosts for 30 s: memberlist's indirect
// probes and suspicion ride it out, so web does not move.
func TestNetnsLoss(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	owner, from := placeWeb(t, b)

	how, err := b.Loss(20)
	if err != nil {
		t.Skipf("no way to drop packets at random on this kernel (no sch_netem, no bpf classifier): %v", err)
	}
	b.Note("loss", "-")
	t.Logf("20%% loss on every switch port (%s) for 30s", how)
	time.Sleep(30 * time.Second)
	t.Logf("dropped by the switch ports: %v", b.Drops())
	b.NoLoss()
	b.Note("noloss", "-")
	time.Sleep(electionBound + lifecycle)

	deaths := memberDeaths(b)
	t.Logf("members declared dead during the loss, counted over all logs: %d", deaths)
	if o := agreedOwner(b, b.Hosts); o != owner {
		t.Errorf("after the loss web runs on %v (seen by all), want it to stay on %s", hostName(o), owner.Name)
	}
	r := verdict(t, b, from, nil, 0)
	if r.Moves != 0 || len(r.Runs) != 1 {
		t.Errorf("false failover: %d moves, %d starts", r.Moves, len(r.Runs))
	}
}

func without2(hosts []*netbed.Host, h *netbed.Host) []*netbed.Host {
	var out []*netbed.Host
	for _, x := range hosts {
		if x != h {
			out = append(out, x)
		}
	}
	return out
}

func contains(hosts []*netbed.Host, h *netbed.Host) bool {
	for _, x := range hosts {
		if x == h {
			return true
		}
	}
	return false
}

func names(hosts []*netbed.Host) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

func hostName(h *netbed.Host) string {
	if h == nil {
		return "no agreed host"
	}
	return h.Name
}

// waitUntil fails the case unless cond holds within timeout.
func waitUntil(t *testing.T, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for "+what, append([]any{timeout}, args...)...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The owner's daemon is frozen (SIGSTOP) for 30 s, with no stomith: its
// services run on, and no daemon of its can stop them. Its lease runs
// out, and its keeper, a process of its own, stops them; the others
// start web only after the lease and the fence time, never while the
// frozen owner's copy runs. Thawed, the old owner runs nothing again:
// the log no longer gives it web.
func TestNetnsOwnerDaemonFrozen(t *testing.T) {
	t.Parallel()
	b, owner, next, from, at := daemonLost(t, "frozen", (*netbed.Host).Freeze)
	time.Sleep(time.Until(at.Add(30 * time.Second)))
	owner.Thaw()
	waitUntil(t, 30*time.Second, func() bool { return allAlive(b.Hosts, len(b.Hosts)) }, "every host to see all alive after the thaw")
	staysOn(t, b, next, from, "the thaw")
}

// The owner's daemon is SIGKILLed (as an OOM kill would), its services
// and its keeper left running, and it is not restarted: the keeper
// stops web when the lease ends, and only then does it start elsewhere.
// Started again later, the daemon finds its keeper, and web stays where
// it moved.
func TestNetnsOwnerDaemonKilled(t *testing.T) {
	t.Parallel()
	b, owner, next, from, _ := daemonLost(t, "killed", (*netbed.Host).KillDaemon)
	time.Sleep(5 * time.Second)
	owner.Start()
	waitUntil(t, 30*time.Second, func() bool { return allAlive(b.Hosts, len(b.Hosts)) }, "every host to see all alive after the restart")
	staysOn(t, b, next, from, "the restart")
}

// daemonLost places web on a bed of 3, does lose to its owner's daemon
// alone (its services and keeper run on), waits for web to run on
// another host, and checks that the owner's keeper stopped it within
// the lease and the stop timeout.
func daemonLost(t *testing.T, what string, lose func(*netbed.Host)) (b *netbed.Bed, owner, next *netbed.Host, from, at time.Time) {
	t.Helper()
	const n = 3
	b = netns(t, n)
	owner, from = placeWeb(t, b)
	rest := without2(b.Hosts, owner)
	at = time.Now()
	lose(owner)
	next = waitOwnerAmong(t, b, rest, rest, failoverBound(n)+noise)
	evs := events(t, b)
	stop, _ := firstAfter(evs, "stop", owner.Name, at)
	start, _ := firstAfter(evs, "start", next.Name, at)
	t.Logf("%s's daemon %s: its keeper stopped web after %v; %s started it after %v",
		owner.Name, what, stop.Time.Sub(at).Round(time.Millisecond), next.Name, start.Time.Sub(at).Round(time.Millisecond))
	if stop.Time.IsZero() || stop.Time.Sub(at) > time.Duration(float64(raftnode.DefaultLease)*(1+raftnode.Drift))+stopTimeout+noise {
		t.Errorf("the keeper did not stop the %s owner's web within the lease and the stop timeout", what)
	}
	return b, owner, next, from, at
}
