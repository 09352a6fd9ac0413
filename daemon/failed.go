package daemon

import (
	"strconv"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// resting is why a throttled respawn entry rests, and until when.
type resting struct {
	why   string // "respawning too rapidly", "cannot start"
	until time.Time
	pause time.Duration
}

// fail marks g FAILED, saying why: in clstat's state, and with the reason
// in --status, --json, the cluster's view, the status page and metrics.
func (e *Engine) fail(g *group, why string) {
	if g.why != why {
		g.why = why
		e.persists.Mark()
	}
	e.setState(g, api.StateFailed)
}

// restingWhy says why g is FAILED while one of its entries at its level
// rests after restarting too rapidly (systemd shows a unit that hit its
// start limit as failed); "" when none does. When the pause ends and the
// entry runs again, the group's state follows.
func restingWhy(g *group) string {
	for _, p := range g.procs {
		if p.m.state == sResting && g.wanted(p) {
			return p.entry.Tag + " " + p.rest.why + ": resting for " + p.rest.pause.String()
		}
	}
	return ""
}

// failure says how p's last run failed, for a wait or test that failed.
func (p *proc) failure() string {
	what := "exited " + strconv.Itoa(p.exit)
	switch {
	case p.sig != 0:
		what = "was killed by " + signalName(p.sig)
	case p.exit < 0:
		what = "was killed by a signal"
	}
	if p.entry.Mode == cltab.ModeTest {
		return "test " + p.entry.Tag + " " + what
	}
	return p.entry.Tag + " " + what
}
