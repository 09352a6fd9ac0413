package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ClientTimeout bounds one client run: long enough for -k to stop a
// daemon's groups, short enough to end a hung test.
const ClientTimeout = 60 * time.Second

// Result is what one client run printed and its exit status; Err is set
// only when it could not run or hung.
type Result struct {
	Stdout, Stderr string
	Code           int
	Err            error
}

func (r Result) String() string {
	return fmt.Sprintf("status %d, err %v, stdout %q, stderr %q", r.Code, r.Err, r.Stdout, r.Stderr)
}

// Clinit runs the binary bin with args as a client, bounded by
// ClientTimeout.
func Clinit(bin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), ClientTimeout)
	defer cancel()
	return Run(ctx, exec.CommandContext(ctx, bin, args...))
}

// Run runs a client command made with exec.CommandContext(ctx, ...) (its
// Stdout and Stderr are set here) and reads its result.
func Run(ctx context.Context, cmd *exec.Cmd) Result {
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := Result{Stdout: o.String(), Stderr: e.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.Code, r.Err = -1, fmt.Errorf("%q hung: %w", cmd.Args, ctx.Err())
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		r.Code, r.Err = -1, err
	}
	return r
}

// ListenUnix listens on a socket in a directory of the test's own, as a
// daemon stand-in would; the listener is closed when the test ends.
func ListenUnix(t testing.TB) (sock string, ln net.Listener) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return sock, ln
}
