package daemon

import (
	"os"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// signalOf is the signal that killed a process; 0 when it exited (or
// when its status is unknown: an adopted process).
func signalOf(ps *os.ProcessState) syscall.Signal {
	if ps == nil {
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return 0
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
