package keeper

import (
	"net"
	"os"
	"time"

	"go.uber.org/zap"
)

// loop is the one goroutine that owns the keeper's state; the others
// (accept, one per connection, one per alarm, signals) only send it
// events.
type loop struct {
	k     *keeper
	ln    *net.UnixListener
	idle  time.Duration
	calls chan call
	conns chan *net.UnixConn
	gone  chan uint64
	done  chan struct{} // closed when the loop ends

	// open holds every connection being served. The daemon's is cur (0:
	// none): the last one that asked for a change. A connection that
	// only reads the state (an operator's tool, a daemon before it takes
	// over) replaces nothing.
	open   map[uint64]*net.UnixConn
	cur    uint64
	nextID uint64
}

// maxConns bounds the connections served at once.
const maxConns = 16

func newLoop(k *keeper, ln *net.UnixListener, idle time.Duration) *loop {
	return &loop{k: k, ln: ln, idle: idle, calls: make(chan call), conns: make(chan *net.UnixConn),
		gone: make(chan uint64), done: make(chan struct{}), open: map[uint64]*net.UnixConn{}}
}

// run serves until the keeper may exit, and returns why.
func (l *loop) run(sigs <-chan os.Signal) string {
	defer close(l.done)
	go l.accept()
	leaseFired := fired(l.k.lease, l.done)
	killFired := fired(l.k.kill, l.done)
	var idleT *time.Timer
	var idleC <-chan time.Time
	stopping := false // a signal asked the keeper to go once the lapse is done
	for {
		if want := l.cur == 0 && l.k.idle(); want && idleC == nil {
			idleT = time.NewTimer(l.idle)
			idleC = idleT.C
		} else if !want && idleC != nil {
			idleT.Stop()
			idleC = nil
		}
		select {
		case c := <-l.conns:
			if len(l.open) >= maxConns {
				l.k.log.Warn("refuse", zap.String("why", "too many connections"))
				c.Close()
				continue
			}
			l.nextID++
			l.open[l.nextID] = c
			go serveConn(l.nextID, c, l.calls, l.gone, l.done)
		case id := <-l.gone:
			delete(l.open, id)
			if id == l.cur {
				l.cur = 0
				l.k.log.Info("disconnect", zap.String("held", l.k.heldList()), zap.Duration("deadline_in", l.k.deadlineIn()))
			}
		case cl := <-l.calls:
			if _, ok := l.open[cl.conn]; !ok {
				cl.reply <- Reply{ID: cl.req.ID, Error: "this connection was replaced by a newer one"}
				continue
			}
			if cl.req.Op != OpState && cl.conn != l.cur {
				l.takeOver(cl.conn)
			}
			r := l.k.handle(&cl.req)
			cl.reply <- r
			if cl.req.Op == OpExit && r.Error == "" {
				l.k.log.Info("exit", zap.String("why", "asked to"))
				select { // let the reply reach the daemon
				case <-cl.sent:
				case <-time.After(replyTimeout):
				}
				return "asked to exit"
			}
		case <-leaseFired:
			now := BoottimeNow()
			if l.k.deadline != 0 && now >= l.k.deadline && (l.k.last == nil || l.k.last.Deadline != l.k.deadline) {
				l.k.lapse(now)
			}
		case <-killFired:
			l.k.killDue(BoottimeNow())
			if stopping && len(l.k.pending) == 0 {
				return "signalled"
			}
		case sig := <-sigs:
			l.k.log.Info("signal", zap.Stringer("signal", sig), zap.String("held", l.k.heldList()))
			if l.k.idle() {
				return "signalled"
			}
			// Without the keeper nothing bounds the held groups: they
			// stop now, as at a lapse, and the keeper exits after.
			if !stopping {
				stopping = true
				l.k.lapse(BoottimeNow())
			}
			if len(l.k.pending) == 0 {
				return "signalled"
			}
		case <-idleC:
			idleC = nil
			if l.cur == 0 && l.k.idle() {
				l.k.log.Info("exit", zap.String("why", "nothing held and no daemon connected"), zap.Duration("idle", l.idle))
				return "idle"
			}
		}
	}
}

// takeOver makes connection id the daemon's, closing the one it
// replaces: that daemon learns it from its Client.Done.
func (l *loop) takeOver(id uint64) {
	if old, ok := l.open[l.cur]; ok {
		l.k.log.Info("replace", zap.String("why", "another connection asked for a change: a new daemon"))
		old.Close()
		delete(l.open, l.cur)
	} else {
		l.k.log.Info("connect")
	}
	l.cur = id
}

// closeAll closes every connection, at the exit.
func (l *loop) closeAll() {
	for id, c := range l.open {
		c.Close()
		delete(l.open, id)
	}
}

// accept hands each connection from an allowed peer to the loop.
func (l *loop) accept() {
	for {
		c, err := l.ln.AcceptUnix()
		if err != nil {
			return // closed by the exit
		}
		uid, ok, err := peerAllowed(c)
		if err != nil || !ok {
			l.k.log.Warn("refuse", zap.Uint32("uid", uid), zap.String("why", "peer is neither root nor our uid, or SO_PEERCRED failed"))
			c.Close()
			continue
		}
		select {
		case l.conns <- c:
		case <-l.done:
			c.Close()
			return
		}
	}
}

// fired turns each expiry of a into a receive on the returned channel.
func fired(a *alarm, done <-chan struct{}) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for a.wait() == nil {
			select {
			case ch <- struct{}{}:
			case <-done:
				return
			}
		}
	}()
	return ch
}

func (k *keeper) deadlineIn() time.Duration {
	if k.deadline == 0 {
		return 0
	}
	return time.Duration(k.deadline - BoottimeNow())
}
