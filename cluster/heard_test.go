package cluster

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// heardTransport passes every packet on unchanged and notes its sender.
func TestHeardTransportNotesSenders(t *testing.T) {
	var mn memberlist.MockNetwork
	a := newHeardTransport(mn.NewTransport("a"))
	defer a.Shutdown()
	b := mn.NewTransport("b")
	defer b.Shutdown()
	ip, port, err := a.FinalAdvertiseAddr("", 0)
	if err != nil {
		t.Fatal(err)
	}
	aAddr := memberlist.Address{Addr: net.JoinHostPort(ip.String(), strconv.Itoa(port)), Name: "a"}
	bIP, bPort, _ := b.FinalAdvertiseAddr("", 0)
	bAddr := net.JoinHostPort(bIP.String(), strconv.Itoa(bPort))

	if !a.heard(bAddr).IsZero() {
		t.Fatalf("b heard before it sent anything")
	}
	before := time.Now()
	if _, err := b.WriteToAddress([]byte("ping"), aAddr); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-a.PacketCh():
		if string(p.Buf) != "ping" || p.From.String() != bAddr {
			t.Fatalf("got %q from %v, want ping from %s", p.Buf, p.From, bAddr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the packet was not passed on")
	}
	if h := a.heard(bAddr); h.Before(before) {
		t.Errorf("b last heard %v, want after %v", h, before)
	}
	a.mark(bAddr, before.Add(-time.Hour))
	if h := a.heard(bAddr); h.Before(before) {
		t.Errorf("an older contact moved b's last heard back to %v", h)
	}
}
