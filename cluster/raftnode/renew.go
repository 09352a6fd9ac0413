package raftnode

import (
	"context"
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
type Renewer struct {
	Node   string
	Client *Client
	Lease  time.Duration
	Log    *zap.Logger
	// OnLease receives each renewal's lease, from Run's goroutine; it
	// must not block for long.
	OnLease func(Lease)
	// Kick, when not nil, asks for a renewal now (the state changed: a
	// grant may name a new group); a kick while one runs is one more.
	Kick <-chan struct{}
}

// Run renews until ctx ends.
func (r *Renewer) Run(ctx context.Context) {
	every := RenewEvery(r.Lease)
	log := r.Log
	if log == nil {
		log = zap.NewNop()
	}
	failing := false
	for {
		s, sb := time.Now(), Boottime()
		cctx, cancel := context.WithTimeout(ctx, RenewTimeout(r.Lease))
		g, err := r.Client.Renew(cctx, r.Node)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !failing {
				log.Warn("lease renewal failed", zap.Error(err))
			}
			failing = true
		} else {
			if failing {
				log.Info("lease renewed again", zap.String("leader", g.Leader))
			}
			failing = false
			r.OnLease(Lease{Until: s.Add(r.Lease), UntilBoot: sb + int64(r.Lease), Grant: g})
		}
		next := s.Add(every)
		if err != nil {
			next = time.Now().Add(every / 4) // try again soon: the lease is running out
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
		case <-r.Kick:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}
