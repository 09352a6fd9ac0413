package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/internal/testkit"
)

// The cluster figures of SPEC 8 run several `clinit -d` on this machine,
// each the way README's "A cluster" runs them: its own directory (cltab,
// socket, clstat, hastat, hactl, state, key, log), its own --node name,
// --bind 127.0.0.1:PORT, --join the seeds, --keyfile. The cltab is the
// same on every node (it is replicated).
//
// Two things differ from an operator's machine, neither of which the
// daemons can see:
//
//   - each cluster has a network namespace of its own (netns.go), when
//     the bench runs as root;
//   - as root, node i runs as uid and gid nodeUIDBase+i (no user of the
//     machine has them). The kernel counts inotify instances per user
//     (fs.inotify.max_user_instances, 128 by default) and a daemon takes
//     two (its cltab and hactl watches): 100 daemons of one user would
//     not start, and would starve whatever else runs as root on the
//     machine of inotify. Distinct users lift that without changing the
//     machine's settings.
//
// The bench learns what the daemons do from their hastat files and the
// services' timestamp files, through inotify (one instance for every
// directory of a cluster), never by polling.

// nodeUIDBase: node i (from 1) runs as uid and gid nodeUIDBase+i when the
// bench is root.
const nodeUIDBase = 61000

// cluster is the daemons of one cluster figure.
type cluster struct {
	b      *bench
	name   string
	dir    string   // b.tmp/name
	shared string   // a directory every node's services write to
	ns     *netns   // nil: the machine's loopback
	seeds  []string // --join
	nodes  []*cnode
}

// cnode is one node of a cluster; d is its current daemon (a restart
// replaces it).
type cnode struct {
	c    *cluster
	i    int
	name string // n1, n2, ...
	dir  string // the cltab, hactl, key, state directory and log: /var/lib's part
	// run has the socket (and so the output FIFOs beside it), clstat
	// and hastat: on a tmpfs, as their defaults under /var/run are.
	run      string
	addr     string // 127.0.0.1:PORT, memberlist's
	raftAddr string // 127.0.0.1:PORT, its raft port
	uid      int    // -1: the bench's own
	d        *daemon
}

func (nd *cnode) path(name string) string { return filepath.Join(nd.dir, name) }

// rpath is name in the node's run directory.
func (nd *cnode) rpath(name string) string { return filepath.Join(nd.run, name) }

// files are the node's paths, as its daemon is given them.
func (nd *cnode) files() testkit.Files {
	f := testkit.FilesIn(nd.dir)
	f.Sock, f.Clstat, f.Hastat = nd.rpath("sock"), nd.rpath("clstat"), nd.rpath("hastat")
	return f
}

// newCluster prepares n nodes (none started): directories, key, cltab.
// tabText may use {shared} and {stamp}. The first seeds nodes are every
// node's --join.
func (b *bench) newCluster(name string, n, seeds int, tabText string) (*cluster, error) {
	c := &cluster{b: b, name: name, dir: filepath.Join(b.tmp, name)}
	c.shared = filepath.Join(c.dir, "shared")
	if err := os.MkdirAll(c.shared, 0o755); err != nil {
		return nil, err
	}
	b.onCleanup(c.kill)
	root := os.Geteuid() == 0
	if root {
		// The nodes' users must reach their directories, the stamp
		// helper, and the shared directory.
		if err := os.MkdirAll(filepath.Join(b.run, name), 0o755); err != nil {
			return nil, err
		}
		for _, p := range []string{b.tmp, c.dir, b.run, filepath.Join(b.run, name)} {
			if err := os.Chmod(p, 0o755); err != nil {
				return nil, err
			}
		}
		if err := os.Chmod(c.shared, 0o777); err != nil {
			return nil, err
		}
		ns, err := newNetns()
		if err != nil {
			b.logf("%s: no network namespace of its own (%v): the daemons use the machine's loopback, and gossip is not counted", name, err)
		} else {
			c.ns = ns
			b.onCleanup(ns.close) // after c.kill: cleanups run last first
		}
	}
	key, err := exec.Command(b.bin, "--keygen").Output()
	if err != nil {
		return nil, fmt.Errorf("clinit --keygen: %w", err)
	}
	// Two ports a node: memberlist's, and its raft port.
	ports := make([]int, 2*n)
	if c.ns != nil {
		for i := range ports {
			ports[i] = 7001 + i
		}
	} else if ports, err = freePorts(2 * n); err != nil {
		return nil, err
	}
	text := strings.NewReplacer("{shared}", c.shared, "{stamp}", b.stamp).Replace(tabText)
	for i := 0; i < n; i++ {
		nd := &cnode{c: c, i: i, name: fmt.Sprintf("n%d", i+1), uid: -1}
		nd.dir = filepath.Join(c.dir, nd.name)
		nd.run = filepath.Join(b.run, name, nd.name)
		nd.addr = fmt.Sprintf("127.0.0.1:%d", ports[2*i])
		nd.raftAddr = fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])
		if root {
			nd.uid = nodeUIDBase + i + 1
		}
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			return nil, err
		}
		if err := nd.writeFile("cltab", []byte(text), 0o644); err != nil {
			return nil, err
		}
		if err := nd.writeFile("key", key, 0o600); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(nd.run, 0o755); err != nil {
			return nil, err
		}
		for _, p := range []string{nd.dir, nd.run} {
			if err := nd.chown(p); err != nil {
				return nil, err
			}
		}
		c.nodes = append(c.nodes, nd)
	}
	for i := 0; i < seeds && i < n; i++ {
		c.seeds = append(c.seeds, c.nodes[i].addr)
	}
	return c, nil
}

// freePorts finds n ports free for both TCP and UDP on 127.0.0.1 (the
// fallback without a network namespace: another process may take one
// before the daemon binds it).
func freePorts(n int) ([]int, error) {
	var ports []int
	var closers []func() error
	defer func() {
		for _, f := range closers {
			f()
		}
	}()
	for tries := 0; len(ports) < n && tries < 100*n; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		closers = append(closers, l.Close)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		closers = append(closers, u.Close)
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("found %d free ports of %d", len(ports), n)
	}
	return ports, nil
}

// writeFile writes a file of the node's, atomically (a daemon may be
// watching it), owned by the node's user.
func (nd *cnode) writeFile(name string, data []byte, mode os.FileMode) error {
	tmp := nd.path("." + name + ".bench")
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	if err := nd.chown(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, nd.path(name))
}

func (nd *cnode) chown(path string) error {
	if nd.uid < 0 {
		return nil
	}
	return os.Chown(path, nd.uid, nd.uid)
}

// start runs the node's daemon, the way README's "A cluster" does, after
// removing its state directory but for the raft log (a restarted node
// adopts nothing) and its old hastat and clstat. It returns once the daemon has sent READY=1 and
// answers on its socket.
func (nd *cnode) start() error {
	b := nd.c.b
	files := nd.files()
	d := &daemon{b: b, name: nd.name, dir: nd.dir, cltab: files.Cltab, sock: files.Sock, clstat: files.Clstat,
		logPath: nd.path("log"), uid: nd.uid}
	for _, f := range []string{files.Hastat, files.Clstat, files.Sock, nd.path("notify")} {
		if err := os.RemoveAll(f); err != nil {
			return err
		}
	}
	// The state directory goes too, but for the raft log: a machine that
	// died and comes back has its disk. A voter started with none would
	// have the leader send it the whole log, and until it caught up
	// every commit would wait for it (the next failover's fence: 2.8 s).
	if ents, err := os.ReadDir(nd.path("state")); err == nil {
		for _, e := range ents {
			if e.Name() != "raft" {
				if err := os.RemoveAll(filepath.Join(nd.path("state"), e.Name())); err != nil {
					return err
				}
			}
		}
	}
	args := append(files.DaemonArgs(nd.name), "--bind", nd.addr, "--raft-bind", nd.raftAddr,
		"--join", strings.Join(nd.c.seeds, ","), "--keyfile", nd.path("key"))
	prepare := func(cmd *exec.Cmd) error {
		if nd.uid >= 0 {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(nd.uid), Gid: uint32(nd.uid)}
		}
		return nd.chown(nd.path("notify"))
	}
	var start func(*exec.Cmd) error
	if nd.c.ns != nil {
		start = func(cmd *exec.Cmd) error {
			var err error
			if nerr := nd.c.ns.do(func() { err = cmd.Start() }); nerr != nil {
				return nerr
			}
			return err
		}
	}
	nd.d = d
	return d.launch(args, time.Minute, prepare, start)
}

// startAll starts every node, par at a time.
func (c *cluster) startAll(par int) error {
	return c.each(c.nodes, par, (*cnode).start)
}

// each runs f on nodes, par at a time, and returns the first error.
func (c *cluster) each(nodes []*cnode, par int, f func(*cnode) error) error {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, nd := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(nd); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s: %w", nd.name, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// stopAll stops every daemon with `clinit -k`, par at a time.
func (c *cluster) stopAll(par int) error {
	var live []*cnode
	for _, nd := range c.nodes {
		if nd.d != nil && !nd.d.stopped {
			live = append(live, nd)
		}
	}
	return c.each(live, par, func(nd *cnode) error { return nd.d.stop() })
}

// close kills the cluster and ends its network namespace.
func (c *cluster) close() {
	c.kill()
	if c.ns != nil {
		c.ns.close()
	}
}

// kill ends every daemon of the cluster and everything they started.
func (c *cluster) kill() {
	for _, nd := range c.nodes {
		if nd.d == nil {
			continue
		}
		select {
		case <-nd.d.done:
		default:
			syscall.Kill(-nd.d.pid, syscall.SIGKILL)
		}
	}
	killTagged(c.dir)
	for _, nd := range c.nodes {
		if nd.d == nil {
			continue
		}
		select {
		case <-nd.d.done:
		case <-time.After(10 * time.Second):
		}
	}
}

// clinit runs the clinit binary as a client of nd's daemon.
func (nd *cnode) clinit(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := nd.d.command(ctx, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("clinit -s %s %s: %v: %s", nd.rpath("sock"), strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// others is every node of the cluster but nd.
func (c *cluster) others(nd *cnode) []*cnode {
	var out []*cnode
	for _, o := range c.nodes {
		if o != nd {
			out = append(out, o)
		}
	}
	return out
}

func (c *cluster) byName(name string) *cnode {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	return nil
}

// runsAt reports the node the view shows group at level, DONE, when it
// shows it on exactly one node.
func runsAt(v api.Hastat, group, level string) string {
	node := ""
	for _, g := range v.Groups {
		if g.Group != group {
			continue
		}
		if node != "" || g.Level != level || g.State != api.StateDone || g.Node == "-" {
			return ""
		}
		node = g.Node
	}
	return node
}

func (nd *cnode) hastat() (api.Hastat, error) { return testkit.ReadHastat(nd.rpath("hastat")) }

// watchEvent is a name created or renamed into one of the watched
// directories, and when the bench read it (CLOCK_MONOTONIC).
type watchEvent struct {
	dir  int // index in the directories given to watchDirs
	name string
	ns   int64
}

// multiWatch watches several directories with one inotify instance.
type multiWatch struct {
	f      *os.File
	wds    map[int32]int
	events chan watchEvent
	errc   chan error
}

func watchDirs(dirs ...string) (*multiWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	w := &multiWatch{wds: map[int32]int{}, events: make(chan watchEvent, 1<<16), errc: make(chan error, 1)}
	for i, dir := range dirs {
		wd, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("inotify %s: %w", dir, err)
		}
		w.wds[int32(wd)] = i
	}
	w.f = os.NewFile(uintptr(fd), "inotify")
	go w.read()
	return w, nil
}

func (w *multiWatch) read() {
	defer close(w.events)
	buf := make([]byte, 256<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.errc <- err
			}
			return
		}
		now := monotonic()
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				w.errc <- errors.New("inotify queue overflow")
				return
			}
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			name = bytes.TrimRight(name, "\x00")
			if dir, ok := w.wds[ev.Wd]; ok {
				w.events <- watchEvent{dir: dir, name: string(name), ns: now}
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

func (w *multiWatch) close() { w.f.Close() }

// next waits for the next event until deadline.
func (w *multiWatch) next(deadline time.Time) (watchEvent, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case ev, ok := <-w.events:
		if !ok {
			return ev, <-w.errc
		}
		return ev, nil
	case err := <-w.errc:
		return watchEvent{}, err
	case <-timer.C:
		return watchEvent{}, errTimeout
	}
}

// burst calls f on first and then on every event queued already: a burst
// of rewrites is read once.
func (w *multiWatch) burst(first watchEvent, f func(watchEvent)) {
	f(first)
	for {
		select {
		case ev, open := <-w.events:
			if !open {
				return
			}
			f(ev)
		default:
			return
		}
	}
}

// drain discards the events queued so far.
func (w *multiWatch) drain() {
	for {
		select {
		case _, ok := <-w.events:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// watch watches every node's run directory, where its hastat is (index
// i for c.nodes[i]), and the shared one (index len(c.nodes)).
func (c *cluster) watch() (*multiWatch, error) {
	var dirs []string
	for _, nd := range c.nodes {
		dirs = append(dirs, nd.run)
	}
	return watchDirs(append(dirs, c.shared)...)
}

// waitAll waits until ok holds for the hastat of every node of nds, and
// returns when the bench saw that: each node's hastat is read again when
// its daemon rewrites it (a burst of rewrites is read once). what names
// the condition in the error.
func (c *cluster) waitAll(w *multiWatch, nds []*cnode, ok func(*cnode, api.Hastat) bool, timeout time.Duration, what string) (int64, error) {
	want := map[int]*cnode{}
	for _, nd := range nds {
		want[nd.i] = nd
	}
	good := map[int]bool{}
	check := func(i int) error {
		nd := want[i]
		v, err := nd.hastat()
		good[i] = err == nil && ok(nd, v)
		return err
	}
	for i := range want {
		if err := check(i); err != nil {
			return 0, err
		}
	}
	deadline := time.Now().Add(timeout)
	last := monotonic()
	for {
		if len(good) == len(want) && allTrue(good) {
			return last, nil
		}
		ev, err := w.next(deadline)
		if err != nil {
			var bad []string
			for i, g := range good {
				if !g {
					bad = append(bad, want[i].name)
				}
			}
			if len(bad) > 5 {
				bad = append(bad[:5], "...")
			}
			return 0, fmt.Errorf("waiting for %s: %w (not yet on %s; %s's hastat:\n%s)", what, err, strings.Join(bad, ","),
				nds[0].name, head(nds[0].rpath("hastat"), 12))
		}
		dirty := map[int]bool{}
		w.burst(ev, func(ev watchEvent) {
			if ev.name == "hastat" && want[ev.dir] != nil {
				dirty[ev.dir] = true
				last = ev.ns
			}
		})
		for i := range dirty {
			if err := check(i); err != nil {
				return 0, err
			}
		}
	}
}

func allTrue(m map[int]bool) bool {
	for _, v := range m {
		if !v {
			return false
		}
	}
	return true
}

// head is the first n lines of a file, for an error message.
func head(path string, n int) string {
	data, _ := os.ReadFile(path)
	ls := strings.SplitN(string(data), "\n", n+1)
	if len(ls) > n {
		ls = append(ls[:n], "...")
	}
	return strings.Join(ls, "\n")
}
