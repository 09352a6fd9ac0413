package keeper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Ensure connects to the keeper of node in dir, starting one first when
// none answers. start runs argv (argv[0] is this binary) as a process of
// its own, in its own process group, and does not wait for it: the
// daemon passes its reaper's start, so that the daemon reaps the keeper
// if it exits first. Ensure returns once the keeper answers a state
// request, and refuses a keeper that serves another node or speaks
// another protocol.
func Ensure(ctx context.Context, dir, node string, start func(argv []string) error) (*Client, *State, error) {
	// The keeper resolves a relative DIR against its own working
	// directory, which need not be ours.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	if c, st, err := dialState(ctx, dir); err == nil {
		return checkNode(c, st, node, dir)
	}
	if err := start([]string{executable(), Flag, dir, "--node", node}); err != nil {
		return nil, nil, fmt.Errorf("starting a keeper for %s: %w", dir, err)
	}
	// The keeper listens within milliseconds; there is no event to wait
	// on for a process we did not start ourselves, so Ensure retries the
	// dial with a growing pause until ctx ends.
	pause := time.Millisecond
	var last error
	for {
		c, st, err := dialState(ctx, dir)
		if err == nil {
			return checkNode(c, st, node, dir)
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("the keeper started for %s did not answer (see its log): %w", filepath.Join(dir, SocketName), last)
		case <-time.After(pause):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// executable is this binary's path, for the keeper to be of the same
// version as its daemon. Once an upgrade has removed or replaced the
// file, it is /proc/self/exe, which still names the running binary.
func executable() string {
	const self = "/proc/self/exe"
	exe, err := os.Executable()
	if err != nil {
		return self
	}
	fi, err1 := os.Stat(exe)
	me, err2 := os.Stat(self)
	if err1 != nil || err2 != nil || !os.SameFile(fi, me) {
		return self
	}
	return exe
}

func dialState(ctx context.Context, dir string) (*Client, *State, error) {
	c, err := Dial(dir)
	if err != nil {
		return nil, nil, err
	}
	st, err := c.State(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, st, nil
}

func checkNode(c *Client, st *State, node, dir string) (*Client, *State, error) {
	if st.Protocol != Protocol {
		c.Close()
		return nil, nil, fmt.Errorf("the keeper on %s (pid %d) speaks protocol %d, not %d: stop its groups, then that keeper",
			filepath.Join(dir, SocketName), st.Pid, st.Protocol, Protocol)
	}
	if st.Node != node {
		c.Close()
		return nil, nil, fmt.Errorf("the keeper on %s serves node %s, not %s", filepath.Join(dir, SocketName), st.Node, node)
	}
	return c, st, nil
}
