package cluster

import (
	"encoding/json"
	"errors"

	"github.com/hashicorp/memberlist"
)

// Message kinds: the first byte of every user message and broadcast.
const (
	msgStatus  byte = 's' // a nodeStatus
	msgFile    byte = 'f' // a fileVersion
	msgFileReq byte = 'r' // a fileReq
)

// maxGossip is the largest message sent by UDP gossip; a larger one (a
// node with very many groups, any file) goes by TCP to every member.
const maxGossip = 1000

// pushPull is what two nodes exchange in a full state sync: every status
// they know, and (only between nodes that hold the key) the version of
// each file, without its data: push/pulls never stop, while a missed
// version is rare. A node that learns of a newer version asks the
// sender, Node, for it (fileReq).
type pushPull struct {
	Node     string        `json:"n,omitempty"`
	Statuses []nodeStatus  `json:"s"`
	Files    []fileVersion `json:"f,omitempty"` // Data left out
}

func encode(kind byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own plain structs always marshal
	}
	return append([]byte{kind}, b...)
}

var errEmpty = errors.New("empty message")

// decode splits a message into its kind and JSON body.
func decode(b []byte) (byte, []byte, error) {
	if len(b) == 0 {
		return 0, nil, errEmpty
	}
	return b[0], b[1:], nil
}

// broadcast is a status in memberlist's transmit queue; a newer status of
// the same node replaces it.
type broadcast struct {
	node string
	msg  []byte
}

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*broadcast)
	return ok && o.node == b.node
}
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
