package raftnode

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Lease is what a node holds after an answered renewal.
type Lease struct {
	// Until is s + Lease on this process's monotonic clock, where s is
	// when the renewal was sent; UntilBoot is the same instant as
	// CLOCK_BOOTTIME nanoseconds, the clock the keeper shares with every
	// process of the machine.
	Until     time.Time
	UntilBoot int64
	Grant     Grant
}

// Boottime is CLOCK_BOOTTIME in nanoseconds: monotonic, shared by every
// process of the machine, and counting a suspend.
func Boottime() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(err) // Linux has had it since 2.6.39
	}
	return ts.Nano()
}

// Renewer keeps this node's lease: a renewal every RenewEvery, each sent at
// s and, when answered, held until s + Lease (a late answer only
// shortens what is held). It never extends a lease on its own: a node
// that cannot renew sees its lease run out at Until.
//
// Renewals are pipelined on a kept connection, each with a sequence
// number the leader's answer carries back: one that is slow to come
// (a leader short of CPU, a lossy link retransmitting) is still taken
// when it comes, while the next ones are already on their way. A
// connection is given up only when it fails, when the voter at its end
// does not lead, or when nothing has come back on it for RenewTimeout;
// even then a late answer on it counts until a new connection answers.
// Giving up a call at its timeout, as Client does, threw away every
// answer that came later than it, and the new connection's handshake
// cost the loaded leader more CPU and the lossy link more round trips:
// leases lapsed while the leader was answering.
type Renewer struct {
	Node   string
	Client *Client // its dialer and targets: where the voters are
	Lease  time.Duration
	Log    *zap.Logger
	// OnLease receives each renewal's lease, from Run's goroutine; it
	// must not block for long.
	OnLease func(Lease)
	// Kick, when not nil, asks for a renewal now (the state changed: a
	// grant may name a new group); a kick while one runs is one more.
	Kick <-chan struct{}
}

// maxInFlight bounds the renewals unanswered on one connection: beyond
// it the connection waits for answers, or is found stale and replaced.
const maxInFlight = 16

// renewLine is one connection renewals go out on.
type renewLine struct {
	conn    net.Conn
	addr    string
	last    time.Time // the last answer on it; zero: none yet
	pending map[uint64]sent
}

// sent is when a renewal went out, on both clocks.
type sent struct {
	at   time.Time
	boot int64
}

// oldest is the send time of the line's oldest unanswered renewal.
func (l *renewLine) oldest() (time.Time, bool) {
	var o time.Time
	for _, s := range l.pending {
		if o.IsZero() || s.at.Before(o) {
			o = s.at
		}
	}
	return o, !o.IsZero()
}

// newest is the send time of the line's newest unanswered renewal;
// zero: none.
func (l *renewLine) newest() time.Time {
	var n time.Time
	for _, s := range l.pending {
		n = later(n, s.at)
	}
	return n
}

// stale: renewals wait on the line and nothing has come back on it for
// timeout, counted from the later of its last answer and the oldest of
// them.
func (l *renewLine) stale(now time.Time, timeout time.Duration) bool {
	o, ok := l.oldest()
	if !ok {
		return false
	}
	return now.Sub(later(o, l.last)) > timeout
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// lineEvent is an answer read on a line, or the line's end (err).
type lineEvent struct {
	line *renewLine
	rep  rpcReply
	err  error
}

type dialResult struct {
	line *renewLine
	err  error
}

// Run renews until ctx ends.
func (r *Renewer) Run(ctx context.Context) {
	rr := &renewRun{
		Renewer: r,
		ctx:     ctx,
		every:   RenewEvery(r.Lease),
		timeout: RenewTimeout(r.Lease),
		events:  make(chan lineEvent, 4*maxInFlight),
		dialed:  make(chan dialResult, 1),
		lines:   map[*renewLine]bool{},
		log:     r.Log,
	}
	if rr.log == nil {
		rr.log = zap.NewNop()
	}
	rr.run()
}

// renewRun is the state of one Run, owned by its goroutine.
type renewRun struct {
	*Renewer
	ctx            context.Context
	every, timeout time.Duration
	events         chan lineEvent
	dialed         chan dialResult

	lines     map[*renewLine]bool // every open line
	cur       *renewLine          // the line new renewals go out on
	dialing   bool
	dialStart time.Time
	addr      string // the leader named last; "": the next target
	next      int    // the next target to try
	seq       uint64 // the last renewal's number
	taken     uint64 // the newest renewal whose answer was taken
	failing   bool
	log       *zap.Logger
}

func (rr *renewRun) run() {
	defer func() {
		for l := range rr.lines {
			abort(l.conn)
		}
	}()
	due := time.Now() // the next renewal
	for {
		now := time.Now()
		if !now.Before(due) {
			if rr.send(now) {
				due = now.Add(rr.every)
			} else {
				due = now.Add(rr.every / 4) // try again soon: the lease is running out
			}
		}
		t := time.NewTimer(time.Until(due))
		select {
		case <-t.C:
		case <-rr.Kick:
			due = time.Now()
		case ev := <-rr.events:
			rr.answer(ev)
		case d := <-rr.dialed:
			rr.onDial(d)
			if rr.cur == d.line && d.err == nil {
				due = time.Now() // the first renewal on it at once
			}
		case <-rr.ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// send sends one renewal on the current line, and dials a new one when
// there is none or it has gone stale. It reports whether a renewal went
// out.
func (rr *renewRun) send(now time.Time) bool {
	rr.expire(now)
	if rr.cur != nil && rr.cur.stale(now, rr.timeout) {
		rr.fail(fmt.Errorf("no answer from %s for %v", rr.cur.addr, rr.timeout))
		rr.dial(now) // the stale line stays: an answer on it still counts
	}
	if rr.cur == nil {
		rr.dial(now)
		return false
	}
	if len(rr.cur.pending) >= maxInFlight {
		return false
	}
	rr.seq++
	b, err := json.Marshal(rpcRequest{Op: rpcRenew, Node: rr.Node, Seq: rr.seq})
	if err != nil {
		panic(err) // a struct of strings and a number
	}
	rr.cur.conn.SetWriteDeadline(now.Add(rr.timeout))
	if _, err := rr.cur.conn.Write(append(b, '\n')); err != nil {
		rr.fail(fmt.Errorf("%s: %w", rr.cur.addr, err))
		rr.close(rr.cur)
		rr.dial(now)
		return false
	}
	rr.cur.pending[rr.seq] = sent{now, Boottime()}
	return true
}

// expire closes the lines other than the current one that wait for
// nothing that could still be of use: the answer to a renewal sent a
// lease ago grants nothing.
func (rr *renewRun) expire(now time.Time) {
	for l := range rr.lines {
		if l != rr.cur && now.Sub(l.newest()) > rr.Lease {
			rr.close(l)
		}
	}
}

// dial opens a new line, on a goroutine of its own, unless one is being
// opened.
func (rr *renewRun) dial(now time.Time) {
	if rr.dialing {
		return
	}
	addr := rr.addr
	rr.addr = ""
	if addr == "" {
		t := rr.Client.targets()
		if len(t) == 0 {
			rr.fail(errors.New("no voter known"))
			return
		}
		// A stale line's voter is tried last: another may answer, or
		// say where the leader is.
		addr = t[rr.next%len(t)]
		rr.next++
		if rr.cur != nil && addr == rr.cur.addr && len(t) > 1 {
			addr = t[rr.next%len(t)]
			rr.next++
		}
	}
	rr.dialing, rr.dialStart = true, now
	// The TCP connection may take RenewTimeout, as a call's dial does:
	// a voter cut off (SYNs unanswered) is left for the next one. The
	// handshake may take longer: over a slow path, the line that
	// follows answers as slowly, and still in time.
	connect, handshake := rr.timeout, rr.Lease/2
	go func() {
		conn, err := rr.Client.d.dialTimes(addr, connRPC, connect, handshake)
		var l *renewLine
		if err == nil {
			l = &renewLine{conn: conn, addr: addr, pending: map[uint64]sent{}}
		}
		select {
		case rr.dialed <- dialResult{l, err}:
		case <-rr.ctx.Done():
			if conn != nil {
				abort(conn)
			}
		}
	}()
}

// onDial takes a new line, or the reason there is none.
func (rr *renewRun) onDial(d dialResult) {
	rr.dialing = false
	if d.err != nil {
		rr.fail(d.err)
		return
	}
	l := d.line
	if rr.cur != nil && rr.cur.last.After(rr.dialStart) {
		// The line that was stale answered while this one was opened:
		// it is kept, this one is not needed.
		abort(l.conn)
		return
	}
	rr.lines[l] = true
	rr.cur = l
	go rr.read(l)
}

// read passes the answers on l to the loop until l ends.
func (rr *renewRun) read(l *renewLine) {
	rd := bufio.NewReader(l.conn)
	for {
		line, err := rd.ReadBytes('\n') // a grant of hundreds of groups is longer than the buffer
		ev := lineEvent{line: l, err: err}
		if err == nil {
			if err := json.Unmarshal(line, &ev.rep); err != nil {
				ev.err = fmt.Errorf("bad reply: %w", err)
			}
		}
		select {
		case rr.events <- ev:
		case <-rr.ctx.Done():
			return
		}
		if ev.err != nil {
			return
		}
	}
}

// answer takes what came on a line.
func (rr *renewRun) answer(ev lineEvent) {
	l := ev.line
	if !rr.lines[l] {
		return // closed already
	}
	if ev.err != nil {
		rr.fail(fmt.Errorf("%s: %w", l.addr, ev.err))
		rr.close(l)
		return
	}
	now := time.Now()
	l.last = now
	rep := ev.rep
	if rep.Seq == 0 {
		// A voter of an older clinit numbers no answers, and answers
		// in turn: this one is the oldest renewal's.
		for q := range l.pending {
			if rep.Seq == 0 || q < rep.Seq {
				rep.Seq = q
			}
		}
	}
	s, ok := l.pending[rep.Seq]
	if !ok {
		rr.fail(fmt.Errorf("%s: an answer to no renewal (%d)", l.addr, rep.Seq))
		rr.close(l)
		return
	}
	delete(l.pending, rep.Seq)
	switch {
	case rep.Error == ErrNotLeader.Error():
		rr.fail(fmt.Errorf("%s: %s", l.addr, rep.Error))
		wasCur := l == rr.cur
		rr.close(l)
		if wasCur || rr.cur == nil {
			rr.addr = rep.Leader // "" when it knows none: the next target
			rr.dial(now)
		}
	case rep.Error != "":
		rr.fail(fmt.Errorf("%s: %s", l.addr, rep.Error))
	case rep.Grant == nil:
		rr.fail(fmt.Errorf("%s: renewal answered without a grant", l.addr))
	default:
		if rr.cur != l && (rr.cur == nil || rr.cur.last.IsZero()) {
			// The line given up answered, the new one not yet: renewals
			// go on where they are answered.
			if rr.cur != nil {
				rr.close(rr.cur)
			}
			rr.cur = l
		}
		if rep.Seq <= rr.taken {
			return // a newer renewal's answer came first
		}
		rr.taken = rep.Seq
		if rr.failing {
			rr.log.Info("lease renewed again", zap.String("leader", rep.Grant.Leader))
		}
		rr.failing = false
		rr.OnLease(Lease{Until: s.at.Add(rr.Lease), UntilBoot: s.boot + int64(rr.Lease), Grant: *rep.Grant})
	}
}

// close drops a line and what waits on it.
func (rr *renewRun) close(l *renewLine) {
	if !rr.lines[l] {
		return
	}
	delete(rr.lines, l)
	abort(l.conn)
	if rr.cur == l {
		rr.cur = nil
	}
}

// fail logs the first failure of a run of them.
func (rr *renewRun) fail(err error) {
	if !rr.failing {
		rr.log.Warn("lease renewal failed", zap.Error(err))
	}
	rr.failing = true
}
