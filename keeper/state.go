package keeper

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

// keeper is the state one goroutine, run's, owns: nothing else reads or
// writes it.
type keeper struct {
	node        string
	dir         string // its directory: a daemon's children name it in CLINIT_KEEPER
	deadline    int64  // CLOCK_BOOTTIME ns; 0 until the first lease
	stopTimeout int64
	held        map[string]bool
	watched     map[int]*target // by pid
	lapses      int
	last        *Lapse
	pending     []pendingKill // SIGTERMed at a lapse, to SIGKILL later
	lease, kill *alarm
	log         *logger
}

// pendingKill is a target to SIGKILL at a boottime instant unless it is
// gone by then; without a target, it is the round of the lapse itself
// (see killStragglers).
type pendingKill struct {
	t     *target
	at    int64
	lapse *Lapse
}

func newKeeper(node string, log *logger) (*keeper, error) {
	lease, err := newAlarm()
	if err != nil {
		return nil, err
	}
	kill, err := newAlarm()
	if err != nil {
		lease.close()
		return nil, err
	}
	return &keeper{node: node, held: map[string]bool{}, watched: map[int]*target{},
		lease: lease, kill: kill, log: log}, nil
}

// handle carries out one validated request and returns its reply.
func (k *keeper) handle(r *Request) Reply {
	var err error
	switch r.Op {
	case OpLease:
		err = k.setLease(r.Deadline, r.StopTimeout)
	case OpHold:
		err = k.hold(r.Group)
	case OpWatch:
		err = k.watch(r.Group, r.Pid, r.Start)
	case OpUnwatch:
		err = k.unwatch(r.Pid)
	case OpRelease:
		k.release(r.Group)
	case OpState:
		return Reply{ID: r.ID, State: k.state()}
	case OpExit:
		if len(k.held) > 0 {
			err = fmt.Errorf("exit: refused while %s held (release them first)", plural(len(k.held), "group is", "groups are"))
		}
	}
	if err != nil {
		return Reply{ID: r.ID, Error: err.Error()}
	}
	return Reply{ID: r.ID}
}

func (k *keeper) setLease(deadline, stopTimeout int64) error {
	if err := k.lease.set(deadline); err != nil {
		return fmt.Errorf("lease: arming the timer: %w", err)
	}
	k.deadline, k.stopTimeout = deadline, stopTimeout
	// Renewals are the common case and are not logged one by one; a
	// deadline already past is, since it lapses at once.
	if now := BoottimeNow(); deadline <= now {
		k.log.Info("lease", zap.Int64("deadline", deadline), zap.Duration("ended_ago", time.Duration(now-deadline)))
	}
	return nil
}

func (k *keeper) hold(group string) error {
	now := BoottimeNow()
	switch {
	case k.deadline == 0:
		return fmt.Errorf("hold %s: no lease yet (send lease first)", group)
	case k.deadline <= now:
		return fmt.Errorf("hold %s: the lease ended %s ago (renew it first)", group, time.Duration(now-k.deadline))
	}
	if !k.held[group] {
		k.held[group] = true
		k.log.Info("hold", zap.String("group", group), zap.Duration("deadline_in", time.Duration(k.deadline-now)))
	}
	return nil
}

func (k *keeper) watch(group string, pid int, start uint64) error {
	if !k.held[group] {
		return fmt.Errorf("watch %d: group %s is not held (send hold first)", pid, group)
	}
	if w, ok := k.watched[pid]; ok {
		if w.Group == group && w.start == start && !w.reaped() {
			return nil
		}
		return fmt.Errorf("watch %d: already watched for group %s (unwatch it first)", pid, w.Group)
	}
	t, err := openTarget(pid, start, Signalled{Group: group, Whole: true, Why: "watched"})
	if err != nil {
		return fmt.Errorf("watch %d: %w", pid, err)
	}
	k.watched[pid] = t
	k.log.Info("watch", zap.String("group", group), zap.Int("pid", pid))
	// A process started once the lease has ended has no right to run:
	// the lapse is run again, for it too.
	if now := BoottimeNow(); now >= k.deadline {
		k.log.Warn("watch after the deadline", zap.String("group", group), zap.Int("pid", pid), zap.Duration("ended_ago", time.Duration(now-k.deadline)))
		k.lapse(now)
	}
	return nil
}

func (k *keeper) unwatch(pid int) error {
	t, ok := k.watched[pid]
	if !ok {
		return fmt.Errorf("unwatch %d: not watched", pid)
	}
	delete(k.watched, pid)
	t.close()
	k.log.Info("unwatch", zap.String("group", t.Group), zap.Int("pid", pid))
	return nil
}

func (k *keeper) release(group string) {
	for pid, t := range k.watched {
		if t.Group == group {
			delete(k.watched, pid)
			t.close()
		}
	}
	if k.held[group] {
		delete(k.held, group)
		k.log.Info("release", zap.String("group", group))
	}
}

func (k *keeper) state() *State {
	s := &State{Protocol: Protocol, Node: k.node, Pid: os.Getpid(), Now: BoottimeNow(), Deadline: k.deadline,
		StopTimeout: k.stopTimeout, Held: []string{}, Watched: []Watched{}, Lapses: k.lapses}
	for g := range k.held {
		s.Held = append(s.Held, g)
	}
	sort.Strings(s.Held)
	for pid, t := range k.watched {
		s.Watched = append(s.Watched, Watched{Group: t.Group, Pid: pid, Start: t.start})
	}
	sort.Slice(s.Watched, func(i, j int) bool { return s.Watched[i].Pid < s.Watched[j].Pid })
	if k.last != nil {
		l := *k.last
		l.Termed = append([]Signalled(nil), l.Termed...)
		l.Killed = append([]Signalled(nil), l.Killed...)
		s.Last = &l
	}
	return s
}

// idle reports whether the keeper has nothing to enforce.
// idle: nothing left to enforce. Either nothing is held, or the lease
// of what is held has lapsed and its SIGKILL round has run: the daemon
// that held it is gone (no daemon is connected when this is asked), its
// groups' processes are dead, and a keeper left holding them would
// live for ever. A daemon that comes back starts a new one.
func (k *keeper) idle() bool {
	if len(k.pending) > 0 {
		return false
	}
	if len(k.held) == 0 {
		return true
	}
	return k.last != nil && k.last.Done && k.last.Deadline == k.deadline
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func (k *keeper) heldList() string {
	var gs []string
	for g := range k.held {
		gs = append(gs, g)
	}
	sort.Strings(gs)
	return strings.Join(gs, ",")
}
