package cluster

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"

	"github.com/hashicorp/memberlist"

	"github.com/clinit/clinit/cltab"
)

// Message kinds: the first byte of every user message and broadcast.
const (
	msgStatus byte = 's' // a nodeStatus
	msgCommit byte = 'c' // a commitHint: the leader committed changes
)

// commitHint tells the members that the leader committed a change (new
// assignments): each renews its lease at once, for its grant to name its
// new groups without waiting for the next renewal. It decides nothing:
// a forged one costs a renewal.
type commitHint struct {
	Index uint64 `json:"i"`
}

// maxGossip is the largest message sent by UDP gossip; a larger one (a
// node with very many groups) goes by TCP to every member.
const maxGossip = 1000

// pushPull is what two nodes exchange in a full state sync: every status
// they know. The replicated files are raft's (consensus.go).
type pushPull struct {
	Node     string       `json:"n,omitempty"`
	Statuses []nodeStatus `json:"s"`
}

// msgDeflated wraps a whole message (kind and body) compressed with
// DEFLATE. A status lists every group of its node, and JSON repeats
// itself: a node of 30 groups gossips some 1.8 KB that deflate to about
// a fifth, which then fits a UDP gossip; sent by TCP to every member
// instead, statuses took most of the CPU of a mass placement.
const msgDeflated byte = 'z'

// deflateOver: shorter messages are sent as they are.
const deflateOver = 256

// maxInflated bounds what a deflated message may inflate to, by what a
// real one can be: a file message carries at most a cltab of
// cltab.MaxSize, base64 in JSON (1.4 MiB); a status lists at most the
// groups such a cltab holds (a line each: some 50,000, about 50 bytes
// each in a status, 2.5 MiB). It was 16 MiB: a 16 KB message inflated
// to that each time it came.
const maxInflated = 4 * cltab.MaxSize

func encode(kind byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own plain structs always marshal
	}
	msg := append([]byte{kind}, b...)
	if len(msg) <= deflateOver {
		return msg
	}
	var z bytes.Buffer
	z.WriteByte(msgDeflated)
	w, _ := flate.NewWriter(&z, flate.BestSpeed)
	w.Write(msg)
	w.Close()
	if z.Len() >= len(msg) {
		return msg
	}
	return z.Bytes()
}

var errEmpty = errors.New("empty message")

// decode splits a message into its kind and JSON body, inflating it
// first if it came deflated.
func decode(b []byte) (byte, []byte, error) {
	if len(b) > 0 && b[0] == msgDeflated {
		r := flate.NewReader(bytes.NewReader(b[1:]))
		defer r.Close()
		in, err := io.ReadAll(io.LimitReader(r, maxInflated+1))
		switch {
		case err != nil:
			return 0, nil, fmt.Errorf("deflated message: %w", err)
		case len(in) > maxInflated:
			return 0, nil, fmt.Errorf("deflated message over %d bytes", maxInflated)
		case len(in) > 0 && in[0] == msgDeflated:
			return 0, nil, errors.New("deflated message within a deflated message")
		}
		b = in
	}
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

// seenStatuses remembers the status messages handled lately, by a digest
// of their bytes. Every member relays a status that is news to it, so
// each one arrives a dozen times on 100 nodes (memberlist sends a
// broadcast 4 x log10(n) times from each queue); the copies are the same
// bytes, and are dropped without being inflated and decoded again. Two
// generations of seenGen digests each bound the memory; a status older
// than that is decoded again, and found stale by its version.
type seenStatuses struct {
	seed      maphash.Seed
	cur, prev map[uint64]struct{}
}

const seenGen = 4096

func newSeenStatuses() *seenStatuses {
	return &seenStatuses{seed: maphash.MakeSeed(), cur: map[uint64]struct{}{}}
}

// digest is b's digest, and whether a status with it was seen.
func (s *seenStatuses) digest(b []byte) (uint64, bool) {
	d := maphash.Bytes(s.seed, b)
	_, inCur := s.cur[d]
	_, inPrev := s.prev[d]
	return d, inCur || inPrev
}

// add remembers a status message's digest.
func (s *seenStatuses) add(d uint64) {
	if len(s.cur) >= seenGen {
		s.prev, s.cur = s.cur, make(map[uint64]struct{}, seenGen)
	}
	s.cur[d] = struct{}{}
}
