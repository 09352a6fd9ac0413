package daemon

import (
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/internal/reaper"
)

// signalOf is the signal that killed a process; 0 when it exited (or
// when its status is unknown: an adopted process).
func signalOf(x *reaper.Exit) syscall.Signal {
	if x == nil || !x.Status.Signaled() {
		return 0
	}
	return syscall.Signal(x.Status.Signal())
}

// signalName is a signal's name as kill -l gives it: SIGTERM, SIGKILL.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return "signal " + sig.String()
}

// endField says how p's last run ended, for the log: its exit status, or
// the name of the signal that killed it (rather than "exit -1").
func (p *proc) endField() zap.Field {
	if p.sig != 0 {
		return zap.String("signal", signalName(p.sig))
	}
	return zap.Int("exit", p.exit)
}
