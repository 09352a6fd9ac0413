// Package netbed builds test hosts out of network namespaces, for the
// end-to-end tests of clinit's cluster: each host is a namespace of its
// own with one address on a private subnet, wired by a veth pair to a
// bridge that lives in a "switch" namespace of the bed's own, and runs one
// real `clinit -d` bound to that address. The machine's own network is
// never touched: nothing is created in the root namespace, and the subnet
// exists only inside the bed.
//
// The switch is where links are controlled (link.go): a host cut off (its
// switch port down), a split into two sides (silent drops in the switch),
// packet loss (netem, or a random drop filter where the kernel has no
// netem).
//
// A bed is torn down by t.Cleanup, also when the test fails or panics:
// every process in its namespaces is stopped (then killed), the
// namespaces are deleted, and the teardown checks that none of its
// namespaces and none of its processes are left. Names carry the test
// process's pid and a sequence number, so beds of tests running in
// parallel never collide, and a later run can sweep what a killed run
// left (Sweep).
//
// It needs root and iproute2 (`ip`, `tc`); New skips the test otherwise.
package netbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/clinit/clinit/internal/testkit"
)

// Prefix starts the name of every namespace a bed creates.
const Prefix = "clnb"

// Subnet is the private /24 of every bed; host i (from 1) is .i. Each bed
// has its own switch, so beds of parallel tests may share it. 10.231/16
// is unlikely to be used by the machine, and it would not matter: these
// addresses exist only inside the bed's namespaces, which have no route
// anywhere else.
const Subnet = "10.231.0"

// Port is the cluster port each daemon binds on its host's address.
const Port = 7946

// Config says what a bed runs.
type Config struct {
	Hosts int    // how many hosts (h1...hN)
	Bin   string // the clinit binary
	// Cltab is the cltab every host starts with; {dir} in it is the
	// shared directory (Bed.Shared), the same for every host, and {ns}
	// what the name of every host's namespace begins with: host h2's is
	// {ns}-h2 (a fencing command can kill what runs in it).
	Cltab string
	// Start: the daemons are started (and ready) when New returns.
	Start bool
}

// Bed is a set of hosts joined by one switch.
type Bed struct {
	t      testing.TB
	cfg    Config
	id     string // Prefix + pid + "-" + seq
	Switch string // the switch namespace
	Dir    string // the bed's directory (hosts' directories, shared)
	Shared string // seen by every host: the key, the events file
	Key    string // the key file
	Hosts  []*Host

	watcher *fsnotify.Watcher // the hosts' directories, for their hastat
	watched sync.WaitGroup    // the goroutine that records views

	mu     sync.Mutex
	shaped map[string]bool // switch ports with the drop qdisc
	nsList []string        // every namespace created, switch last
}

var seq atomic.Int64

// need checks that the bed can be built here; the test skips otherwise.
func need(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netbed: needs root to create network namespaces (run the tests as root; CI does)")
	}
	for _, c := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("netbed: needs iproute2 (%s not found: apt-get install iproute2)", c)
		}
	}
}

// New builds a bed of cfg.Hosts hosts. The test skips when it cannot run
// here (not root, no iproute2); any other failure fails it.
func New(t testing.TB, cfg Config) *Bed {
	t.Helper()
	need(t)
	if cfg.Hosts < 1 || cfg.Hosts > 250 {
		t.Fatalf("netbed: %d hosts", cfg.Hosts)
	}
	Sweep(t)
	b := &Bed{t: t, cfg: cfg, shaped: map[string]bool{}}
	b.id = fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), seq.Add(1))
	b.Switch = b.id + "-sw"
	// Short on purpose: a UNIX socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("/tmp", Prefix)
	if err != nil {
		t.Fatal(err)
	}
	b.Dir = dir
	b.Shared = filepath.Join(dir, "shared")
	// Registered before anything is created: it undoes whatever part of
	// the bed exists, whatever happens after.
	t.Cleanup(b.teardown)
	if err := os.MkdirAll(b.Shared, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cfg.Bin, "--keygen").Output()
	if err != nil {
		t.Fatalf("netbed: %s --keygen: %v", cfg.Bin, err)
	}
	b.Key = filepath.Join(b.Shared, "key")
	if err := os.WriteFile(b.Key, out, 0o600); err != nil {
		t.Fatal(err)
	}

	b.addNS(b.Switch)
	b.ip("-n", b.Switch, "link", "set", "lo", "up")
	b.ip("-n", b.Switch, "link", "add", "br0", "type", "bridge")
	b.ip("-n", b.Switch, "link", "set", "br0", "up")
	var seeds []string
	for i := 1; i <= cfg.Hosts; i++ {
		seeds = append(seeds, fmt.Sprintf("%s.%d:%d", Subnet, i, Port))
	}
	for i := 1; i <= cfg.Hosts; i++ {
		h := &Host{
			bed:  b,
			Name: fmt.Sprintf("h%d", i),
			NS:   fmt.Sprintf("%s-h%d", b.id, i),
			Addr: fmt.Sprintf("%s.%d", Subnet, i),
			Dir:  filepath.Join(dir, fmt.Sprintf("h%d", i)),
		}
		h.Port = h.Name // its veth's end in the switch
		h.seeds = strings.Join(seeds, ",")
		b.Hosts = append(b.Hosts, h)
		if err := os.MkdirAll(h.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(h.Path("cltab"), []byte(strings.NewReplacer("{dir}", b.Shared, "{ns}", b.id).Replace(cfg.Cltab)), 0o644); err != nil {
			t.Fatal(err)
		}
		b.addNS(h.NS)
		b.ip("-n", h.NS, "link", "set", "lo", "up")
		// Created where they belong: the root namespace never sees them.
		b.ip("-n", b.Switch, "link", "add", h.Port, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
		b.ip("-n", b.Switch, "link", "set", h.Port, "master", "br0", "up")
		b.ip("-n", h.NS, "addr", "add", h.Addr+"/24", "dev", "eth0")
		b.ip("-n", h.NS, "link", "set", "eth0", "up")
	}
	b.watchViews()
	if cfg.Start {
		for _, h := range b.Hosts {
			h.launch()
		}
		for _, h := range b.Hosts {
			h.waitReady()
		}
	}
	return b
}

// watchViews records every host's hastat as it changes (Host.seen), from
// fsnotify events on the hosts' directories (hastat is replaced by a
// rename), on a goroutine of its own until the teardown closes the
// watcher.
func (b *Bed) watchViews() {
	b.t.Helper()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		b.t.Fatalf("netbed: %v", err)
	}
	byDir := map[string]*Host{}
	for _, h := range b.Hosts {
		if err := w.Add(h.Dir); err != nil {
			w.Close()
			b.t.Fatalf("netbed: watching %s: %v", h.Dir, err)
		}
		byDir[h.Dir] = h
	}
	b.watcher = w
	b.watched.Add(1)
	go func() {
		defer b.watched.Done()
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Base(ev.Name) == "hastat" {
					if h := byDir[filepath.Dir(ev.Name)]; h != nil {
						h.seen()
					}
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
}

// Host returns host hN by name, nil if there is none.
func (b *Bed) Host(name string) *Host {
	for _, h := range b.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Events is the events file in the shared directory (see Note).
func (b *Bed) Events() string { return filepath.Join(b.Shared, "events") }

// Note appends a line "KIND HOST NANOS 0" to the events file, in the
// format the services of the tests write (see ReadEvents).
func (b *Bed) Note(kind, host string) {
	f, err := os.OpenFile(b.Events(), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		b.t.Errorf("netbed: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s %d 0\n", kind, host, time.Now().UnixNano())
}

func (b *Bed) addNS(name string) {
	b.t.Helper()
	b.mu.Lock()
	b.nsList = append(b.nsList, name)
	b.mu.Unlock()
	if out, err := run("ip", "netns", "add", name); err != nil {
		if strings.Contains(out, "Operation not permitted") {
			b.t.Skipf("netbed: cannot create a network namespace here: %s", out)
		}
		b.t.Fatalf("netbed: ip netns add %s: %v: %s", name, err, out)
	}
}

// ip runs `ip ARGS`; a failure fails the test.
func (b *Bed) ip(args ...string) {
	b.t.Helper()
	if out, err := run("ip", args...); err != nil {
		b.t.Fatalf("netbed: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// tc runs `tc -n SWITCH ARGS` and returns its error with its output.
func (b *Bed) tc(args ...string) error {
	if out, err := run("tc", append([]string{"-n", b.Switch}, args...)...); err != nil {
		return fmt.Errorf("tc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	return nil
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// teardown stops every daemon (clinit -k, all hosts at once), kills what
// is left in the bed's namespaces, deletes them, and checks that nothing
// of the bed is left: no namespace with its name, no process in them, no
// process of its daemons anywhere.
func (b *Bed) teardown() {
	t := b.t
	if b.watcher != nil {
		b.watcher.Close()
		b.watched.Wait()
	}
	var wg sync.WaitGroup
	for _, h := range b.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.stopForTeardown()
		}()
	}
	wg.Wait()
	b.mu.Lock()
	names := append([]string(nil), b.nsList...)
	b.mu.Unlock()
	for _, ns := range names {
		if left := killNS(ns); len(left) > 0 {
			t.Errorf("netbed: teardown: processes in %s survive SIGKILL: %v", ns, left)
		}
		if out, err := run("ip", "netns", "del", ns); err != nil && !strings.Contains(out, "No such file") {
			t.Errorf("netbed: teardown: ip netns del %s: %v: %s", ns, err, out)
		}
	}
	// What must be gone now.
	leftNS, leftProcs := b.leftNamespaces(), procsTagged(b.id+"/")
	if len(leftNS) > 0 {
		t.Errorf("netbed: teardown: namespaces left: %v", leftNS)
	}
	if len(leftProcs) > 0 {
		t.Errorf("netbed: teardown: processes left: %v", leftProcs)
	}
	if len(leftNS) == 0 && len(leftProcs) == 0 {
		t.Logf("netbed: teardown: no namespace %s-* and no process of the bed left", b.id)
	}
	if t.Failed() {
		b.dumpLogs()
	}
	if keep := os.Getenv("NETBED_KEEP"); keep != "" {
		for _, h := range b.Hosts {
			h.mu.Lock()
			os.WriteFile(h.Path("views"), []byte(strings.Join(h.views, "\n")+"\n"), 0o644)
			h.mu.Unlock()
		}
		// For a post-mortem: the logs and the events stay.
		dst := filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
		os.RemoveAll(dst)
		os.MkdirAll(keep, 0o755)
		if err := os.Rename(b.Dir, dst); err == nil {
			t.Logf("netbed: kept the bed's files in %s", dst)
			return
		}
	}
	os.RemoveAll(b.Dir)
}

// leftNamespaces lists the bed's namespaces that `ip netns list` shows.
func (b *Bed) leftNamespaces() []string {
	out, _ := run("ip", "netns", "list")
	var left []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && strings.HasPrefix(f[0], b.id+"-") {
			left = append(left, f[0])
		}
	}
	return left
}

func (b *Bed) dumpLogs() {
	if data, err := os.ReadFile(b.Events()); err == nil {
		b.t.Logf("netbed: events:\n%s", data)
	}
	for _, h := range b.Hosts {
		h.mu.Lock()
		logs := append([]*testkit.Buffer(nil), h.logs...)
		views := strings.Join(h.views, "\n")
		h.mu.Unlock()
		b.t.Logf("netbed: %s hastat as it changed:\n%s", h.Name, views)
		for i, l := range logs {
			b.t.Logf("netbed: %s daemon log #%d (%s):\n%s", h.Name, i+1, h.NS, l.String())
		}
	}
}

// nsInode is the inode of a named namespace (0 if it does not exist).
func nsInode(ns string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+ns, &st); err != nil {
		return 0
	}
	return st.Ino
}

// nsPids lists the processes whose network namespace is ns.
func nsPids(ns string) []int {
	ino := nsInode(ns)
	if ino == 0 {
		return nil
	}
	var pids []int
	for _, pid := range testkit.Pids() {
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == ino && testkit.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killNS SIGKILLs every process in ns until none is left (a process may
// fork while the first ones die) and returns what survives 5 seconds.
func killNS(ns string) []int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := nsPids(ns)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return pids
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tagEnv is the variable that marks every process of a bed's daemons
// (inherited by their services).
const tagEnv = "CLNB_TAG"

// procsTagged lists live processes whose tag starts with prefix.
func procsTagged(prefix string) []string {
	return testkit.DescribeAll(testkit.Tagged(tagEnv, func(v string) bool { return strings.HasPrefix(v, prefix) }))
}

// Sweep removes what beds of test processes that no longer run left
// behind (a run killed by go test's timeout runs no cleanup): their
// processes are killed and their namespaces deleted. Beds of live
// processes (parallel runs) are left alone.
func Sweep(t testing.TB) {
	out, err := run("ip", "netns", "list")
	if err != nil {
		return
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(f[0], Prefix) {
			continue
		}
		ns := f[0]
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(ns, Prefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || testkit.Alive(pid) {
			continue
		}
		t.Logf("netbed: removing %s, left by process %d which is gone", ns, pid)
		killNS(ns)
		run("ip", "netns", "del", ns)
	}
}

// errNoShaper: the kernel lacks what a link control needs.
var errNoShaper = errors.New("the kernel has no htb qdisc or u32/bpf classifier")
