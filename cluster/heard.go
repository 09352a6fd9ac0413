package cluster

import (
	"fmt"
	"log"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// heardTransport is memberlist's transport with a note of when a packet
// last came from each address. memberlist declares a node dead and keeps
// it so until the node refutes, and a node refutes only once it hears of
// its death: after a short cut, the others can hold a node dead that
// never learnt it, still runs its groups, and still talks to them. Its
// packets are the evidence that it was alive then, and a safe wait
// counts from the last of them, not from the death.
type heardTransport struct {
	memberlist.Transport
	aware memberlist.NodeAwareTransport // nil when the inner transport is not node aware
	pch   chan *memberlist.Packet
	done  chan struct{}
	stop  sync.Once

	mu   sync.Mutex
	last map[string]time.Time // HOST:PORT -> last packet or contact
}

func newHeardTransport(inner memberlist.Transport) *heardTransport {
	t := &heardTransport{
		Transport: inner,
		pch:       make(chan *memberlist.Packet),
		done:      make(chan struct{}),
		last:      map[string]time.Time{},
	}
	t.aware, _ = inner.(memberlist.NodeAwareTransport)
	go t.forward()
	return t
}

// forward passes the inner transport's packets on, noting their sender.
func (t *heardTransport) forward() {
	in := t.Transport.PacketCh()
	for {
		select {
		case p := <-in:
			if p.From != nil {
				t.mark(p.From.String(), p.Timestamp)
			}
			select {
			case t.pch <- p:
			case <-t.done:
				return
			}
		case <-t.done:
			return
		}
	}
}

// mark records contact with addr at when.
func (t *heardTransport) mark(addr string, when time.Time) {
	if when.IsZero() {
		when = time.Now()
	}
	t.mu.Lock()
	if when.After(t.last[addr]) {
		t.last[addr] = when
	}
	t.mu.Unlock()
}

// heard is when addr was last heard from (zero: never).
func (t *heardTransport) heard(addr string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last[addr]
}

func (t *heardTransport) PacketCh() <-chan *memberlist.Packet { return t.pch }

func (t *heardTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if t.aware != nil {
		return t.aware.WriteToAddress(b, addr)
	}
	return t.WriteTo(b, addr.Addr)
}

func (t *heardTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.aware != nil {
		return t.aware.DialAddressTimeout(addr, timeout)
	}
	return t.DialTimeout(addr.Addr, timeout)
}

// Shutdown stops the inner transport first, while its packets are still
// passed on (memberlist reads them until its transport is down), then
// the forwarding.
func (t *heardTransport) Shutdown() error {
	err := t.Transport.Shutdown()
	t.stop.Do(func() { close(t.done) })
	return err
}

// transport wraps the configured transport, or the network transport
// memberlist would make of mc, in a heardTransport.
func (c *Cluster) transport(mc *memberlist.Config) (*heardTransport, error) {
	if mc.Transport != nil {
		return newHeardTransport(mc.Transport), nil
	}
	nc := &memberlist.NetTransportConfig{
		BindAddrs: []string{mc.BindAddr},
		BindPort:  mc.BindPort,
		Logger:    log.New(mc.LogOutput, "", 0),
	}
	// A dynamic port (0) is bound for UDP and TCP separately, which can
	// collide: memberlist retries, and so does this.
	tries := 1
	if mc.BindPort == 0 {
		tries = 10
	}
	var nt *memberlist.NetTransport
	var err error
	for range tries {
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("binding %s: %w", net.JoinHostPort(mc.BindAddr, strconv.Itoa(mc.BindPort)), err)
	}
	if mc.BindPort == 0 {
		mc.BindPort = nt.GetAutoBindPort()
		if mc.AdvertisePort == 0 {
			mc.AdvertisePort = mc.BindPort
		}
	}
	return newHeardTransport(nt), nil
}
