// Package node is the wiring of `clinit -d`: it builds the parts of one
// clinit node (the engine, the cluster, the socket server, metrics, the
// file watchers, the keeper link, systemd's notifications) in the order
// they depend on each other, connects them, and runs them until the
// engine has stopped every group. No part below it knows another but
// through what it is given here.
package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/daemon"
	"github.com/clinit/clinit/internal/reaper"
	"github.com/clinit/clinit/internal/safedir"
)

// Config is what a node is made of; paths are already resolved (flag,
// then cltab setting, then default).
type Config struct {
	Engine  daemon.Config  // the engine's; HAGroups is filled in from the hactl
	Socket  string         // the local protocol's UNIX socket
	Hactl   string         // the HA control file, replicated
	Hastat  string         // the cluster view this node writes
	Cluster cluster.Config // membership flags; paths, node and the engine's part are filled in

	Metrics string // --metrics: metrics and status page address; "" serves none
	Version string // what clinit_build_info says the daemon was built from
	// ReopenLog opens the --log file again (on SIGHUP); nil: none to.
	ReopenLog func() error
}

// Node is one clinit daemon, built and connected, not yet running.
type Node struct {
	cfg     Config
	log     *zap.Logger
	ln      *net.UnixListener
	unlock  func()
	eng     *daemon.Engine
	cl      *cluster.Cluster
	srv     *daemon.Server
	metrics *http.Server // nil: none
	nt      *notifier    // nil: not under systemd
	changes *changes
}

// Run is `clinit -d`: it builds the node, serves requests, rereads the
// cltab on SIGHUP and on change, and returns once SIGTERM, SIGINT or a
// shutdown request has stopped every group.
func Run(cfg Config) error {
	n, err := New(cfg)
	if err != nil {
		return err
	}
	return n.Run()
}

// New takes the socket and the state directory and builds the parts of
// the node, each from those it needs: the engine first (the cluster
// tells it levels and runs its commands), the queue of file changes
// (the cluster posts new versions to it), the cluster, then what serves
// them both. The engine is given its ties to the cluster before it runs.
func New(cfg Config) (_ *Node, err error) {
	ec := cfg.Engine
	log := ec.Log
	// Before anything is made or adopted in its name.
	if msg := cltab.BadName("node", ec.Node); msg != "" {
		return nil, fmt.Errorf("%s: give this node a good --node", msg)
	}
	logWarnings(log, ec.Tab)
	if err := reaper.BecomeSubreaper(); err != nil {
		log.Warn("cannot become a child subreaper: orphans of services go to init", zap.Error(err))
	}
	n := &Node{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if n.ln, err = daemon.Listen(cfg.Socket); err != nil {
		return nil, err
	}
	if ec.RunDir == "" && ec.StateDir != "" {
		// Beside the socket: /var/run is a tmpfs, which survives a daemon
		// restart (adoption reopens the FIFOs) but not a reboot (when
		// there is nothing to adopt).
		ec.RunDir = cfg.Socket + ".out"
	}
	if ec.RunDir != "" {
		if err := safedir.Ensure(ec.RunDir, 0o700); err != nil {
			return nil, fmt.Errorf("output directory: %w", err)
		}
	}
	if n.unlock, err = daemon.LockStateDir(ec.StateDir); err != nil {
		return nil, err
	}
	if h, err := cltab.LoadHactl(cfg.Hactl); err == nil {
		ec.HAGroups = map[string]bool{}
		for _, g := range h.Groups {
			ec.HAGroups[g.Group] = true
		}
	}
	// Under systemd, STATUS= follows the engine's and the cluster's state.
	if send := systemdNotify(); send != nil {
		n.nt = newNotifier(send)
	}
	if n.eng, err = daemon.NewEngine(ec); err != nil {
		return nil, err
	}
	n.changes = newChanges(log, n.nt)
	if n.cl, err = cluster.Start(n.clusterConfig(ec)); err != nil {
		return nil, err
	}
	n.eng.SetHooks(daemon.Hooks{
		OnStatus: n.onStatus,
		OnEvent:  n.cl.Emit,
		Handoff:  n.cl.Handoff,
		MayStart: n.cl.MayStart,
	})
	n.srv = daemon.NewServer(n.eng, log, daemon.ServerOptions{
		Reread: n.changes.Reread,
		// HA groups move through the cluster, never by a local tell.
		IsHA:   n.cl.IsHA,
		Routes: clusterRoutes(n.eng, n.cl, n.changes),
	})
	if cfg.Metrics != "" {
		n.metrics, err = serveMetrics(cfg.Metrics, cfg.Version, n.eng, n.cl, log, ec.Node, advertisedHost(cfg.Cluster.Advertise))
		if err != nil {
			return nil, err
		}
	}
	return n, nil
}

// clusterConfig is the cluster's part: the flags, and what it is given of
// the engine (a tell, the running of a command) and of the node.
func (n *Node) clusterConfig(ec daemon.Config) cluster.Config {
	cc := n.cfg.Cluster
	cc.Tab = ec.Tab
	cc.Tell = n.tell
	cc.Run = n.eng.RunCommand
	cc.Node = ec.Node
	cc.Build = n.cfg.Version
	cc.StateDir = ec.StateDir
	if ec.StateDir != "" {
		cc.Keeper = newKeeperLink(ec.StateDir, ec.Node, ec.Log)
	}
	cc.Hastat = n.cfg.Hastat
	cc.Log = ec.Log
	cc.Files = []cluster.File{
		{Kind: cluster.KindCltab, Path: ec.CltabPath, Validate: func(p string, d []byte) error { _, err := cltab.Parse(p, d); return err }},
		{Kind: cluster.KindHactl, Path: n.cfg.Hactl, Validate: func(p string, d []byte) error { _, err := cltab.ParseHactl(p, d); return err }},
	}
	cc.OnFile = n.changes.fromCluster
	if n.nt != nil {
		cc.OnSummary = n.nt.setCluster
	}
	return cc
}

// tell is the cluster's way to move a group of this node to a level.
func (n *Node) tell(ctx context.Context, group, level string) error {
	_, err := n.eng.Tell(ctx, group, level)
	return err
}

// onStatus is the engine's OnStatus: each new status goes to the
// cluster, and to systemd's STATUS=.
func (n *Node) onStatus(st api.Status) {
	n.cl.SetStatus(st)
	if n.nt != nil {
		n.nt.setEngine(st)
	}
}

// close releases what New took, when it failed.
func (n *Node) close() {
	if n.metrics != nil {
		n.metrics.Close()
	}
	if n.cl != nil {
		n.cl.Close()
	}
	if n.unlock != nil {
		n.unlock()
	}
	if n.ln != nil {
		n.ln.Close()
	}
}

// Run runs the node until the engine has stopped every group.
func (n *Node) Run() error {
	log, ec := n.log, n.cfg.Engine
	defer n.unlock()
	if n.metrics != nil {
		defer n.metrics.Close()
	}
	stop := make(chan struct{})
	defer close(stop)
	go n.changes.run(n.eng, n.cl, stop)
	go n.eng.Run()
	go func() {
		if err := n.srv.Serve(n.ln); err != nil {
			log.Error("socket server", zap.Error(err))
		}
	}()

	if err := watchFile(ec.CltabPath, log, stop, func() {
		n.changes.waitLogged(change{kind: cluster.KindCltab, local: true, cause: "file changed"})
	}); err != nil {
		log.Warn("cannot watch the cltab; reread with clinit or SIGHUP", zap.Error(err))
	}
	// Local edits of the hactl are versioned and replicated by the
	// cluster.
	if err := watchFile(n.cfg.Hactl, log, stop, func() {
		n.changes.waitLogged(change{kind: cluster.KindHactl, local: true, cause: "file changed"})
	}); err != nil {
		log.Warn("cannot watch the hactl; edit it with clinit --ha", zap.Error(err))
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					// logrotate's signal too: the next lines go to a new file
					// of the --log name, the reread's first.
					if n.cfg.ReopenLog != nil {
						if err := n.cfg.ReopenLog(); err != nil {
							log.Error("log file", zap.Error(err))
						}
					}
					n.changes.post(change{kind: cluster.KindCltab, local: true, cause: "SIGHUP"})
					continue
				}
				log.Info("signal: stopping", zap.Stringer("signal", sig))
				go n.eng.Shutdown(context.Background())
			case <-n.eng.Done():
				return
			}
		}
	}()

	log.Info("clinit daemon ready", zap.String("socket", n.cfg.Socket), zap.String("cltab", ec.CltabPath), zap.String("node", ec.Node))
	if _, err := sdaemon.SdNotify(false, sdaemon.SdNotifyReady); err != nil {
		log.Warn("systemd notify", zap.Error(err))
	}
	if n.nt != nil {
		go n.nt.run(stop)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if st, err := n.eng.Status(ctx); err == nil {
			n.nt.setEngine(st)
		}
		cancel()
	}
	go watchdog(n.eng, log)
	<-n.eng.Done()
	sdaemon.SdNotify(false, sdaemon.SdNotifyStopping)
	// Every group has stopped: say goodbye, so the others mark this node
	// left at once instead of waiting to find it dead.
	n.cl.Leave(2 * time.Second)
	n.srv.Close()
	return nil
}

// watchdog answers systemd's watchdog (WatchdogSec=) while the engine
// loop answers requests: a loop stuck for the whole interval gets the
// daemon restarted, and adoption brings its services back unharmed.
func watchdog(eng *daemon.Engine, log *zap.Logger) {
	every, err := sdaemon.SdWatchdogEnabled(false)
	if err != nil || every == 0 {
		return
	}
	t := time.NewTicker(every / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-eng.Done():
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), every/3)
		_, err := eng.Status(ctx)
		cancel()
		if err != nil {
			log.Warn("engine loop did not answer: not petting the systemd watchdog", zap.Error(err))
			continue
		}
		sdaemon.SdNotify(false, sdaemon.SdNotifyWatchdog)
	}
}

// logWarnings logs what is unsafe in a cltab that is in use (settings
// that work but should not be so, cltab.Tab.Warnings).
func logWarnings(log *zap.Logger, t *cltab.Tab) {
	if t == nil {
		return
	}
	for _, w := range t.Warnings.Lines() {
		log.Warn("cltab: " + w)
	}
}
