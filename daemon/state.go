package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/safedir"
)

// What the daemon remembers across its own death (SPEC 5): each group's
// level and every process it runs, so that a daemon started after a
// SIGKILL adopts what still runs and starts nothing twice.

const stateVersion = 1

type savedState struct {
	Version int          `json:"version"`
	Node    string       `json:"node"`
	Groups  []savedGroup `json:"groups"`
}

type savedGroup struct {
	Group string      `json:"group"`
	Told  bool        `json:"told"`
	Level string      `json:"level"`
	Epoch int         `json:"epoch"`
	Procs []savedProc `json:"procs,omitempty"`
}

type savedProc struct {
	Tag      string     `json:"tag"`
	Mode     cltab.Mode `json:"mode"`
	Hash     string     `json:"hash"` // of mode and command: a changed entry is not ours
	Pid      int        `json:"pid,omitempty"`
	Start    uint64     `json:"start,omitempty"` // /proc start time of pid
	Run      int        `json:"run"`
	Epoch    int        `json:"epoch"`
	Started  time.Time  `json:"started,omitzero"`
	Restarts int        `json:"restarts,omitempty"`
	Exited   bool       `json:"exited,omitempty"`
	Exit     int        `json:"exit,omitempty"`
	Retiring bool       `json:"retiring,omitempty"`
	Fifo     string     `json:"fifo,omitempty"` // its output, to read again
	Residues []int      `json:"residues,omitempty"`
	// Linger: Pid is the process group the run's exited leader left
	// members in; the run lasts until they are gone.
	Linger bool `json:"linger,omitempty"`
}

func entryHash(e *cltab.Entry) string {
	sum := sha256.Sum256([]byte(string(e.Mode) + "\x00" + e.Command))
	return hex.EncodeToString(sum[:8])
}

func (e *Engine) statePath() string { return filepath.Join(e.cfg.StateDir, "state.json") }

// The snapshot is written once per batch of events; between a spawn and
// the next snapshot, the journal holds the new child: one line appended
// right after each spawn, replayed over the snapshot on restore. Each
// snapshot starts a new journal file (journal.N) as it is built, and
// removes the ones before once it is durable: so a daemon killed at any
// moment leaves a record of every child it started, in the snapshot or
// in a journal that is still there. (Replay takes a line only over an
// older run of its entry: a line the snapshot has already is harmless.)
//
// The journal files live beside the output FIFOs, in the runtime
// directory (a tmpfs, /var/run's): one is made and one removed at every
// snapshot, which on a disk costs metadata writes that wait behind other
// syncs, and what they record, the children, does not outlive a reboot
// either.
func (e *Engine) journalPath(seq int) string {
	return filepath.Join(e.outDir(), "journal."+strconv.Itoa(seq))
}

// journalFiles lists the journal files: those of the runtime directory,
// and those an older daemon kept in the state directory ("journal",
// "journal.N").
func (e *Engine) journalFiles() (paths []string, last int) {
	dirs := []string{e.cfg.StateDir, e.outDir()}
	if dirs[0] == dirs[1] {
		dirs = dirs[1:]
	}
	for _, dir := range dirs {
		names, _ := filepath.Glob(filepath.Join(dir, "journal*"))
		for _, name := range names {
			base := filepath.Base(name)
			n, err := strconv.Atoi(strings.TrimPrefix(base, "journal."))
			switch {
			case base == "journal":
			case err != nil || n <= 0:
				continue // not ours
			case dir == e.outDir():
				last = max(last, n)
			}
			paths = append(paths, name)
		}
	}
	return paths, last
}

func (e *Engine) journal(p *proc) {
	if e.cfg.StateDir == "" {
		return
	}
	if e.journalFile == nil {
		e.journalSeq++
		f, err := os.OpenFile(e.journalPath(e.journalSeq), os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			e.log.Error("journal", zap.Error(err))
			return
		}
		e.journalFile = f
		e.journals = append(e.journals, e.journalPath(e.journalSeq))
	}
	jl := journalLine{Group: p.g.name, Proc: p.saved(false)}
	line := jl.appendJSON(e.journalBuf[:0])
	if line == nil {
		return
	}
	e.journalBuf = append(line, '\n')
	if _, err := e.journalFile.Write(e.journalBuf); err != nil {
		e.log.Error("journal", zap.Error(err))
	}
}

type journalLine struct {
	Group string    `json:"group"`
	Proc  savedProc `json:"proc"`
}

// replay applies the journal's starts that the snapshot does not have.
func replay(st *savedState, data []byte) {
	for _, l := range strings.Split(string(data), "\n") {
		var jl journalLine
		if json.Unmarshal([]byte(l), &jl) != nil {
			continue // a line cut by the crash
		}
		var sg *savedGroup
		for i := range st.Groups {
			if st.Groups[i].Group == jl.Group {
				sg = &st.Groups[i]
			}
		}
		if sg == nil {
			st.Groups = append(st.Groups, savedGroup{Group: jl.Group})
			sg = &st.Groups[len(st.Groups)-1]
		}
		found := false
		for i := range sg.Procs {
			if sp := &sg.Procs[i]; sp.Tag == jl.Proc.Tag && !sp.Retiring {
				found = true
				if jl.Proc.Run > sp.Run {
					*sp = jl.Proc
				}
			}
		}
		if !found {
			sg.Procs = append(sg.Procs, jl.Proc)
		}
	}
}

// outFifo is the output FIFO of run number run of an entry, or "" when
// the daemon keeps no state (then a plain pipe is used).
func (e *Engine) outFifo(tag string, run int) string {
	if e.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(e.outDir(), fileName(tag)+"."+strconv.Itoa(run))
}

// outDir holds the output FIFOs: the runtime directory when there is one
// (a FIFO is made and removed at every start; on tmpfs that costs
// microseconds, on a disk file system up to milliseconds), else under the
// state directory.
func (e *Engine) outDir() string {
	if e.cfg.RunDir != "" {
		return e.cfg.RunDir
	}
	return filepath.Join(e.cfg.StateDir, "out")
}

// fileName makes a tag safe as one file name: a tag may be "..", or hold
// a "/", and must not reach outside its directory. Bytes other than
// letters, digits, '-' and '_' become %XX.
func fileName(tag string) string {
	var b strings.Builder
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// exitFile is where a wait or test entry's wrapper leaves its exit
// status, so that it is known even if the daemon was dead when it ended:
// beside the output FIFOs, for the same reason (made anew at every run,
// on a tmpfs; a reboot ends the run it tells of anyway).
func (e *Engine) exitFile(tag string) string {
	if e.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(e.outDir(), fileName(tag)+".exit")
}

// oldExitFile is where an older daemon left exit statuses.
func (e *Engine) oldExitFile(tag string) string {
	return filepath.Join(e.cfg.StateDir, "exit", fileName(tag))
}

// writeState builds the snapshot of the state on the loop and writes it,
// synced, on a goroutine of its own: a sync takes tens of milliseconds
// on a disk (a hundred and more with many daemons on one), during which
// the loop goes on starting and reaping. What changes meanwhile goes in
// the next write, started when this one is done.
func (e *Engine) writeState() {
	st, waiters := e.status(), e.unsaved
	e.unsaved = nil
	if e.cfg.StateDir == "" {
		e.published(st, waiters)
		return
	}
	data, err := json.Marshal(e.snapshot())
	if err != nil {
		e.log.Error("saving state", zap.String("path", e.statePath()), zap.Error(err))
		e.published(st, waiters)
		return
	}
	// The children started from now on go to a new journal file; the
	// ones before are in data.
	covered := e.journals
	e.journals = nil
	if e.journalFile != nil {
		e.journalFile.Close()
		e.journalFile = nil
	}
	e.writing = true
	path, write := e.statePath(), e.writeFile
	go func() {
		err := write(path, data, 0o600)
		if err == nil {
			for _, j := range covered {
				os.Remove(j)
			}
		}
		e.post(func() { e.stateWritten(err, covered, st, waiters) })
	}()
}

// stateWritten ends a write of writeState, on the loop.
func (e *Engine) stateWritten(err error, covered []string, st api.Status, waiters []chan struct{}) {
	e.writing = false
	if err != nil {
		e.log.Error("saving state", zap.String("path", e.statePath()), zap.Error(err))
		e.journals = append(covered, e.journals...) // still needed
	}
	e.published(st, waiters)
	if e.writeAgain {
		e.writeAgain = false
		e.writeState()
	}
}

// snapshot is the state to save: every group told, or with processes.
func (e *Engine) snapshot() savedState {
	st := savedState{Version: stateVersion, Node: e.cfg.Node}
	for _, g := range e.groups {
		sg := savedGroup{Group: g.name, Told: g.told, Level: g.level, Epoch: g.epoch}
		for _, p := range g.procs {
			// An entry that never ran restores as it is built from the
			// cltab: a thousand HA groups on each node of a cluster,
			// most of them never told here, are not written at every
			// batch.
			if !p.blank() {
				sg.Procs = append(sg.Procs, p.saved(false))
			}
		}
		for _, p := range g.retired {
			sg.Procs = append(sg.Procs, p.saved(true))
		}
		if sg.Told || len(sg.Procs) > 0 {
			st.Groups = append(st.Groups, sg)
		}
	}
	return st
}

// blank: the entry has never run in this daemon's memory, nothing of it
// is left, and nothing is counted: what restore makes of no record.
func (p *proc) blank() bool {
	return p.run == 0 && p.epoch == 0 && p.m.state == sDown && p.started.IsZero() &&
		p.restarts == 0 && !p.exited && p.exit == 0 && len(p.residues) == 0
}

// hash is entryHash of the proc's entry, computed once per entry.
func (p *proc) hash() string {
	if p.hashOf != p.entry {
		p.hashOf, p.hashText = p.entry, entryHash(p.entry)
	}
	return p.hashText
}

func (p *proc) saved(retiring bool) savedProc {
	sp := savedProc{Tag: p.entry.Tag, Mode: p.entry.Mode, Hash: p.hash(), Run: p.run, Epoch: p.epoch,
		Started: p.started, Restarts: p.restarts, Exited: p.exited, Exit: p.exit, Retiring: retiring, Residues: p.residues}
	switch {
	case p.m.state.leader():
		sp.Pid, sp.Start, sp.Fifo = p.pid, p.startTicks, p.fifo
	case p.m.state.lingers():
		sp.Pid, sp.Start, sp.Linger = p.pid, p.startTicks, true
	}
	return sp
}

// restore brings back the groups of a daemon that died: levels, what ran
// in the current epoch, and the processes that still run, adopted. Then
// every told group advances, which restarts dead respawn entries and
// resumes interrupted transitions.
func (e *Engine) restore() {
	if e.cfg.StateDir == "" {
		return
	}
	data, err := os.ReadFile(e.statePath())
	var journal []byte
	e.journals, e.journalSeq = e.journalFiles()
	for _, j := range e.journals {
		b, _ := os.ReadFile(j)
		journal = append(append(journal, b...), '\n')
	}
	if len(bytes.TrimSpace(journal)) == 0 {
		journal = nil
	}
	// With neither, nothing was recorded; still, a first run may have
	// been started by a daemon killed before it recorded it.
	fresh := errors.Is(err, os.ErrNotExist) && len(journal) == 0
	if errors.Is(err, os.ErrNotExist) {
		data, err = []byte(`{"version":1}`), nil
	}
	var st savedState
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err == nil {
		replay(&st, journal)
	}
	if err == nil && st.Version != stateVersion {
		err = errors.New("unknown version " + strconv.Itoa(st.Version))
	}
	if err != nil {
		e.log.Error("state unreadable: starting with no group told", zap.String("path", e.statePath()), zap.Error(err))
		return
	}
	adopted, lost := 0, 0
	unrecorded := e.unrecorded(&st)
	for _, sg := range st.Groups {
		adoptedBefore := adopted
		g := e.group(sg.Group)
		if len(g.procs) > 0 { // still in the cltab
			g.told, g.level, g.epoch = sg.Told, sg.Level, sg.Epoch
		}
		for _, sp := range sg.Procs {
			p := g.byTag[sp.Tag]
			if p == nil || sp.Retiring || entryHash(p.entry) != sp.Hash {
				if sp.Pid == 0 {
					continue
				}
				// Gone from the cltab, or changed, while we were away:
				// if it still runs it is ours to stop.
				p = &proc{g: g, entry: &cltab.Entry{Group: sg.Group, Tag: sp.Tag, Mode: sp.Mode}}
				g.retired = append(g.retired, p)
			}
			p.run, p.epoch, p.started, p.restarts = sp.Run, sp.Epoch, sp.Started, sp.Restarts
			p.exited, p.exit, p.since = sp.Exited, sp.Exit, sp.Started
			for _, pgid := range sp.Residues {
				if groupOf(pgid, sg.Group, sp.Tag) {
					p.residues = append(p.residues, pgid)
				}
			}
			if sp.Pid == 0 {
				continue
			}
			if sp.Linger && groupOf(sp.Pid, sg.Group, sp.Tag) {
				// Its leader had exited and others of its process
				// group still run: they are watched again.
				p.pid, p.exited = sp.Pid, true
				e.step(p, input{ev: evAdoptGroup})
				adopted++
				continue
			}
			if !sp.Linger && e.adopt(p, sp.Pid, sp.Start, sp.Fifo) {
				adopted++
				continue
			}
			os.Remove(sp.Fifo)
			// It ended while we were away.
			lost++
			p.exited, p.exit, p.since = true, e.readExit(p), e.clock.Now()
			if groupOf(sp.Pid, sg.Group, sp.Tag) {
				// It left others in its process group. How it ended is
				// unknown: a respawn entry may have gone to the
				// background, so it is not started a second time beside
				// them (nor is an entry being retired); for the others,
				// what is left is stopped with the entry.
				p.pid = sp.Pid
				if p.entry.Mode == cltab.ModeRespawn || g.byTag[sp.Tag] != p {
					e.step(p, input{ev: evAdoptGroup})
				} else {
					p.residues = append(p.residues, sp.Pid)
				}
			}
		}
		adopted += e.adoptUnrecorded(g, unrecorded[sg.Group])
		delete(unrecorded, sg.Group)
		if e.cfg.HAGroups[sg.Group] && adopted == adoptedBefore && g.told {
			// An HA group of which nothing survived is the cluster's to
			// place again (through plan and test, with quorum): started
			// here at once, it could run beside the node that took it over
			// while this one was down.
			e.log.Info("HA group not restored: nothing of it survived", zap.String("group", g.name), zap.String("level", g.level))
			g.told, g.level = false, ""
		}
		e.forget(g)
	}
	for name, ls := range unrecorded {
		// A group the state does not name at all is not told here: what
		// runs of it is adopted to be stopped.
		g := e.group(name)
		adopted += e.adoptUnrecorded(g, ls)
		e.forget(g)
	}
	if fresh && adopted == 0 {
		return
	}
	e.log.Info("state restored", zap.Int("adopted", adopted), zap.Int("ended while away", lost))
	for _, g := range e.groups {
		e.advance(g)
	}
	e.persists.Mark()
}

// unrecorded finds, by group, the runs of our entries that the state does
// not name, newest first. A start is recorded right after its fork (the
// journal), so a daemon killed in between leaves a child that no record
// names; not adopted, it would run beside the copy started in its place.
func (e *Engine) unrecorded(st *savedState) map[string][]leader {
	known := map[int]bool{}
	for _, sg := range st.Groups {
		for _, sp := range sg.Procs {
			known[sp.Pid] = true
			for _, pgid := range sp.Residues {
				known[pgid] = true
			}
		}
	}
	out := map[string][]leader{}
	for _, l := range entryLeaders(e.kids.keeper, known) {
		out[l.group] = append(out[l.group], l)
	}
	for _, ls := range out {
		sort.Slice(ls, func(i, j int) bool { return ls[i].start > ls[j].start })
	}
	return out
}

// adoptUnrecorded takes over runs of g found by unrecorded. A daemon has
// at most one run of an entry that it has not recorded (it records each
// start before it makes another), and only when nothing else of the
// entry runs: so, for each entry of which nothing was adopted, the newest
// found is its run after the last recorded one; of an entry gone from
// the cltab, or of a group whose level was not recorded, it is adopted
// as retired, and so stopped. The others found are left alone, as any
// process that left its run's group is. Its command is taken to be the
// entry's: a cltab changed while the daemon was away, between a fork and
// its record, goes unnoticed. It returns how many were adopted.
func (e *Engine) adoptUnrecorded(g *group, ls []leader) int {
	n := 0
	taken := map[string]bool{}
	for _, p := range g.procs {
		taken[p.entry.Tag] = p.alive()
	}
	for _, p := range g.retired {
		taken[p.entry.Tag] = taken[p.entry.Tag] || p.alive()
	}
	for _, l := range ls { // newest first
		if taken[l.tag] {
			continue
		}
		taken[l.tag] = true
		p := g.byTag[l.tag]
		fifo := ""
		if p != nil && p.m.state == sDown {
			p.run++
			p.epoch, p.started, p.since, p.exited = g.epoch, e.clock.Now(), e.clock.Now(), false
			if f := e.outFifo(l.tag, p.run); f != "" {
				if fi, err := os.Lstat(f); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
					fifo = f
				}
			}
		} else {
			mode := cltab.ModeOnce // retired: stopped, never started again
			if p != nil {
				mode = p.entry.Mode
			}
			p = &proc{g: g, entry: &cltab.Entry{Group: g.name, Tag: l.tag, Mode: mode}}
			g.retired = append(g.retired, p)
		}
		if e.adopt(p, l.pid, l.start, fifo) {
			e.log.Warn("adopted a run its predecessor did not record", zap.String("group", g.name), zap.String("tag", l.tag), zap.Int("pid", l.pid))
			n++
		}
	}
	return n
}

// adopt takes over a running process left by our predecessor.
func (e *Engine) adopt(p *proc, pid int, start uint64, fifo string) bool {
	run := p.run
	err := watchPid(pid, start, func() {
		e.post(func() { e.exited(p, run, nil) })
	})
	if err != nil {
		return false
	}
	p.pid, p.startTicks, p.fifo = pid, start, fifo
	e.step(p, input{ev: evAdopt})
	cl := childLog{e.log, p.g.name, p.entry.Tag, pid}
	if fifo != "" {
		if r, err := openFifo(fifo); err == nil {
			go e.kids.capture(r, fifo, cl)
		} else {
			cl.logger().Warn("cannot read the output of an adopted process", zap.Error(err))
		}
	}
	e.log.Info("adopted", zap.String("group", p.g.name), zap.String("tag", p.entry.Tag), zap.Int("pid", pid))
	return true
}

// readExit is the exit status an adopted wait or test left in its exit
// file; -1 when unknown (other modes, or the wrapper itself was killed).
func (e *Engine) readExit(p *proc) int {
	path := e.exitFile(p.entry.Tag)
	if path == "" || (p.entry.Mode != cltab.ModeWait && p.entry.Mode != cltab.ModeTest) {
		return -1
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		// A run an older daemon started: its wrapper wrote there.
		f, err = os.OpenFile(e.oldExitFile(p.entry.Tag), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return -1
	}
	data := make([]byte, 32)
	n, _ := f.Read(data)
	f.Close()
	code, err := strconv.Atoi(strings.TrimSpace(string(data[:n])))
	if err != nil {
		return -1
	}
	return code
}

// dropState forgets everything after a graceful shutdown: the next daemon
// starts with no group told, like the first.
func (e *Engine) dropState() {
	if e.cfg.StateDir == "" {
		return
	}
	if e.journalFile != nil {
		e.journalFile.Close()
		e.journalFile = nil
	}
	paths := []string{e.statePath(), filepath.Join(e.cfg.StateDir, "exit"), e.outDir()}
	journals, _ := e.journalFiles()
	paths = append(paths, journals...)
	e.journals = nil
	for _, path := range paths {
		if err := os.RemoveAll(path); err != nil {
			e.log.Warn("removing state", zap.String("path", path), zap.Error(err))
		}
	}
}

// ErrStateInUse is returned when another daemon holds the state directory.
var ErrStateInUse = errors.New("state directory in use by another clinit daemon")

// LockStateDir takes the state directory for this daemon (flock on
// STATEDIR/lock, released when the daemon exits or dies): two daemons
// sharing one would adopt each other's children.
func LockStateDir(dir string) (release func(), err error) {
	if dir == "" {
		return func() {}, nil
	}
	// Root writes exit statuses, FIFOs and its journal here, and reads
	// them back: nobody else may plant anything (internal/safedir).
	if err := safedir.Ensure(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	for _, sub := range []string{"exit", "out"} {
		if err := safedir.Check(filepath.Join(dir, sub)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (give each daemon its own --state-dir)", ErrStateInUse, dir)
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
