package raftnode

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// Dialer opens connections to other nodes' raft ports: TLS with the
// pinned cluster certificate when there is a key, then the byte that
// says what the connection carries (mux.go).
type Dialer struct{ tls *tls.Config }

func newDialer(key []byte) (*Dialer, error) {
	if key == nil {
		return &Dialer{}, nil
	}
	tc, err := tlsConfig(key)
	if err != nil {
		return nil, err
	}
	return &Dialer{tls: tc}, nil
}

// NewDialer is the dialer of a node that does not vote: it reaches the
// voters with the cluster key.
func NewDialer(key []byte) (*Dialer, error) { return newDialer(key) }

func (d *Dialer) dial(addr string, typ byte, timeout time.Duration) (net.Conn, error) {
	return d.dialTimes(addr, typ, timeout, timeout)
}

// dialTimes is dial with the TCP connection and the handshake that
// follows it timed apart.
func (d *Dialer) dialTimes(addr string, typ byte, connect, handshake time.Duration) (net.Conn, error) {
	nd := net.Dialer{Timeout: connect}
	c, err := nd.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(handshake))
	if d.tls != nil {
		tc := tls.Client(c, d.tls)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		c = &tlsConn{Conn: tc, raw: c}
	}
	if _, err := c.Write([]byte{typ}); err != nil {
		// Cut by the deadline, the record may be half sent: closed under
		// TLS, as abort does, not after a close_notify.
		abort(c)
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// tlsConn is a client's TLS connection with the TCP connection under it:
// one given up after an error is closed under TLS (abort). tls.Conn's
// Close would send its close_notify alert after whatever part of a
// record a timed-out write had sent, and the other end would read the
// two as one record that fails its check ("bad record MAC").
type tlsConn struct {
	net.Conn
	raw net.Conn
}

// abort closes a connection given up after an error, without a word.
func abort(c net.Conn) {
	if tc, ok := c.(*tlsConn); ok {
		tc.raw.Close()
		return
	}
	c.Close()
}
