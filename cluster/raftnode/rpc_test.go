package raftnode

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// slowEnd is a stand-in for a voter's RPC port (no TLS, no raft): it
// counts the connections it accepts and answers each request in turn,
// with its ID echoed: a renewal of node "slow" once release is closed,
// any other at once.
func slowEnd(t *testing.T) (addr string, conns *atomic.Int32, release chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns, release = new(atomic.Int32), make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				rd := bufio.NewReader(c)
				if typ, err := rd.ReadByte(); err != nil || typ != connRPC {
					return
				}
				sc := bufio.NewScanner(rd)
				enc := json.NewEncoder(c)
				for sc.Scan() {
					var req rpcRequest
					if json.Unmarshal(sc.Bytes(), &req) != nil {
						return
					}
					if req.Node == "slow" {
						<-release
					}
					enc.Encode(rpcReply{ID: req.ID, Grant: &Grant{Leader: req.Node}})
				}
			}()
		}
	}()
	return ln.Addr().String(), conns, release
}

// A call whose reply is late gives up and leaves the connection: the
// next call on it gets its own reply, not the late one, and no new
// connection (no new TLS handshake with a busy leader) is made.
func TestLateReplyKeepsTheConnection(t *testing.T) {
	addr, conns, release := slowEnd(t)
	d, err := newDialer(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(d, func() []string { return []string{addr} })
	defer c.Close()
	if g, err := c.Renew(context.Background(), "n1"); err != nil || g.Leader != "n1" {
		t.Fatalf("first renewal: %v, %v", g, err)
	}
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := c.Renew(ctx, "slow")
		cancel()
		if err == nil {
			t.Fatal("a renewal held by the other end was answered")
		}
	}
	close(release)
	g, err := c.Renew(context.Background(), "n2")
	if err != nil || g.Leader != "n2" {
		t.Fatalf("renewal after three late ones: %+v, %v; want n2's own reply", g, err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for calls on one client; want 1", n)
	}
}

// More late replies than a connection may owe drop it; the client then
// dials again and goes on.
func TestTooManyLateRepliesDropTheConnection(t *testing.T) {
	addr, conns, release := slowEnd(t)
	defer close(release)
	d, _ := newDialer(nil)
	c := NewClient(d, func() []string { return []string{addr} })
	defer c.Close()
	if _, err := c.Renew(context.Background(), "n1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxOwed+1; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c.Renew(ctx, "slow")
		cancel()
	}
	if g, err := c.Renew(context.Background(), "n3"); err != nil || g.Leader != "n3" {
		t.Fatalf("renewal after the drop: %+v, %v", g, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (the first dropped after %d late replies)", n, maxOwed+1)
	}
}
