package raftnode

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowPath is a TCP relay to target that delivers what target sends
// delay after it was sent, in order: a path, or a leader short of CPU,
// that answers every renewal later than RenewTimeout and well within
// the lease. It counts the connections made through it.
type slowPath struct {
	addr  string
	conns atomic.Int32
}

func newSlowPath(t *testing.T, target string, delay time.Duration) *slowPath {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowPath{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { // to target, at once
				defer wg.Done()
				io.Copy(s, c)
				s.Close()
			}()
			go func() { // back, delay late
				defer wg.Done()
				defer c.Close()
				type chunk struct {
					at time.Time
					b  []byte
				}
				ch := make(chan chunk, 1024)
				go func() {
					defer close(ch)
					for {
						b := make([]byte, 32<<10)
						n, err := s.Read(b)
						if n > 0 {
							ch <- chunk{time.Now(), b[:n]}
						}
						if err != nil {
							return
						}
					}
				}()
				for k := range ch {
					time.Sleep(time.Until(k.at.Add(delay)))
					if _, err := c.Write(k.b); err != nil {
						s.Close()
						return
					}
				}
			}()
		}
	}()
	return p
}

// Over a path that answers each renewal 2.5 s after it was sent (more
// than RenewTimeout, less than the lease), the lease is held without a
// gap from the first answer on, on one or two connections: the late
// answers count, and the renewals behind them are already on their way.
// A renewal given up at its timeout, and tried again on a new
// connection, is never answered there.
func TestRenewerHoldsOverSlowPath(t *testing.T) {
	tc := startCluster(t, 3)
	l := tc.leader()
	const delay = 2500 * time.Millisecond
	if delay <= RenewTimeout(DefaultLease) {
		t.Fatalf("the delay %v does not exceed the renewal timeout %v", delay, RenewTimeout(DefaultLease))
	}
	p := newSlowPath(t, tc.addrs[l], delay)
	d, err := NewDialer(tc.key)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(d, func() []string { return []string{p.addr} })
	leases := make(chan Lease, 1000)
	rctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Renewer{Node: "n5", Client: c, Lease: DefaultLease, OnLease: func(l Lease) { leases <- l }}
	go r.Run(rctx)

	var got []Lease
	var at []time.Time
	end := time.After(16 * time.Second)
wait:
	for {
		select {
		case l := <-leases:
			got, at = append(got, l), append(at, time.Now())
		case <-end:
			break wait
		}
	}
	// The first answer comes after the handshake and one renewal, over
	// the slow path both ways: about 2 x 2.5 s. The next ones every
	// RenewEvery.
	if len(got) < 10 {
		t.Fatalf("%d leases in 16 s over a path of %v, want 10 or more", len(got), delay)
	}
	for i := 1; i < len(got); i++ {
		if !got[i-1].Until.After(at[i]) {
			t.Errorf("lease %d arrived %v after lease %d had run out", i, at[i].Sub(got[i-1].Until), i-1)
		}
		if !got[i].Until.After(got[i-1].Until) {
			t.Errorf("lease %d ends at %v, not after lease %d (%v)", i, got[i].Until, i-1, got[i-1].Until)
		}
	}
	if held := time.Until(got[len(got)-1].Until); held < DefaultLease-delay-time.Second {
		t.Errorf("the last lease holds %v more, want about %v", held, DefaultLease-delay)
	}
	if n := p.conns.Load(); n > 2 {
		t.Errorf("%d connections made through the slow path, want 1 or 2", n)
	}
}

// A leader of an older clinit numbers no answers: they are taken in
// turn, the oldest renewal's first. The stand-in below is such a
// leader's RPC port without TLS (no key), answering each line in turn.
func TestRenewerTakesUnnumberedAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rd := bufio.NewReader(c)
				if typ, err := rd.ReadByte(); err != nil || typ != connRPC {
					return
				}
				for {
					if _, err := rd.ReadBytes('\n'); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
					if _, err := c.Write([]byte(`{"grant":{"leader":"old","term":1,"index":7,"groups":{"web":3}}}` + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	d, err := NewDialer(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(d, func() []string { return []string{ln.Addr().String()} })
	kick := make(chan struct{})
	leases := make(chan Lease, 100)
	rctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Renewer{Node: "n1", Client: c, Lease: time.Second, Kick: kick, OnLease: func(l Lease) { leases <- l }}
	go r.Run(rctx)
	var prev Lease
	for i := 0; i < 6; i++ {
		if i > 1 {
			kick <- struct{}{} // two renewals in flight at once
		}
		select {
		case l := <-leases:
			if l.Grant.Leader != "old" || l.Grant.Groups["web"] != 3 {
				t.Fatalf("lease %d: grant %+v", i, l.Grant)
			}
			if i > 0 && !l.Until.After(prev.Until) {
				t.Errorf("lease %d ends at %v, not after the one before (%v)", i, l.Until, prev.Until)
			}
			if d := time.Until(l.Until); d <= 0 || d > time.Second {
				t.Errorf("lease %d holds %v more, want (0, 1s]", i, d)
			}
			prev = l
		case <-time.After(5 * time.Second):
			t.Fatalf("lease %d not granted in 5 s", i)
		}
	}
}
