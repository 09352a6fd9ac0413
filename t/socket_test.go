package t

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/client"
)

// The daemon's socket against hostile or careless clients: malformed and
// oversized requests get a clear error, clients that never finish a
// request are timed out, and hundreds at once are all answered, while the
// daemon goes on serving others.

// httpOn is an HTTP client of the daemon's socket that speaks raw paths.
func httpOn(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}, Timeout: hang}
}

func TestSocketHostileRequests(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "g:a:1:respawn:exec sleep 1000\n")
	hc := httpOn(d.sock)
	big := `{"group":"g","level":"` + strings.Repeat("x", 100<<10) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"malformed json", "POST", api.PathTell, `{"group":`, 400, "bad request body"},
		{"not json", "POST", api.PathTell, "\x00\xff\xfe", 400, "bad request body"},
		{"oversized body", "POST", api.PathTell, big, 400, "request body over"},
		{"unknown path", "GET", "/v0/nope", "", 404, "no such request"},
		{"unknown group", "POST", api.PathTell, `{"group":"nope","level":"1"}`, 404, "no such group: nope"},
	} {
		req, err := http.NewRequest(tc.method, "http://clinit"+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e api.Error
		if resp.StatusCode != tc.code || json.Unmarshal(data, &e) != nil || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s: %d %q, want %d with an error containing %q", tc.name, resp.StatusCode, data, tc.code, tc.want)
		}
	}
	// Not HTTP at all: an answer (net/http's 400) and a closed connection.
	c, err := net.Dial("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hang))
	fmt.Fprintf(c, "\x16\x03\x01 hello\r\n\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Errorf("garbage got %q, want a 400", line)
	}
	d.tellDone("g", "1")
}

// slowConn is a connection whose request never completes.
type slowConn struct {
	c      net.Conn
	closed chan time.Duration // how long after its last write the daemon closed it
	answer chan string        // what the daemon wrote before closing
}

// openSlow connects and writes part of a request, then waits for the
// daemon to end the connection.
func openSlow(t *testing.T, sock, partial string) *slowConn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &slowConn{c: c, closed: make(chan time.Duration, 1), answer: make(chan string, 1)}
	if _, err := io.WriteString(c, partial); err != nil {
		t.Fatal(err)
	}
	wrote := time.Now()
	go func() {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		data, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return // our own deadline: the daemon never closed it
		}
		s.answer <- string(data)
		s.closed <- time.Since(wrote)
	}()
	return s
}

func TestSocketSlowClients(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "g:a:1:respawn:echo $$ >> {dir}/a; exec sleep 1000\n")
	var conns []*slowConn
	var bodies []*slowConn
	for i := range 100 {
		switch i % 3 {
		case 0: // connects and says nothing
			conns = append(conns, openSlow(t, d.sock, ""))
		case 1: // half a header
			conns = append(conns, openSlow(t, d.sock, "POST /v0/tell HTTP/1.1\r\nHost: clinit\r\nContent-"))
		case 2: // a header, and half of the body it announces
			s := openSlow(t, d.sock, "POST /v0/tell HTTP/1.1\r\nHost: clinit\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"group\":")
			conns = append(conns, s)
			bodies = append(bodies, s)
		}
	}
	// While they hang, the daemon serves an operator.
	d.tellDone("g", "1")
	readPid(t, d.path("a"), 0)
	if out, errOut, code := d.clinit("--status"); code != 0 || !strings.Contains(out, "g 1 DONE") {
		t.Fatalf("clinit --status beside 100 slow clients: status %d, %q %q", code, out, errOut)
	}

	// Each slow client is timed out (the server's header and request
	// timeouts, 5 s and 10 s); one that sent a header is told why.
	deadline := time.After(30 * time.Second)
	var slowest time.Duration
	for i, s := range conns {
		select {
		case took := <-s.closed:
			slowest = max(slowest, took)
		case <-deadline:
			t.Fatalf("slow client %d still connected 30 s after it stalled", i)
		}
	}
	for _, s := range bodies {
		if a := <-s.answer; !strings.HasPrefix(a, "HTTP/1.1 400") || !strings.Contains(a, `"error":"bad request body`) {
			t.Errorf("a client that stalled in its body got %q, want a 400 with a JSON error", a)
		}
	}
	t.Logf("100 slow clients closed by the daemon, the last %v after it stalled", slowest.Round(time.Millisecond))
	if out, errOut, code := d.clinit("-v"); code != 0 || !strings.Contains(out, "g 1 DONE") {
		t.Fatalf("clinit -v after the slow clients: status %d, %q %q", code, out, errOut)
	}
}

func TestSocketManyClients(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
g:a:1:respawn:exec sleep 1000
g:b:1:respawn:exec sleep 1000
`)
	const n = 300
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(d.sock)
			<-start
			switch i % 3 {
			case 0:
				_, errs[i] = c.Status(ctx)
			case 1:
				_, errs[i] = c.Tell(ctx, "g", "1")
			case 2:
				_, errs[i] = c.Tell(ctx, "g", "2")
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(began)
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("client %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent clients got no answer", failed, n)
	}
	t.Logf("%d concurrent clients answered in %v", n, took.Round(time.Millisecond))

	// The daemon goes on: the group obeys the last tell, with one copy of
	// its entries.
	d.tellDone("g", "1")
	eventually(t, hang, func() bool {
		g, _ := d.status().group("g")
		for _, e := range g.Entries {
			if e.Pid == 0 || !alive(e.Pid) {
				return false
			}
		}
		return len(g.Entries) == 2
	}, "both entries of g to run")
	var procs []string
	if !poll(hang, func() bool { procs = d.leftovers(); return len(procs) == 3 }) {
		t.Fatalf("want the daemon and one process per entry, got %v", procs)
	}
}
