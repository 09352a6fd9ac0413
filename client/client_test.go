package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
)

// serve answers on a real UNIX socket in a temporary directory with h.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
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
	if !errors.As(err, &ae) || !ae.NotFound() || ae.Msg != "no such group: x" {
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
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
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
	_, err = New(sock).Tell(ctx, "g", "1")
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
