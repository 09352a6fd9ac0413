package reaper

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// MaxOutput bounds what Output keeps of a command's output. The rest is
// read and dropped: a chatty command neither blocks nor grows the daemon.
const MaxOutput = 64 << 10

// Output runs argv to its end and returns its stdout and stderr together
// (a's Stdout and Stderr are replaced by a pipe). The error is nil for
// exit 0 and an *ExitError for a failure. If ctx ends first, the
// command's whole process group gets SIGKILL and Output returns at once
// with an error that wraps ctx's.
// Processes the command left in its process group may hold the output
// open after it exited: they are waited for until ctx ends, then killed.
func Output(ctx context.Context, argv []string, a Attrs) ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	a.Stdout, a.Stderr = w, w
	pid, exits, err := Start(argv, a)
	w.Close()
	if err != nil {
		return nil, err
	}
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, MaxOutput))
		io.Copy(io.Discard, r)
		out <- b
	}()
	var x Exit
	select {
	case x = <-exits:
	case <-ctx.Done():
		// Not waited for: a process stuck in the kernel (a hung NFS
		// mount) outlives SIGKILL, and the caller must not hang with it.
		signalGroup(pid, unix.SIGKILL)
		r.SetReadDeadline(time.Now())
		return <-out, fmt.Errorf("killed with its process group: %w", ctx.Err())
	}
	var b []byte
	select {
	case b = <-out:
	case <-ctx.Done():
		// The leader is reaped, but members of its process group hold
		// its number (a pgid is never reused while it has members).
		unix.Kill(-pid, unix.SIGKILL)
		r.SetReadDeadline(time.Now())
		b = <-out
	}
	return b, x.Err()
}
