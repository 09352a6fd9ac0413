package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/internal/reaper"
	"github.com/clinit/clinit/internal/safedir"
)

// Run is `clinit -d`: it takes the socket, serves requests, rereads the
// cltab on SIGHUP and on change, and returns once SIGTERM, SIGINT or a
// shutdown request has stopped every group.
func Run(cfg Config, socket string) error {
	log := cfg.Log
	// Before anything is made or adopted in its name.
	if msg := cltab.BadName("node", cfg.Node); msg != "" {
		return fmt.Errorf("%s: give this node a good --node", msg)
	}
	logWarnings(log, cfg.Tab)
	if err := reaper.BecomeSubreaper(); err != nil {
		log.Warn("cannot become a child subreaper: orphans of services go to init", zap.Error(err))
	}
	ln, err := Listen(socket)
	if err != nil {
		return err
	}
	if cfg.RunDir == "" && cfg.StateDir != "" {
		// Beside the socket: /var/run is a tmpfs, which survives a daemon
		// restart (adoption reopens the FIFOs) but not a reboot (when
		// there is nothing to adopt).
		cfg.RunDir = socket + ".out"
	}
	if cfg.RunDir != "" {
		if err := safedir.Ensure(cfg.RunDir, 0o700); err != nil {
			ln.Close()
			return fmt.Errorf("output directory: %w", err)
		}
	}
	unlock, err := LockStateDir(cfg.StateDir)
	if err != nil {
		ln.Close()
		return err
	}
	defer unlock()
	// The engine rereads on behalf of the cluster, and the cluster hears
	// of the engine's changes and tells it where HA groups go. The engine
	// is made first and runs only once the cluster has started.
	if h, err := cltab.LoadHactl(cfg.Hactl); err == nil {
		cfg.HAGroups = map[string]bool{}
		for _, g := range h.Groups {
			cfg.HAGroups[g.Group] = true
		}
	}
	var cl *cluster.Cluster
	// Under systemd, STATUS= follows the engine's and the cluster's state.
	var nt *notifier
	if send := systemdNotify(); send != nil {
		nt = newNotifier(send)
		cfg.Cluster.OnSummary = nt.setCluster
	}
	cfg.OnStatus = func(st api.Status) {
		cl.SetStatus(st)
		if nt != nil {
			nt.setEngine(st)
		}
	}
	cfg.OnEvent = func(ev api.Event) { cl.Emit(ev) }
	cfg.Handoff = func(ctx context.Context) { cl.Handoff(ctx) }
	cfg.MayStart = func(g, l string) bool { return cl == nil || cl.MayStart(g, l) }
	eng, err := NewEngine(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	reread := func(why string) {
		if nt != nil {
			nt.reloading()
			defer nt.reloaded()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := eng.Reread(ctx)
		var invalid cltab.Errors
		switch {
		case errors.As(err, &invalid):
			log.Error("cltab invalid, keeping the last good one", zap.String("cause", why), zap.Strings("errors", invalid.Lines()))
		case err != nil && !errors.Is(err, ErrStopping):
			log.Error("cltab reread", zap.String("cause", why), zap.Error(err))
		}
		if t, terr := eng.Tab(ctx); terr == nil {
			if err == nil {
				logWarnings(log, t)
			}
			cl.SetTab(ctx, t)
		}
	}
	tell := func(ctx context.Context, g, l string) error {
		_, err := eng.Tell(ctx, g, l)
		return err
	}
	if cl, err = startCluster(cfg, eng, reread, tell); err != nil {
		ln.Close()
		return err
	}
	srv := NewServer(eng, log)
	srv.serveCluster(cl)
	if cfg.Metrics != "" {
		ms, err := serveMetrics(cfg.Metrics, cfg.Version, eng, cl, log, cfg.Node, advertisedHost(cfg.Cluster.Advertise))
		if err != nil {
			cl.Close()
			ln.Close()
			return err
		}
		defer ms.Close()
	}
	go eng.Run()
	go func() {
		if err := srv.Serve(ln); err != nil {
			log.Error("socket server", zap.Error(err))
		}
	}()

	stop := make(chan struct{})
	defer close(stop)
	cltabChanged := func() {
		// Versioned (and replicated) first, when valid; an invalid file is
		// reported by the reread.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cl.FileChanged(ctx, cluster.KindCltab); err != nil && !errors.Is(err, cltab.ErrInvalid) {
			log.Error("cltab change", zap.Error(err))
		}
		reread("file changed")
	}
	if err := watchFile(cfg.CltabPath, log, stop, cltabChanged); err != nil {
		log.Warn("cannot watch the cltab; reread with clinit or SIGHUP", zap.Error(err))
	}
	watchHactl(cl, cfg.Hactl, log, stop)

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
					if cfg.ReopenLog != nil {
						if err := cfg.ReopenLog(); err != nil {
							log.Error("log file", zap.Error(err))
						}
					}
					reread("SIGHUP")
					continue
				}
				log.Info("signal: stopping", zap.Stringer("signal", sig))
				go eng.Shutdown(context.Background())
			case <-eng.Done():
				return
			}
		}
	}()

	log.Info("clinit daemon ready", zap.String("socket", socket), zap.String("cltab", cfg.CltabPath), zap.String("node", cfg.Node))
	if _, err := sdaemon.SdNotify(false, sdaemon.SdNotifyReady); err != nil {
		log.Warn("systemd notify", zap.Error(err))
	}
	if nt != nil {
		go nt.run(stop)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if st, err := eng.Status(ctx); err == nil {
			nt.setEngine(st)
		}
		cancel()
	}
	go watchdog(eng, log)
	<-eng.Done()
	sdaemon.SdNotify(false, sdaemon.SdNotifyStopping)
	// Every group has stopped: say goodbye, so the others mark this node
	// left at once instead of waiting to find it dead.
	cl.Leave(2 * time.Second)
	srv.Close()
	return nil
}

// watchdog answers systemd's watchdog (WatchdogSec=) while the engine
// loop answers requests: a loop stuck for the whole interval gets the
// daemon restarted, and adoption brings its services back unharmed.
func watchdog(eng *Engine, log *zap.Logger) {
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
