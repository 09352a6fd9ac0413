package reaper

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// gone waits (on a pidfd, no polling) until pid has exited, and reports
// whether it did within a generous bound.
func gone(t *testing.T, pid int) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return errors.Is(err, unix.ESRCH)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// SIGCHLD (the reaper's) interrupts the poll: poll again.
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(time.Until(deadline).Milliseconds()))
		if errors.Is(err, unix.EINTR) && time.Now().Before(deadline) {
			continue
		}
		return err == nil && n == 1
	}
}

func TestOutput(t *testing.T) {
	out, err := Output(context.Background(), sh("echo out; echo err >&2; exit 3"), Attrs{})
	var xe *ExitError
	if !errors.As(err, &xe) || xe.Code() != 3 {
		t.Errorf("err = %v, want exit status 3", err)
	}
	if string(out) != "out\nerr\n" {
		t.Errorf("output %q", out)
	}
}

func TestOutputIsBounded(t *testing.T) {
	out, err := Output(context.Background(), []string{"/bin/sh", "-c", "head -c 1000000 /dev/zero"}, Attrs{})
	if err != nil || len(out) != MaxOutput {
		t.Errorf("err %v, %d bytes; want nil, %d", err, len(out), MaxOutput)
	}
}

// A command that runs over is killed with everything in its process
// group.
func TestOutputTimeoutKillsTheGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	out, err := Output(ctx, sh("/bin/sleep 100 & echo $!; /bin/sleep 100"), Attrs{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "killed") {
		t.Errorf("err = %v, want killed, deadline exceeded", err)
	}
	printedGone(t, out, "the background sleep", "the timeout")
}

// A command that exits but leaves a process holding its output: its own
// status counts, and what it left is killed when ctx ends.
func TestOutputLeftovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	out, err := Output(ctx, sh("/bin/sleep 100 & echo $!; exit 0"), Attrs{})
	if err != nil {
		t.Errorf("err = %v, want the command's own success", err)
	}
	printedGone(t, out, "the leftover sleep", "ctx")
}

// printedGone fails the test unless the process whose pid is the output
// out is gone: what, which should not have outlived until.
func printedGone(t *testing.T, out []byte, what, until string) {
	t.Helper()
	pid, err := strconv.Atoi(string(bytes.TrimSpace(out)))
	if err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if !gone(t, pid) {
		t.Errorf("%s %d outlived %s", what, pid, until)
	}
}
