package keeper

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// BoottimeNow reads CLOCK_BOOTTIME in nanoseconds: one clock for every
// process on the machine, counting time suspended, so a deadline the
// daemon computes means the same instant to the keeper.
func BoottimeNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		// Linux has had CLOCK_BOOTTIME since 2.6.39; without it nothing
		// here can keep its promise.
		panic(fmt.Sprintf("clock_gettime(CLOCK_BOOTTIME): %v", err))
	}
	return ts.Nano()
}

// alarm is a timerfd on CLOCK_BOOTTIME set to absolute instants. Its
// expiry is read through the runtime's poller: the kernel wakes the
// reader at the instant (time suspended included), so it fires late only
// by scheduling delay, never by a sleeping timer's drift.
type alarm struct {
	f *os.File
}

func newAlarm() (*alarm, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_BOOTTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create(CLOCK_BOOTTIME): %w", err)
	}
	return &alarm{f: os.NewFile(uintptr(fd), "timerfd")}, nil
}

// set arms the alarm at boottime instant at (ns); at <= 0 disarms it. An
// instant already past fires at once.
func (a *alarm) set(at int64) error {
	var spec unix.ItimerSpec
	if at > 0 {
		spec.Value = unix.NsecToTimespec(at)
	}
	rc, err := a.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME, &spec, nil)
	}); err != nil {
		return err
	}
	return serr
}

// wait blocks until the alarm fires (or is closed: then it returns an
// error).
func (a *alarm) wait() error {
	var buf [8]byte
	_, err := a.f.Read(buf[:])
	return err
}

func (a *alarm) close() error { return a.f.Close() }
