package keeper

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"
)

// ErrBroken is returned once the keeper can no longer be relied on: it
// exited, another daemon's connection replaced this one, or it did not
// answer a request before the request's context ended (a frozen or
// starved keeper enforces nothing either). From then on nothing bounds
// the node's HA groups but the daemon: it must stop them itself (or
// reconnect and read the State first).
var ErrBroken = errors.New("keeper connection broken")

// Client is the daemon's connection to its keeper. Requests may be made
// from several goroutines at once: each is sent in turn on the one
// connection without waiting for the answers before it (the keeper
// answers a connection's requests in order), and each caller waits for
// its own. A node that starts forty HA groups at once holds them in one
// exchange, not forty round trips to a keeper that a loaded machine
// schedules late. Give each request a context with a deadline: a
// request not answered by then breaks the connection (see ErrBroken and
// Done).
type Client struct {
	path string
	c    net.Conn

	mu  sync.Mutex // serializes the writes; guards id and enc
	id  uint64
	enc *json.Encoder
	// pending are the requests sent and not answered, by ID. A lock of
	// their own: the reader never waits for a write that may itself wait
	// for the keeper to read.
	pmu     sync.Mutex
	pending map[uint64]chan Reply

	done chan struct{} // closed by the reader when the connection breaks
	once sync.Once     // the first break sets err and closes c
	err  error         // why; set before done is closed
}

// fail breaks the connection for the reason err, unless it is broken
// already; the reader then sees the end and closes done.
func (c *Client) fail(err error) {
	c.once.Do(func() {
		c.err = err
		c.c.Close()
	})
}

// Dial connects to the keeper listening in dir.
func Dial(dir string) (*Client, error) {
	path := filepath.Join(dir, SocketName)
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("no keeper answers on %s: %w", path, err)
	}
	cl := &Client{path: path, c: c, enc: json.NewEncoder(c),
		pending: map[uint64]chan Reply{}, done: make(chan struct{})}
	go cl.read()
	return cl, nil
}

// read owns the reading side: it passes each reply on and, when the
// connection ends, records why and closes done.
func (c *Client) read() {
	sc := bufio.NewScanner(c.c)
	sc.Buffer(make([]byte, 4096), 16<<20)
	for sc.Scan() {
		var r Reply
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			c.fail(fmt.Errorf("%w: keeper on %s sent %.80q: %v", ErrBroken, c.path, sc.Bytes(), err))
			break
		}
		// Never blocks, so that a broken connection is seen at once: a
		// reply to no request waiting is dropped.
		c.pmu.Lock()
		ch := c.pending[r.ID]
		delete(c.pending, r.ID)
		c.pmu.Unlock()
		if ch != nil {
			ch <- r // buffered for this one reply
		}
	}
	err := sc.Err()
	if err == nil {
		err = errors.New("connection closed")
	}
	c.fail(fmt.Errorf("%w: keeper on %s: %v", ErrBroken, c.path, err))
	close(c.done)
}

// Done is closed when the connection breaks; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is nil while the connection holds, and why it broke after.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection. The keeper goes on enforcing what it
// holds.
func (c *Client) Close() error {
	c.fail(fmt.Errorf("%w: closed by its client", ErrBroken))
	return nil
}

// do sends r and returns the keeper's reply to it.
func (c *Client) do(ctx context.Context, r Request) (Reply, error) {
	ch := make(chan Reply, 1)
	c.mu.Lock()
	if err := c.Err(); err != nil {
		c.mu.Unlock()
		return Reply{}, err
	}
	c.id++
	r.ID = c.id
	c.pmu.Lock()
	c.pending[r.ID] = ch
	c.pmu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		c.c.SetWriteDeadline(dl)
	} else {
		c.c.SetWriteDeadline(time.Time{})
	}
	err := c.enc.Encode(r)
	c.mu.Unlock()
	if err != nil {
		c.pmu.Lock()
		delete(c.pending, r.ID)
		c.pmu.Unlock()
	}
	if err != nil {
		err = fmt.Errorf("%w: sending %s to keeper on %s: %v", ErrBroken, r.Op, c.path, err)
		c.fail(err)
		return Reply{}, err
	}
	answer := func(rep Reply) (Reply, error) {
		if rep.Error != "" {
			return rep, fmt.Errorf("keeper: %s", rep.Error)
		}
		return rep, nil
	}
	select {
	case rep := <-ch:
		return answer(rep)
	case <-c.done:
		// A keeper that answered and then closed: its answer counts
		// (select picks at random among ready cases).
		select {
		case rep := <-ch:
			return answer(rep)
		default:
		}
		return Reply{}, c.err
	case <-ctx.Done():
		err := fmt.Errorf("%w: keeper on %s did not answer %s: %v", ErrBroken, c.path, r.Op, ctx.Err())
		c.fail(err)
		return Reply{}, err
	}
}

// Lease sets the deadline, a CLOCK_BOOTTIME instant in nanoseconds (see
// BoottimeNow), and the grace between SIGTERM and SIGKILL at a lapse.
func (c *Client) Lease(ctx context.Context, deadline int64, stopTimeout time.Duration) error {
	_, err := c.do(ctx, Request{Op: OpLease, Deadline: deadline, StopTimeout: int64(stopTimeout)})
	return err
}

// Hold tells the keeper that group's processes are about to start; it
// must have returned nil before the first one starts.
func (c *Client) Hold(ctx context.Context, group string) error {
	_, err := c.do(ctx, Request{Op: OpHold, Group: group})
	return err
}

// Watch names a process-group leader of a held group, with its start
// time (see ProcStartTime).
func (c *Client) Watch(ctx context.Context, group string, pid int, start uint64) error {
	_, err := c.do(ctx, Request{Op: OpWatch, Group: group, Pid: pid, Start: start})
	return err
}

// Unwatch forgets a watched process that exited.
func (c *Client) Unwatch(ctx context.Context, pid int) error {
	_, err := c.do(ctx, Request{Op: OpUnwatch, Pid: pid})
	return err
}

// Release forgets group and its processes: it has stopped.
func (c *Client) Release(ctx context.Context, group string) error {
	_, err := c.do(ctx, Request{Op: OpRelease, Group: group})
	return err
}

// State returns the keeper's state.
func (c *Client) State(ctx context.Context) (*State, error) {
	r, err := c.do(ctx, Request{Op: OpState})
	if err != nil {
		return nil, err
	}
	if r.State == nil {
		return nil, fmt.Errorf("keeper on %s: state reply without a state", c.path)
	}
	return r.State, nil
}

// Exit asks the keeper to exit; it refuses while a group is held.
func (c *Client) Exit(ctx context.Context) error {
	_, err := c.do(ctx, Request{Op: OpExit})
	return err
}

// ProcStartTime reads pid's start time, field 22 of /proc/PID/stat, for
// Watch.
func ProcStartTime(pid int) (uint64, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return st.start, nil
}
