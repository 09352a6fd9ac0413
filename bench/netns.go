package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The cluster figures run their daemons on 127.0.0.1, as an operator
// trying clinit on one machine would. When the bench runs as root, each
// cluster gets a network namespace of its own, with nothing in it but its
// loopback and its daemons (the daemons cannot tell: they bind
// 127.0.0.1:PORT as anywhere else). Two things come of it:
//
//   - ports: the daemons use fixed ports (7001, 7002, ...) that nothing
//     else on a shared machine can be using, and the tests others run at
//     the same time cannot take them;
//   - an exact count of the gossip: everything sent on that loopback is
//     memberlist's (UDP and TCP; the bench talks to the daemons through
//     Unix sockets, which belong to no network namespace), so the
//     loopback's transmit counter is the sum of what all the daemons
//     sent, as IP packets (headers, TCP handshakes and ACKs included:
//     what a network would carry, a little more than memberlist's
//     payload).
//
// The namespace lives on one OS thread of the bench that is never given
// back to the Go scheduler: a process forked from that thread starts in
// it, and the thread ends with the namespace's goroutine.

// netns is a private network namespace with its loopback up.
type netns struct {
	reqs chan func()
	quit chan struct{}
}

// newNetns makes the namespace; it needs CAP_SYS_ADMIN.
func newNetns() (*netns, error) {
	n := &netns{reqs: make(chan func()), quit: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread is in the namespace, so it must not
		// run anything else, and it exits when this goroutine returns.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		if err := loopbackUp(); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for {
			select {
			case f := <-n.reqs:
				f()
			case <-n.quit:
				return
			}
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return n, nil
}

// do runs f on the namespace's thread: a process f starts starts in the
// namespace.
func (n *netns) do(f func()) error {
	done := make(chan struct{})
	select {
	case n.reqs <- func() { f(); close(done) }:
	case <-n.quit:
		return errors.New("network namespace closed")
	}
	<-done
	return nil
}

// close ends the namespace's thread; the namespace itself goes when its
// last process does.
func (n *netns) close() {
	select {
	case <-n.quit:
	default:
		close(n.quit)
	}
}

// loopbackUp brings up lo in the calling thread's network namespace (a
// new one has it down).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo: %w", err)
	}
	return nil
}

// loopbackTx reads the namespace's loopback transmit counters
// (/proc/thread-self/net/dev, read on the namespace's thread).
func (n *netns) loopbackTx() (bytes, packets uint64, err error) {
	var data []byte
	var rerr error
	if err := n.do(func() { data, rerr = os.ReadFile("/proc/thread-self/net/dev") }); err != nil {
		return 0, 0, err
	}
	if rerr != nil {
		return 0, 0, rerr
	}
	for _, l := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(name) != "lo" {
			continue
		}
		// receive: bytes packets errs drop fifo frame compressed
		// multicast; transmit: bytes packets ...
		f := strings.Fields(rest)
		if len(f) < 10 {
			break
		}
		bytes, err1 := strconv.ParseUint(f[8], 10, 64)
		packets, err2 := strconv.ParseUint(f[9], 10, 64)
		if err1 != nil || err2 != nil {
			break
		}
		return bytes, packets, nil
	}
	return 0, 0, errors.New("/proc/thread-self/net/dev: no counters for lo")
}
