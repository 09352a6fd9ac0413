package reaper

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// Exit is how a child ended, as the reaper collected it.
type Exit struct {
	Pid    int
	Status unix.WaitStatus
}

// Code is the exit status, or -1 when a signal ended the child.
func (x Exit) Code() int {
	if x.Status.Signaled() {
		return -1
	}
	return x.Status.ExitStatus()
}

// Success reports an exit with status 0.
func (x Exit) Success() bool { return x.Status.Exited() && x.Status.ExitStatus() == 0 }

func (x Exit) String() string {
	if x.Status.Signaled() {
		return "signal: " + x.Status.Signal().String()
	}
	return "exit status " + strconv.Itoa(x.Status.ExitStatus())
}

// Err is nil for a successful exit, else an *ExitError.
func (x Exit) Err() error {
	if x.Success() {
		return nil
	}
	return &ExitError{x}
}

// ExitError is a child that failed or was killed.
type ExitError struct{ Exit }

func (e *ExitError) Error() string { return e.Exit.String() }
