package keeper

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Every bad request gets an error naming what is wrong, and changes
// nothing; the connection stays usable.
func TestBadRequests(t *testing.T) {
	k, c, ctx := keeperHoldingWeb(t, time.Second)
	a := sleeper(t, "n1", "web")
	must(t, c.Watch(ctx, "web", a.pid, a.start))
	before, err := c.State(ctx)
	must(t, err)
	c.Close()

	conn, err := net.Dial("unix", filepath.Join(k.dir, SocketName))
	must(t, err)
	defer conn.Close()
	r := bufio.NewReader(conn)
	ask := func(line string) Reply {
		t.Helper()
		conn.SetDeadline(time.Now().Add(bound))
		if _, err := fmt.Fprintln(conn, line); err != nil {
			t.Fatal(err)
		}
		s, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no reply to %s: %v", line, err)
		}
		var rep Reply
		if err := json.Unmarshal([]byte(s), &rep); err != nil {
			t.Fatalf("reply %q: %v", s, err)
		}
		return rep
	}
	for _, tc := range []struct{ line, want string }{
		{`{"id":1,"op":"lease"`, "bad request"},
		{`not json`, "bad request"},
		{`{"id":2}`, "op missing"},
		{`{"id":3,"op":"renew"}`, `unknown op "renew"`},
		{`{"id":4,"op":"lease","stop_timeout":1}`, "deadline missing"},
		{`{"id":5,"op":"lease","deadline":1}`, "stop_timeout missing"},
		{`{"id":6,"op":"lease","deadline":-5,"stop_timeout":1}`, "negative"},
		{`{"id":7,"op":"lease","deadline":5,"stop_timeout":86400000000001}`, "stop_timeout"},
		{`{"id":8,"op":"hold"}`, "group missing"},
		{`{"id":9,"op":"hold","group":"a b"}`, "bad character"},
		{`{"id":10,"op":"hold","group":"web","pid":3}`, "unexpected pid"},
		{`{"id":11,"op":"watch","group":"db","pid":12345,"start":1}`, "db is not held"},
		{`{"id":12,"op":"watch","group":"web","pid":12345}`, "start missing"},
		{`{"id":13,"op":"watch","group":"web","pid":1,"start":1}`, "pid 1"},
		{`{"id":14,"op":"unwatch","pid":999999999}`, "not watched"},
		{`{"id":15,"op":"state","colour":"red"}`, "unknown field"},
		{`{"id":16,"op":"exit"}`, "refused while 1 group is held"},
		{`{"id":17,"op":"state"} {"op":"exit"}`, "more than one JSON value"},
		{`{"id":18,"op":"release","group":"a:b"}`, "bad character"},
	} {
		rep := ask(tc.line)
		if !strings.Contains(rep.Error, tc.want) {
			t.Errorf("%s: error %q, want one with %q", tc.line, rep.Error, tc.want)
		}
		var id struct{ ID uint64 }
		if json.Unmarshal([]byte(tc.line), &id) == nil && rep.ID != id.ID {
			t.Errorf("%s: reply id %d", tc.line, rep.ID)
		}
	}
	rep := ask(`{"id":99,"op":"state"}`)
	if rep.Error != "" || rep.State == nil {
		t.Fatalf("state after the bad requests: %+v", rep)
	}
	after := *rep.State
	after.Now, before.Now = 0, 0
	if !reflect.DeepEqual(&after, before) {
		t.Errorf("bad requests changed the state:\n before %+v\n after  %+v", before, &after)
	}
	// A line too long to be a request ends the connection, with a reason.
	conn.SetDeadline(time.Now().Add(bound))
	fmt.Fprintf(conn, "{\"op\":\"%s\"}\n", strings.Repeat("x", maxLine))
	s, _ := r.ReadString('\n')
	if !strings.Contains(s, "longer than") {
		t.Errorf("reply to an overlong line: %q", s)
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Errorf("the connection stayed open after an overlong line")
	}
}

// Hold needs a lease that has not ended: without one the daemon has no
// right to start anything.
func TestHoldNeedsALease(t *testing.T) {
	_, c := startKeeper(t, "n1")
	ctx := ctxT(t)
	if err := c.Hold(ctx, "web"); err == nil || !strings.Contains(err.Error(), "no lease yet") {
		t.Errorf("hold without a lease: %v", err)
	}
	must(t, c.Lease(ctx, BoottimeNow()-1, time.Second))
	if err := c.Hold(ctx, "web"); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Errorf("hold after the deadline: %v", err)
	}
	st, err := c.State(ctx)
	must(t, err)
	if len(st.Held) != 0 || st.Lapses != 0 {
		t.Errorf("state %+v, want nothing held and no lapse", st)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{`{"id":1,"op":"lease","deadline":5,"stop_timeout":1}`,
		`{"op":"watch","group":"web","pid":3,"start":9}`, `{"op":"state"}`, `[]`, `{"op":"hold","group":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := decodeRequest(line)
		if err != nil {
			return
		}
		// What is accepted is valid, and names its groups sanely.
		if err := validate(&req); err != nil {
			t.Fatalf("accepted %q but validate says %v", line, err)
		}
		if req.Group != "" && strings.ContainsAny(req.Group, ":, \t\n\x00") {
			t.Fatalf("accepted group %q", req.Group)
		}
	})
}
