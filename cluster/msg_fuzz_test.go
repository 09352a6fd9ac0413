package cluster

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// deflated is b sent as a deflated message.
func deflated(b []byte) []byte {
	var z bytes.Buffer
	z.WriteByte(msgDeflated)
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

// TestDecodeBoundsABomb: a message of some KB that inflates to 5 MiB is
// refused; at c02508e the bound was 16 MiB, and it was inflated whole
// each time a copy came. The largest real status fits.
func TestDecodeBoundsABomb(t *testing.T) {
	bomb := deflated(append([]byte{msgStatus}, strings.Repeat(" ", 5<<20)...))
	if len(bomb) > 16<<10 {
		t.Fatalf("the bomb is %d bytes", len(bomb))
	}
	if _, _, err := decode(bomb); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("a %d-byte message inflating to 5 MiB: %v, want refused", len(bomb), err)
	}
	// A status of 50,000 groups with long names, as a 1 MiB cltab allows.
	big := nodeStatus{Node: "n1", Version: 1}
	for i := range 50000 {
		big.Groups = append(big.Groups, groupState{Group: "g" + strings.Repeat("x", 8) + string(rune('a'+i%26)), Level: "start", State: "DONE", Since: 1732338725196})
	}
	if _, _, err := decode(encode(msgStatus, big)); err != nil {
		t.Fatalf("a status of 50,000 groups: %v", err)
	}
	// And a bad message is remembered: its copies are not inflated again.
	nodes := mockCluster(t, 1, testKey)
	c := nodes[0].Cluster
	var seen bool
	c.call(context.Background(), func() {
		c.onMessage(bomb)
		_, seen = c.seen.digest(bomb)
	})
	if !seen {
		t.Fatal("a bomb's copies would be inflated again")
	}
}

// FuzzDecode: the gossip decoder reads what any member (or, without a
// key, anyone) sends. Whatever comes, it returns an error or a kind and
// a body within the bound, never panics, and what encode makes it gives
// back unchanged.
func FuzzDecode(f *testing.F) {
	st := nodeStatus{Node: "n1", Version: 3, CPUs: 2, Groups: []groupState{{Group: "web", Level: "start", State: "DONE"}}, Bad: map[string]int64{"db": 1}}
	for range 20 {
		st.Groups = append(st.Groups, groupState{Group: "g", Level: "1", State: "DONE"})
	}
	for _, seed := range [][]byte{
		encode(msgStatus, nodeStatus{Node: "n1", Version: 1}), encode(msgStatus, st),
		encode(msgStatus, pushPull{Node: "n1", Statuses: []nodeStatus{st}}),
		deflated([]byte(`s{}`)), deflated(deflated([]byte(`s{}`))), {msgDeflated, 0xff}, {}, {'s'},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, body, err := decode(b)
		if err != nil {
			return
		}
		if b[0] == msgDeflated && len(body)+1 > maxInflated {
			t.Fatalf("an inflated body of %d bytes, over the bound", len(body))
		}
		if len(b) > 0 && b[0] != msgDeflated && (kind != b[0] || !bytes.Equal(body, b[1:])) {
			t.Fatalf("a plain message changed: kind %q", kind)
		}
		// What the loop does with each kind must not panic either.
		switch kind {
		case msgStatus:
			var s nodeStatus
			if json.Unmarshal(body, &s) == nil {
				checkStatus(s)
				back, _, err := decode(encode(msgStatus, s))
				if err != nil || back != msgStatus {
					t.Fatalf("a decoded status does not re-encode: %v", err)
				}
			}
		}
	})
}
