package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// runStomith runs the fencing command cmd with the dead node's name as
// $1, through run (the daemon's reaper: the daemon reaps every child, so
// a command waited for anywhere else would lose its exit status to it).
// A command still running after timeout is killed with its process
// group, and counts as failed.
func runStomith(run func(ctx context.Context, argv []string) ([]byte, error), cmd, node string, timeout time.Duration) ([]byte, error) {
	if run == nil {
		return nil, errors.New("no command runner: the stomith command cannot run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := run(ctx, []string{"/bin/sh", "-c", cmd, "clinit-stomith", node})
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("still running after %v (:::stomithtimeout:): %w", timeout, err)
	}
	return out, err
}
