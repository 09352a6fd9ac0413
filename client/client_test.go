package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/internal/testkit"
)

// serve answers on a real UNIX socket in a temporary directory with h.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	sock, ln := testkit.ListenUnix(t)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestTell(t *testing.T) {
	var got struct {
		method, path, version, conn string
		body                        api.TellRequest
	}
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.version = r.Method, r.URL.Path, r.Header.Get(api.VersionHeader)
		got.conn = r.Header.Get("Connection")
		if r.Close {
			got.conn = "close"
		}
		json.NewDecoder(r.Body).Decode(&got.body)
		json.NewEncoder(w).Encode(api.Message{Message: "web: going to level 2"})
	}))
	msg, err := New(sock).Tell(context.Background(), "web", "2")
	if err != nil || msg != "web: going to level 2" {
		t.Fatalf("Tell = %q, %v", msg, err)
	}
	if got.method != http.MethodPost || got.path != api.PathTell || got.version != api.Version || got.conn != "close" ||
		got.body != (api.TellRequest{Group: "web", Level: "2"}) {
		t.Errorf("the daemon saw %+v", got)
	}
}

func TestAPIError(t *testing.T) {
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(api.Error{Error: "no such group: x"})
	}))
	_, err := New(sock).Tell(context.Background(), "x", "1")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusNotFound || ae.Msg != "no such group: x" || err.Error() != "no such group: x" {
		t.Fatalf("Tell = %v, want the daemon's 404 with its message", err)
	}
}

func TestNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none")
	_, err := New(sock).Tell(context.Background(), "g", "1")
	if !errors.Is(err, ErrNoDaemon) || !strings.Contains(err.Error(), sock) {
		t.Fatalf("Tell = %v, want ErrNoDaemon naming %s", err, sock)
	}
}

// A daemon that accepts but never answers: the request ends with its
// context, with the sentence that says so.
func TestSilentDaemon(t *testing.T) {
	sock, ln := testkit.ListenUnix(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, unanswered, until the test ends
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := New(sock).Tell(ctx, "g", "1")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("Tell = %v, want the deadline", err)
	}
}

// Cancelling a watch ends the stream being read: Watch returns.
func TestWatchCancel(t *testing.T) {
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.Event{Node: "n1"})
		w.(http.Flusher).Flush()
		<-r.Context().Done() // then nothing, until the client goes
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	events := 0
	go func() {
		done <- New(sock).Watch(ctx, "", func(ev api.Event) error {
			events++
			cancel() // the first event arrived: stop watching
			return nil
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || events != 1 {
			t.Fatalf("Watch = %v after %d events, want context.Canceled after 1", err, events)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
}

// The stream's end (the daemon stopping) ends Watch without an error.
func TestWatchEnds(t *testing.T) {
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc := json.NewEncoder(w)
		enc.Encode(api.Event{Node: "n1"})
		enc.Encode(api.Event{Node: "n2"})
	}))
	var nodes []string
	err := New(sock).Watch(context.Background(), "", func(ev api.Event) error {
		nodes = append(nodes, ev.Node)
		return nil
	})
	if err != nil || strings.Join(nodes, ",") != "n1,n2" {
		t.Fatalf("Watch = %v with %v", err, nodes)
	}
}

// Each call asks its path with its method and body, and reads its answer.
func TestRequests(t *testing.T) {
	type asked struct {
		method, path, version string
		body                  string
	}
	got := make(chan asked, 1)
	hastat := api.Hastat{Node: "n1", Groups: []api.HAGroupStatus{{Group: "web", Level: "start", State: "DONE", Node: "n2"}}}
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body strings.Builder
		io.Copy(&body, r.Body)
		got <- asked{r.Method, r.URL.Path, r.Header.Get(api.VersionHeader), body.String()}
		switch r.URL.Path {
		case api.PathStatus:
			json.NewEncoder(w).Encode(api.Status{Node: "n1", Groups: []api.GroupStatus{{Group: "g", Level: "1", State: "DONE"}}})
		case api.PathHastat:
			json.NewEncoder(w).Encode(hastat)
		default:
			json.NewEncoder(w).Encode(api.Message{Message: "answer to " + r.URL.Path})
		}
	}))
	c := New(sock)
	ctx := context.Background()
	check := func(what string, want asked) {
		t.Helper()
		if a := <-got; a != want {
			t.Errorf("%s: the daemon saw %+v, want %+v", what, a, want)
		}
	}
	if msg, err := c.Reread(ctx); err != nil || msg != "answer to "+api.PathReread {
		t.Errorf("Reread = %q, %v", msg, err)
	}
	check("Reread", asked{http.MethodPost, api.PathReread, api.Version, ""})
	if st, err := c.Status(ctx); err != nil || st.Node != "n1" || len(st.Groups) != 1 || st.Groups[0].State != "DONE" {
		t.Errorf("Status = %+v, %v", st, err)
	}
	check("Status", asked{http.MethodGet, api.PathStatus, api.Version, ""})
	if h, err := c.Hastat(ctx); err != nil || h.Text() != hastat.Text() {
		t.Errorf("Hastat = %+v, %v", h, err)
	}
	check("Hastat", asked{http.MethodGet, api.PathHastat, api.Version, ""})
	// nil keeps the preferred nodes, empty clears them: both on the wire.
	for _, tc := range []struct {
		prefer []string
		body   string
	}{
		{nil, `{"group":"web","level":"start","prefer":null}`},
		{[]string{}, `{"group":"web","level":"start","prefer":[]}`},
		{[]string{"n2", "n1"}, `{"group":"web","level":"start","prefer":["n2","n1"]}`},
	} {
		if msg, err := c.HA(ctx, "web", "start", tc.prefer); err != nil || msg.Message != "answer to "+api.PathHA {
			t.Errorf("HA = %q, %v", msg, err)
		}
		check(fmt.Sprintf("HA %#v", tc.prefer), asked{http.MethodPost, api.PathHA, api.Version, tc.body})
	}
}

// What the daemon answers other than 2xx: its message and lines, or the
// status when it says nothing; an answer that is not JSON says so.
func TestErrorAnswers(t *testing.T) {
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case api.PathReread:
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(api.Error{Error: "invalid cltab, nothing changed", Lines: []string{"c:1: bad", "c:2: worse"}})
		case api.PathStatus:
			http.Error(w, "oops", http.StatusInternalServerError)
		case api.PathHastat:
			w.Write([]byte("not json"))
		case api.PathWatch:
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(api.Error{Error: "no cluster"})
		}
	}))
	c := New(sock)
	ctx := context.Background()
	_, err := c.Reread(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusUnprocessableEntity || ae.Msg != "invalid cltab, nothing changed" || err.Error() != "c:1: bad\nc:2: worse" {
		t.Errorf("Reread = %#v", err)
	}
	if _, err := c.Status(ctx); !errors.As(err, &ae) || ae.Msg != "daemon answered 500 Internal Server Error" {
		t.Errorf("Status = %v, want the status said", err)
	}
	if _, err := c.Hastat(ctx); err == nil || !strings.Contains(err.Error(), "bad answer from the daemon on "+sock) {
		t.Errorf("Hastat = %v, want a bad answer naming the socket", err)
	}
	err = c.Watch(ctx, "", func(api.Event) error { return nil })
	if !errors.As(err, &ae) || ae.Code != http.StatusConflict || ae.Msg != "no cluster" {
		t.Errorf("Watch = %v", err)
	}
}

// Watch asks for one node's events (the name escaped in the query), and
// stops at the first error of f, which it returns.
func TestWatchNodeAndStop(t *testing.T) {
	queries := make(chan string, 1)
	sock := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.RawQuery
		enc := json.NewEncoder(w)
		for i := range 3 {
			enc.Encode(api.Event{Node: fmt.Sprintf("n%d", i)})
		}
	}))
	stop := errors.New("enough")
	n := 0
	err := New(sock).Watch(context.Background(), "n&1", func(api.Event) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("Watch = %v after %d events, want f's error after 2", err, n)
	}
	if q := <-queries; q != "node=n%261" {
		t.Errorf("Watch asked ?%s", q)
	}
}

// Shutdown returns once the daemon process has exited, not at its answer:
// the daemon here is the test binary, which answers and then takes its
// time to exit.
func TestShutdownWaitsForExit(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fakeEnv+"="+sock, exitEnv+"=1")
	waited, err := testkit.StartListening(cmd)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := New(sock).Shutdown(ctx)
	if err != nil || msg != "fake: going to level 1" {
		t.Errorf("Shutdown = %q, %v", msg, err)
	}
	if testkit.Alive(cmd.Process.Pid) {
		cmd.Process.Kill()
		t.Error("Shutdown returned while the daemon process still ran")
	}
	if err := <-waited; err != nil {
		t.Errorf("the fake daemon: %v", err)
	}
}
