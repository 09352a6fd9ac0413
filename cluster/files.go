package cluster

import (
	"net"
	"strconv"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// File is a replicated file: the cltab or the hactl (SPEC 6). Its
// versions are committed through raft (consensus.go).
type File struct {
	Kind string // "cltab" or "hactl": the name it is replicated under
	Path string // this node's copy
	// Validate checks a version before it is proposed or written; path
	// is for its messages.
	Validate func(path string, data []byte) error
}

// member is the node to send to member name, nil when it is not up. It
// is made from the view, not taken from memberlist's list: memberlist
// rewrites the nodes it lists when they come back, and a send on another
// goroutine must not read them.
func (c *Cluster) member(name string) *memberlist.Node {
	m := c.view.members[name]
	if m == nil || !c.view.up(name) {
		return nil
	}
	host, port, err := net.SplitHostPort(m.addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	p, err := strconv.ParseUint(port, 10, 16)
	if ip == nil || err != nil {
		return nil
	}
	return &memberlist.Node{Name: name, Addr: ip, Port: uint16(p)}
}

// sendNode sends msg to n over TCP, without blocking the loop.
func (c *Cluster) sendNode(n *memberlist.Node, msg []byte) {
	go func() {
		if err := c.ml.SendReliable(n, msg); err != nil {
			c.log.Debug("send", zap.String("node", n.Name), zap.Error(err))
		}
	}()
}
