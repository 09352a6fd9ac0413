package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/internal/safedir"
)

// ErrDaemonRunning is returned by Listen when another daemon answers.
var ErrDaemonRunning = errors.New("another clinit daemon answers on the socket")

// Listen creates the daemon's UNIX socket, mode 0600. It refuses when a
// daemon already answers there and removes a stale socket file left by
// one that died.
func Listen(path string) (*net.UnixListener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w: %s", ErrDaemonRunning, path)
	}
	// Checked like the state directory: the FIFOs of the services'
	// output live beside the socket.
	if err := safedir.Ensure(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: refusing to remove it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
	}
	// Create it 0600 from the start rather than chmod after: no window in
	// which another user could connect.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	return ln, nil
}

type peerKey struct{}

// peerUID records the uid of the process at the other end of c
// (SO_PEERCRED) in the request context; -1 when it cannot be read.
func peerUID(ctx context.Context, c net.Conn) context.Context {
	uid := -1
	if uc, ok := c.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) {
				if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					uid = int(cred.Uid)
				}
			})
		}
	}
	return context.WithValue(ctx, peerKey{}, uid)
}

// allowed reports whether the peer may talk to us: root, or our own uid.
func allowed(ctx context.Context) (int, bool) {
	uid, ok := ctx.Value(peerKey{}).(int)
	if !ok {
		uid = -1 // not from our listener: unknown, refused
	}
	return uid, uid == 0 || uid == os.Geteuid()
}
