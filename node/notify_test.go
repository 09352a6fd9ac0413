package node

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cluster"
)

func TestGroupsSummary(t *testing.T) {
	g := func(name, state string) api.GroupStatus { return api.GroupStatus{Group: name, State: state} }
	for _, c := range []struct {
		groups []api.GroupStatus
		want   string
	}{
		{nil, "no group told"},
		{[]api.GroupStatus{g("web", "DONE")}, "1 group"},
		{[]api.GroupStatus{g("a", "DONE"), g("db", "FAILED"), g("c", "STARTING")}, "3 groups, 1 FAILED (db)"},
		{[]api.GroupStatus{g("a", "FAILED"), g("b", "FAILED"), g("c", "FAILED"), g("d", "FAILED"), g("e", "DONE")},
			"5 groups, 4 FAILED (a b c ...)"},
	} {
		if got := groupsSummary(api.Status{Groups: c.groups}); got != c.want {
			t.Errorf("groupsSummary(%v) = %q, want %q", c.groups, got, c.want)
		}
	}
}

func TestClusterSummaryText(t *testing.T) {
	for _, c := range []struct {
		s    cluster.Summary
		want string
	}{
		{cluster.Summary{}, ""},
		{cluster.Summary{Clustered: true}, "HA off"},
		{cluster.Summary{Clustered: true, HA: true, Held: 0}, "HA: 0 held here, no quorum"},
		{cluster.Summary{Clustered: true, HA: true, Held: 2, Quorum: true, Leader: "n1"}, "HA: 2 held here, quorum, leader n1"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.s, got, c.want)
		}
	}
}

// recorder stands in for NOTIFY_SOCKET.
type recorder struct {
	mu   sync.Mutex
	sent []string
}

func (r *recorder) send(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, s)
	return nil
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string{}, r.sent...)
}

// A burst of changes is one STATUS= per statusGap at most, the newest
// line last; a change back to the line already sent sends nothing.
func TestNotifierStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		n := newNotifier(rec.send)
		stop := make(chan struct{})
		go n.run(stop)
		st := func(k int) api.Status {
			var s api.Status
			for range k {
				s.Groups = append(s.Groups, api.GroupStatus{Group: "g", State: "DONE"})
			}
			return s
		}
		n.setEngine(st(1))
		synctest.Wait()
		for k := 2; k <= 50; k++ {
			n.setEngine(st(k))
		}
		n.setCluster(cluster.Summary{Clustered: true, HA: true, Held: 1, Quorum: true, Leader: "n2"})
		time.Sleep(statusGap)
		synctest.Wait()
		n.setEngine(st(50)) // no change
		time.Sleep(2 * statusGap)
		synctest.Wait()
		close(stop)
		want := []string{"STATUS=1 group", "STATUS=50 groups; HA: 1 held here, quorum, leader n2"}
		if got := rec.all(); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("sent %q, want %q", got, want)
		}
	})
}

func TestNotifierReload(t *testing.T) {
	var rec recorder
	n := newNotifier(rec.send)
	n.reloading()
	n.reloaded()
	got := rec.all()
	if len(got) != 2 || !strings.HasPrefix(got[0], "RELOADING=1\nMONOTONIC_USEC=") || got[1] != "READY=1" {
		t.Errorf("sent %q, want RELOADING=1 with MONOTONIC_USEC, then READY=1", got)
	}
}
