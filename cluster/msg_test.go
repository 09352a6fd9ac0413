package cluster

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// A status of many groups is deflated to fit a UDP gossip, a short one
// is sent as it is, and both decode to what was encoded.
func TestEncodeDeflatesLargeMessages(t *testing.T) {
	small := nodeStatus{Node: "n1", Version: 7, CPUs: 2}
	big := nodeStatus{Node: "n1", Version: 8, CPUs: 2}
	for i := range 30 {
		big.Groups = append(big.Groups, groupState{Group: fmt.Sprintf("g%04d", i), Level: "start", State: "DONE", Since: 1732338725196})
	}
	plain, _ := json.Marshal(big)
	for _, c := range []struct {
		name     string
		s        nodeStatus
		deflated bool
	}{{"small", small, false}, {"30 groups", big, true}} {
		msg := encode(msgStatus, c.s)
		if got := msg[0] == msgDeflated; got != c.deflated {
			t.Errorf("%s: deflated %v, want %v", c.name, got, c.deflated)
		}
		if c.deflated {
			t.Logf("%s: %d bytes of JSON sent as %d", c.name, len(plain)+1, len(msg))
			if len(msg) > maxGossip {
				t.Errorf("%s: %d bytes, over the %d of a UDP gossip", c.name, len(msg), maxGossip)
			}
		}
		kind, body, err := decode(msg)
		if err != nil || kind != msgStatus {
			t.Fatalf("%s: decode: kind %q, %v", c.name, kind, err)
		}
		var back nodeStatus
		if err := json.Unmarshal(body, &back); err != nil || !reflect.DeepEqual(back, c.s) {
			t.Errorf("%s: decoded %+v (%v), want %+v", c.name, back, err, c.s)
		}
	}
}

// A deflated message that is not DEFLATE, inflates past the bound, or
// nests another is refused with an error, not a panic or a huge buffer.
func TestDecodeRefusesBadDeflatedMessages(t *testing.T) {
	bomb := deflated(append([]byte{msgStatus}, strings.Repeat(" ", maxInflated+10)...))
	for _, c := range []struct {
		name, want string
		msg        []byte
	}{
		{"not deflate", "deflated message", []byte{msgDeflated, 0xff, 0xfe, 0x00}},
		{"too large", "over", bomb},
		{"nested", "within a deflated", deflated(deflated([]byte(`s{}`)))},
		{"empty", "empty", deflated(nil)},
	} {
		if _, _, err := decode(c.msg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// Copies of a status handled already are known by their bytes; others
// are not, and the memory forgets after two generations.
func TestSeenStatuses(t *testing.T) {
	s := newSeenStatuses()
	first := encode(msgStatus, nodeStatus{Node: "a", Version: 1})
	d, seen := s.digest(first)
	if seen {
		t.Fatal("a new message is seen")
	}
	s.add(d)
	if _, seen := s.digest(append([]byte(nil), first...)); !seen {
		t.Fatal("a copy of a handled status is not seen")
	}
	if _, seen := s.digest(encode(msgStatus, nodeStatus{Node: "a", Version: 2})); seen {
		t.Fatal("a newer status is seen")
	}
	for v := range 2 * seenGen {
		d, _ := s.digest(encode(msgStatus, nodeStatus{Node: "b", Version: uint64(v) + 1}))
		s.add(d)
	}
	if _, seen := s.digest(first); seen {
		t.Fatal("a status two generations old is still seen")
	}
	if len(s.cur)+len(s.prev) > 2*seenGen {
		t.Fatalf("remembers %d digests, want at most %d", len(s.cur)+len(s.prev), 2*seenGen)
	}
}
