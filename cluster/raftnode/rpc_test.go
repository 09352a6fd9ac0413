package raftnode

import (
	"context"
	"net"
	"testing"
	"time"
)

// A call gives up within its own deadline even while the dial hangs: a
// voter that takes the connection and never completes the TLS handshake
// (as one cut off, or frozen, does) must not hold a renewal for the
// dial's own 5 s.
func TestCallDeadlineBoundsTheDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // accepts nothing: the kernel completes the connect, nobody answers TLS
	d, err := newDialer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(d, func() []string { return []string{ln.Addr().String()} })
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Renew(ctx, "n1"); err == nil {
		t.Fatal("a renewal answered by nobody succeeded")
	}
	// Generous against a loaded machine, well under callTimeout.
	if took := time.Since(start); took > callTimeout/2 {
		t.Errorf("the renewal gave up after %v; its deadline was 300 ms", took)
	}
}
