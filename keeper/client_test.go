package keeper

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Requests made at once go out at once: a stand-in for the keeper's
// socket (not the keeper: it answers nothing until it has read every
// request) gets all of them before it answers, in order, and each
// caller gets its own answer. A client that waited for each answer
// before sending the next request would never get one.
func TestClientPipelinesRequests(t *testing.T) {
	const n = 40
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer conn.Close()
		sc := bufio.NewScanner(conn)
		var reqs []Request
		for len(reqs) < n && sc.Scan() {
			var r Request
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				served <- err
				return
			}
			reqs = append(reqs, r)
		}
		if len(reqs) < n {
			served <- fmt.Errorf("got %d requests of %d: %v", len(reqs), n, sc.Err())
			return
		}
		enc := json.NewEncoder(conn)
		for _, r := range reqs {
			rep := Reply{ID: r.ID}
			if r.Group == "bad" {
				rep.Error = "hold bad: refused"
			}
			if err := enc.Encode(rep); err != nil {
				served <- err
				return
			}
		}
		served <- nil
	}()
	c, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		group := fmt.Sprintf("g%d", i)
		if i == n/2 {
			group = "bad"
		}
		wg.Go(func() { errs[i] = c.Hold(ctx, group) })
	}
	wg.Wait()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		switch {
		case i == n/2 && (err == nil || err.Error() != "keeper: hold bad: refused"):
			t.Errorf("the refused hold returned %v", err)
		case i != n/2 && err != nil:
			t.Errorf("hold g%d: %v", i, err)
		}
	}
}
