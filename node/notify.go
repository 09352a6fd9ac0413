package node

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster"
)

// statusGap is the least time between two STATUS= messages: a tell of a
// thousand entries changes the status a thousand times, and systemd needs
// only the last.
const statusGap = 200 * time.Millisecond

// notifier keeps systemd informed (sd_notify(3)): a STATUS= line that
// says what the daemon runs, kept current, and RELOADING=1 then READY=1
// around a reread. Its run goroutine owns the sending of STATUS=; the
// engine and the cluster hand it their parts through setEngine and
// setCluster, which never block.
type notifier struct {
	send    func(state string) error // sd_notify; a recorder in tests
	engine  atomic.Pointer[string]
	cluster atomic.Pointer[string]
	kick    chan struct{}
}

func newNotifier(send func(string) error) *notifier {
	return &notifier{send: send, kick: make(chan struct{}, 1)}
}

// systemdNotify sends to NOTIFY_SOCKET; nil when it is not set.
func systemdNotify() func(string) error {
	if _, ok := unix.Getenv("NOTIFY_SOCKET"); !ok {
		return nil
	}
	return func(state string) error {
		_, err := sdaemon.SdNotify(false, state)
		return err
	}
}

func (n *notifier) setEngine(st api.Status) {
	s := groupsSummary(st)
	n.engine.Store(&s)
	n.poke()
}

func (n *notifier) setCluster(s cluster.Summary) {
	text := s.String()
	n.cluster.Store(&text)
	n.poke()
}

func (n *notifier) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// line is the STATUS= text: the groups, then the cluster's part.
func (n *notifier) line() string {
	var parts []string
	if s := n.engine.Load(); s != nil {
		parts = append(parts, *s)
	}
	if s := n.cluster.Load(); s != nil && *s != "" {
		parts = append(parts, *s)
	}
	return strings.Join(parts, "; ")
}

// run sends STATUS= whenever the line changed, at most once per
// statusGap, the newest line last; it returns when stop is closed.
func (n *notifier) run(stop <-chan struct{}) {
	last := ""
	for {
		select {
		case <-n.kick:
		case <-stop:
			return
		}
		if l := n.line(); l != last && l != "" {
			last = l
			n.send("STATUS=" + l)
		}
		select {
		case <-time.After(statusGap):
		case <-stop:
			return
		}
	}
}

// reloading says a reread begins: RELOADING=1 with the time on
// CLOCK_MONOTONIC, which systemd 253 and later want with it
// (Type=notify-reload).
func (n *notifier) reloading() {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		n.send("RELOADING=1")
		return
	}
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

// reloaded says the reread is over (whatever its outcome: an invalid
// cltab leaves the daemon running on the last good one).
func (n *notifier) reloaded() { n.send("READY=1") }

// groupsSummary is the engine's part of the status line: "no group
// told", "3 groups", "3 groups, 1 FAILED (db)".
func groupsSummary(st api.Status) string {
	var failed []string
	for _, g := range st.Groups {
		if g.State == api.StateFailed {
			failed = append(failed, api.Printable(g.Group))
		}
	}
	n := len(st.Groups)
	var b strings.Builder
	switch n {
	case 0:
		return "no group told"
	case 1:
		b.WriteString("1 group")
	default:
		fmt.Fprintf(&b, "%d groups", n)
	}
	if len(failed) > 0 {
		shown := failed
		if len(shown) > 3 {
			shown = append(shown[:3:3], "...")
		}
		fmt.Fprintf(&b, ", %d FAILED (%s)", len(failed), strings.Join(shown, " "))
	}
	return b.String()
}
