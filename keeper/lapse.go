package keeper

import (
	"sort"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// lapse stops every process of the held groups: the lease's deadline has
// passed (or a process was watched after it). Watched process groups get
// SIGTERM first, with one kill(2) each and no /proc scan in between, then
// every process whose environment names this node and a held group; each
// gets SIGKILL after the stop timeout unless it is gone by then. The
// groups stay held: a later lease cannot bring back what was stopped.
func (k *keeper) lapse(now int64) {
	if len(k.held) == 0 {
		return
	}
	l := &Lapse{Deadline: k.deadline, At: now, Termed: []Signalled{}, Killed: []Signalled{}}
	killAt := now + k.stopTimeout
	k.lapses++
	k.last = l
	groups := map[int]bool{} // process groups signalled whole
	for _, t := range k.sortedWatched() {
		// The SIGKILL round has its own pidfd: an unwatch or a release
		// in the grace period does not spare the process.
		c, err := t.dup()
		if err != nil {
			continue
		}
		if err := c.signal(unix.SIGTERM); err != nil {
			c.close()
			continue
		}
		groups[t.Pid] = true
		k.termed(l, c.Signalled)
		k.pending = append(k.pending, pendingKill{t: c, at: killAt, lapse: l})
	}
	scanStart := time.Now()
	found := scanEnv(k.node, k.dir, k.held, unix.Getpid())
	scan := time.Since(scanStart)
	for _, m := range found {
		if groups[m.pid] {
			continue
		}
		whole := m.pid == m.pgid
		t, err := openTarget(m.pid, m.start, Signalled{Group: m.group, Whole: whole, Why: "environ"})
		if err != nil {
			continue // gone since the scan
		}
		// A member of a group signalled whole got its SIGTERM; it is
		// kept for the SIGKILL round in case its leader is reaped before.
		if !groups[m.pgid] {
			if t.signal(unix.SIGTERM) != nil {
				t.close()
				continue
			}
			if whole {
				groups[m.pid] = true
			}
			k.termed(l, t.Signalled)
		}
		k.pending = append(k.pending, pendingKill{t: t, at: killAt, lapse: l})
	}
	k.log.Info("lapse", zap.Int64("deadline", l.Deadline), zap.Duration("late", time.Duration(now-l.Deadline)),
		zap.Duration("scan", scan), zap.String("held", k.heldList()), zap.Int("sigterm", len(l.Termed)),
		zap.Duration("stop_timeout", time.Duration(k.stopTimeout)))
	// The lapse's own SIGKILL round, for stragglers, runs even when
	// nothing was running.
	k.pending = append(k.pending, pendingKill{at: killAt, lapse: l})
	k.armKill()
}

// signalled is s as log fields.
func signalled(s Signalled) []zap.Field {
	return []zap.Field{zap.String("group", s.Group), zap.Int("pid", s.Pid), zap.Bool("whole", s.Whole), zap.String("why", s.Why)}
}

func (k *keeper) termed(l *Lapse, s Signalled) {
	l.Termed = append(l.Termed, s)
	k.log.Info("sigterm", signalled(s)...)
}

// killDue sends SIGKILL to every pending target whose time has come and
// that still runs.
func (k *keeper) killDue(now int64) {
	var rest []pendingKill
	touched := map[*Lapse]bool{}
	done := map[int]bool{}  // pids this round has dealt with
	var groups map[int]bool // read from /proc once, if needed
	live := func() map[int]bool {
		if groups == nil {
			groups = liveGroups()
		}
		return groups
	}
	for _, p := range k.pending {
		if p.at > now {
			rest = append(rest, p)
			continue
		}
		p.lapse.KilledAt = now
		touched[p.lapse] = true
		if p.t == nil { // the lapse's own round
			continue
		}
		done[p.t.Pid] = true
		if p.t.alive(live) && p.t.signal(unix.SIGKILL) == nil {
			p.lapse.Killed = append(p.lapse.Killed, p.t.Signalled)
			k.log.Info("sigkill", signalled(p.t.Signalled)...)
		}
		p.t.close()
	}
	k.pending = rest
	// With the lease still lapsed nothing of a held group may run: what
	// started since the SIGTERM round (a process between fork and exec
	// then, a stuck daemon's late start) gets SIGKILL too.
	if k.last != nil && touched[k.last] && now >= k.deadline {
		k.killStragglers(k.last, done)
	}
	for l := range touched {
		l.Done = !k.pendingFor(l)
	}
	k.armKill()
}

// killStragglers SIGKILLs every process of a held group on this node that
// the environment scan finds now, but those in done, and records it in l.
func (k *keeper) killStragglers(l *Lapse, done map[int]bool) {
	for _, m := range scanEnv(k.node, k.dir, k.held, unix.Getpid()) {
		if done[m.pid] {
			continue
		}
		t, err := openTarget(m.pid, m.start, Signalled{Group: m.group, Whole: m.pid == m.pgid, Why: "environ"})
		if err != nil {
			continue
		}
		if t.signal(unix.SIGKILL) == nil {
			l.Killed = append(l.Killed, t.Signalled)
			k.log.Info("sigkill", append(signalled(t.Signalled), zap.Bool("straggler", true))...)
		}
		t.close()
	}
}

func (k *keeper) pendingFor(l *Lapse) bool {
	for _, p := range k.pending {
		if p.lapse == l {
			return true
		}
	}
	return false
}

// armKill sets the kill alarm to the earliest pending SIGKILL.
func (k *keeper) armKill() {
	var at int64
	for _, p := range k.pending {
		if at == 0 || p.at < at {
			at = p.at
		}
	}
	if err := k.kill.set(at); err != nil {
		// Not expected from a valid timerfd, and nothing to be done
		// but say so: the SIGKILL round would not run.
		k.log.Error("arming the SIGKILL timer", zap.Error(err))
	}
}

func (k *keeper) sortedWatched() []*target {
	ts := make([]*target, 0, len(k.watched))
	for _, t := range k.watched {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Pid < ts[j].Pid })
	return ts
}
