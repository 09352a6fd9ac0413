// Package daemon is the node engine: resource groups, their processes and
// runlevels (SPEC 3), the clstat file (SPEC 4) and the socket server
// (SPEC 5). One goroutine, Engine.run, owns every group and process; the
// rest of the program talks to it through channels.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/atomicfile"
	"github.com/clinit/clinit/internal/coalesce"
)

// Sentinel errors callers branch on.
var (
	ErrNoGroup  = errors.New("no such group")
	ErrStopping = errors.New("clinit daemon is shutting down")
)

// Config is what the engine needs; paths are already resolved
// (flag, then cltab setting, then default).
type Config struct {
	CltabPath string
	Tab       *cltab.Tab // the validated cltab to start with
	Clstat    string
	StateDir  string // where state survives the daemon; "" keeps none
	RunDir    string // where children's output FIFOs live (beside the socket); "" puts them under StateDir
	Node      string
	Log       *zap.Logger

	// HAGroups are the groups placed by the cluster when the daemon
	// starts: after a crash, one of them is restored only if some of it
	// still runs.
	HAGroups map[string]bool

	Hooks // nil each: none (a node alone)
}

// Hooks tie the engine to what places groups beside it (the cluster).
// They are given in Config or by SetHooks, before Run.
type Hooks struct {
	// OnStatus is called by the loop after every change of state, with
	// the new status; it must not block.
	OnStatus func(api.Status)
	// Handoff is called when a shutdown begins, before anything stops:
	// the cluster moves this node's HA groups away first.
	Handoff func(ctx context.Context)
	// MayStart is asked before every start of a process of group at
	// level (nil: always yes): the cluster's gate, which holds an HA
	// group's processes to this node's lease, so that not even a respawn
	// runs one when the lease has ended (a daemon thawed after a freeze
	// finds its services killed by the keeper, and must not restart
	// them). It must not block.
	MayStart func(group, level string) bool
	// OnEvent is called by the loop with each respawn and throttle, for
	// clinit --watch; it must not block.
	OnEvent func(api.Event)
}

// timing holds the settings that a reread may change.
type timing struct {
	stop   time.Duration // grace between SIGTERM and SIGKILL
	window time.Duration // an exit this soon after its start is rapid
	pause  time.Duration // how long a too-rapid entry rests
	limit  int           // rapid restarts allowed before the pause
}

func timingOf(t *cltab.Tab) timing {
	return timing{
		stop:   t.Duration("stoptimeout", cltab.DefaultStopTimeout),
		window: t.Duration("respawnwindow", cltab.DefaultRespawnWindow),
		pause:  t.Duration("respawnpause", cltab.DefaultRespawnPause),
		limit:  t.Int("respawnlimit", cltab.DefaultRespawnLimit),
	}
}

// heartbeat is how often clstat is rewritten when nothing changes.
const heartbeat = 30 * time.Second

// Engine runs the groups of one node.
type Engine struct {
	cfg  Config
	log  *zap.Logger
	kids *spawner
	// child and clock are what the engine starts children and keeps time
	// with: the spawner and the wall clock, but for transcript tests.
	child starter
	clock clock

	onDisk tabFile // the cltab file as last read

	events chan func() // child exits and timers, posted by their goroutines
	reqs   chan func() // API calls, run by the loop
	done   chan struct{}

	// Owned by run.
	tab       *cltab.Tab
	timing    timing
	groups    map[string]*group
	lingering map[*proc]bool // the procs in a state that lingers (kept by step)
	// persists writes the state and clstat, and posts the status, once
	// per turn of the loop that changed them: the calls and events
	// taken together share one write.
	persists    *coalesce.Coalescer
	journalFile *os.File // children started since the last state snapshot was built
	journalSeq  int      // journalFile's number (journalPath)
	journals    []string // the journal files no durable snapshot covers yet
	journalBuf  []byte   // its last line, whose room the next one reuses
	// The state is written and synced off the loop (writeState): one
	// write in flight, and the changes made meanwhile in the next one.
	writing    bool
	writeAgain bool
	unsaved    []chan struct{} // saved channels that the next write closes
	residues   map[int]*group  // residue process groups being stopped, by their group
	stopping   bool            // shutting down: start nothing, stop everything
	stopped    []chan struct{}
	// writeFile is atomicfile.Write; tests slow it down.
	writeFile func(path string, data []byte, mode os.FileMode) error
	// saved is closed by the next persist: a tell waits on it, so that
	// tells arriving together share one write of the state.
	saved chan struct{}
}

// NewEngine prepares an engine; Run starts it.
func NewEngine(cfg Config) (*Engine, error) {
	kids, err := newSpawner(cfg.Node, cfg.Log)
	if err == nil {
		kids.keeper = keeperDir(cfg.StateDir)
	}
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Log,
		kids:      kids,
		child:     kids,
		clock:     wallClock{},
		events:    make(chan func(), 1024),
		reqs:      make(chan func()),
		done:      make(chan struct{}),
		groups:    map[string]*group{},
		lingering: map[*proc]bool{},
		residues:  map[int]*group{},
		saved:     make(chan struct{}),
		writeFile: atomicfile.Write,
	}
	e.persists = coalesce.New(engineClock{e}, coalesce.Config{Flush: e.persist})
	e.load(cfg.Tab)
	return e, nil
}

// SetHooks ties the engine to the cluster, which needs the engine to
// start: it is called once, before Run, and replaces Config's hooks.
func (e *Engine) SetHooks(h Hooks) { e.cfg.Hooks = h }

// Done is closed once the engine has stopped every group and exited.
func (e *Engine) Done() <-chan struct{} { return e.done }

// maxBatch bounds how many waiting calls the loop takes at once before
// it writes the state and clstat.
const maxBatch = 256

// Run is the engine loop. It returns after Shutdown has stopped everything.
func (e *Engine) Run() {
	defer close(e.done)
	defer func() { // nothing waits past the end
		close(e.saved)
		for _, w := range e.unsaved {
			close(w)
		}
	}()
	orphans, stopOrphans := e.child.orphans()
	defer stopOrphans()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	defer e.persists.Stop()
	e.restore()
	e.child.readOutput()
	e.persists.FlushNow()
	for {
		select {
		case f := <-e.events:
			f()
		case f := <-e.reqs:
			f()
			// Take the calls already waiting too (HA tells come in
			// bursts), so that one write of the state serves them all.
			for n := 0; n < maxBatch; n++ {
				select {
				case f := <-e.reqs:
					f()
					continue
				default:
				}
				break
			}
		case <-orphans:
			e.lingerCheck()
		case <-tick.C:
			e.persists.Mark()
		}
		// Drain what is already queued before writing clstat once.
		for n := len(e.events); n > 0; n-- {
			(<-e.events)()
		}
		e.child.readOutput()
		if e.stopping && e.idle() && !e.writing {
			e.finish()
			return
		}
		e.persists.Poll()
	}
}

// post hands f to the loop from any goroutine. The channel is large and
// the loop drains it until it exits, so this only blocks under a burst.
func (e *Engine) post(f func()) {
	select {
	case e.events <- f:
	case <-e.done:
	}
}

// call runs f on the loop and waits for it.
func (e *Engine) call(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case e.reqs <- func() { f(); close(ran) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return ErrStopping
	}
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return ErrStopping
	}
}

// Tell moves group g to level l; an empty g means the node's own group.
// It returns the group name it acted on.
func (e *Engine) Tell(ctx context.Context, g, l string) (string, error) {
	if g == "" {
		g = e.cfg.Node
	}
	var err error
	// Persisted before the answer: a told level survives a crash that
	// follows the answer at once. The loop persists after the calls
	// waiting with this one.
	var saved chan struct{}
	cerr := e.call(ctx, func() {
		if err = e.tell(g, l); err == nil {
			e.persists.Mark()
			saved = e.saved
		}
	})
	if cerr == nil && err == nil {
		select {
		case <-saved:
		case <-ctx.Done():
			cerr = ctx.Err()
		}
	}
	return g, errors.Join(cerr, err)
}

// Reread loads the cltab again and reconciles the running groups with it.
// An invalid file changes nothing; its error (cltab.Errors) is returned.
func (e *Engine) Reread(ctx context.Context) (changed []string, err error) {
	e.onDisk.mu.Lock()
	defer e.onDisk.mu.Unlock()
	read := stampOf(e.cfg.CltabPath) // before the read: a later edit is seen as one
	t, lerr := cltab.Load(e.cfg.CltabPath)
	if lerr != nil {
		return nil, lerr
	}
	cerr := e.call(ctx, func() {
		if changed = e.reconcile(t); len(changed) > 0 {
			e.persists.FlushNow()
		}
	})
	if cerr == nil {
		e.onDisk.stamp = read
	}
	return changed, cerr
}

// Status returns the state of every told group.
func (e *Engine) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	err := e.call(ctx, func() { st = e.status() })
	return st, err
}

// Tab returns the cltab in use.
func (e *Engine) Tab(ctx context.Context) (*cltab.Tab, error) {
	var t *cltab.Tab
	err := e.call(ctx, func() { t = e.tab })
	return t, err
}

// Groups returns the names of the groups of the cltab in use.
func (e *Engine) Groups(ctx context.Context) ([]string, error) {
	var gs []string
	err := e.call(ctx, func() { gs = e.tab.Groups() })
	return gs, err
}

// Shutdown stops every group gracefully and makes Run return. It returns
// once everything has stopped, or when ctx ends.
func (e *Engine) Shutdown(ctx context.Context) error {
	if e.cfg.Handoff != nil {
		hctx, cancel := context.WithTimeout(ctx, e.handoffTimeout())
		e.cfg.Handoff(hctx)
		cancel()
	}
	wait := make(chan struct{})
	err := e.call(ctx, func() {
		e.stopped = append(e.stopped, wait)
		if !e.stopping {
			e.stopping = true
			e.log.Info("stopping every group")
			for _, g := range e.groups {
				e.advance(g)
			}
		}
	})
	if errors.Is(err, ErrStopping) {
		<-e.done
		return nil
	}
	if err != nil {
		return err
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handoffTimeout bounds how long a shutdown waits for HA groups to stop
// before it stops everything anyway.
func (e *Engine) handoffTimeout() time.Duration {
	var stop time.Duration
	e.call(context.Background(), func() { stop = e.timing.stop })
	return stop + 5*time.Second
}

func (e *Engine) tell(name, level string) error {
	if e.stopping {
		return ErrStopping
	}
	g := e.groups[name]
	if g == nil || len(g.procs) == 0 {
		return fmt.Errorf("%w: %s", ErrNoGroup, name)
	}
	// Logged once the group's starts are under way: the log's write
	// does not delay them.
	defer e.log.Info("tell", zap.String("group", name), zap.String("level", level))
	if !g.told || g.level != level {
		g.epoch++
		for _, p := range g.procs {
			e.step(p, input{ev: evRelease})
		}
	}
	g.told, g.level = true, level
	g.state = "" // every tell is a transition, even to the same state
	e.advance(g)
	return nil
}

// load builds the groups of a first cltab.
func (e *Engine) load(t *cltab.Tab) {
	e.tab, e.timing = t, timingOf(t)
	for _, ent := range t.Entries {
		g := e.group(ent.Group)
		g.add(&proc{g: g, entry: ent})
	}
}

func (e *Engine) group(name string) *group {
	g := e.groups[name]
	if g == nil {
		g = &group{name: name}
		e.groups[name] = g
	}
	return g
}

// reconcile switches to a new cltab (SPEC 3, reread): removed entries
// stop, changed ones restart, new ones start where their group's level
// has them. Groups with no change are not touched.
func (e *Engine) reconcile(t *cltab.Tab) []string {
	e.tab, e.timing = t, timingOf(t)
	touched := map[*group]bool{}
	newByTag := map[string]*cltab.Entry{}
	for _, ent := range t.Entries {
		newByTag[ent.Tag] = ent
	}
	// Retire what is gone or changed.
	for _, g := range e.groups {
		kept := g.procs[:0]
		for _, p := range g.procs {
			n := newByTag[p.entry.Tag]
			if n == nil || n.Group != p.entry.Group || n.Mode != p.entry.Mode || n.Command != p.entry.Command {
				e.retire(g, p)
				touched[g] = true
				continue
			}
			if n.RawLevels != p.entry.RawLevels {
				touched[g] = true
			}
			p.entry = n
			kept = append(kept, p)
		}
		g.procs = kept
	}
	// Add what is new, then put every group back in file order.
	for _, ent := range t.Entries {
		g := e.group(ent.Group)
		if g.byTag[ent.Tag] == nil {
			g.add(&proc{g: g, entry: ent})
			touched[g] = true
		}
	}
	for _, g := range e.groups {
		g.sortByLine()
	}
	var names []string
	for g := range touched {
		names = append(names, g.name)
	}
	sort.Strings(names)
	// In name order, as a tell of each would: what a reread starts and
	// stops, and what it logs, is the same every time.
	for _, name := range names {
		g := e.groups[name]
		e.advance(g)
		e.forget(g)
	}
	if len(names) > 0 {
		e.log.Info("cltab reread", zap.Strings("changed", names))
	}
	return names
}

// forget drops a group that left the cltab once nothing of it runs.
func (e *Engine) forget(g *group) {
	if len(g.procs) == 0 && len(g.retired) == 0 {
		delete(e.groups, g.name)
		e.persists.Mark()
	}
}

// idle reports whether no process of any group is alive.
func (e *Engine) idle() bool {
	if len(e.residues) > 0 {
		return false
	}
	for _, g := range e.groups {
		if g.alive() {
			return false
		}
	}
	return true
}

// persist writes the state that survives the daemon, then clstat: what
// an observer reads in clstat is already durable. The write and its sync
// run off the loop (writeState); the tells waiting on saved are answered
// once it is done.
func (e *Engine) persist() {
	e.unsaved = append(e.unsaved, e.saved)
	e.saved = make(chan struct{})
	if e.writing {
		e.writeAgain = true
		return
	}
	e.writeState()
}

// published makes st, durable now, what observers see: clstat, the
// status hook, and the answers of the tells that waited for it.
func (e *Engine) published(st api.Status, waiters []chan struct{}) {
	e.writeClstat(st)
	if e.cfg.OnStatus != nil {
		e.cfg.OnStatus(st)
	}
	for _, w := range waiters {
		close(w)
	}
}

func (e *Engine) finish() {
	e.dropState()
	if err := os.Remove(e.cfg.Clstat); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.log.Warn("removing clstat", zap.Error(err))
	}
	e.log.Info("every group stopped")
	for _, w := range e.stopped {
		close(w)
	}
}
