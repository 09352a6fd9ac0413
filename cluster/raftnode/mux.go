package raftnode

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The first byte a connection sends says what it carries, as Consul's
// server port does: one listener for raft and for the RPCs of rpc.go.
const (
	connRaft byte = 'r'
	connRPC  byte = 'c'
)

// handshakeTimeout bounds a connection's TLS handshake and its first
// byte: a stranger that connects and says nothing holds nothing.
const handshakeTimeout = 5 * time.Second

// mux accepts connections on the raft port and hands each to raft or
// to the RPC handler by its first byte. With a TLS config, every
// connection is TLS with the pinned cluster certificate (tls.go).
type mux struct {
	ln        net.Listener
	advertise net.Addr
	tls       *tls.Config // nil: plain TCP (loopback or --insecure)
	onRPC     func(net.Conn)
	onReject  func(remote string, err error)

	raftConns chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

func newMux(ln net.Listener, advertise net.Addr, tc *tls.Config) *mux {
	return &mux{ln: ln, advertise: advertise, tls: tc, raftConns: make(chan net.Conn), closed: make(chan struct{})}
}

// serve accepts until the listener is closed. Each connection's
// handshake runs on a goroutine of its own, so a slow one delays no other.
func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		go m.route(c)
	}
}

func (m *mux) route(c net.Conn) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if m.tls != nil {
		tc := tls.Server(c, m.tls)
		if err := tc.Handshake(); err != nil {
			m.reject(c, err)
			return
		}
		c = tc
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		m.reject(c, err)
		return
	}
	c.SetDeadline(time.Time{})
	switch b[0] {
	case connRaft:
		select {
		case m.raftConns <- c:
		case <-m.closed:
			c.Close()
		}
	case connRPC:
		if m.onRPC == nil {
			c.Close()
			return
		}
		m.onRPC(c)
	default:
		m.reject(c, fmt.Errorf("unknown connection type %#x", b[0]))
	}
}

func (m *mux) reject(c net.Conn, err error) {
	if m.onReject != nil {
		m.onReject(c.RemoteAddr().String(), err)
	}
	c.Close()
}

func (m *mux) close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

// streamLayer is raft's view of the mux.
type streamLayer struct {
	m *mux
	d *Dialer
}

var _ raft.StreamLayer = streamLayer{}

func (s streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.m.raftConns:
		return c, nil
	case <-s.m.closed:
		return nil, errors.New("raft listener closed")
	}
}

func (s streamLayer) Close() error   { return s.m.close() }
func (s streamLayer) Addr() net.Addr { return s.m.advertise }

func (s streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.d.dial(string(addr), connRaft, timeout)
}
