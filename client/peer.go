package client

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ErrUntrusted is matched by the error of a call refused because the
// process answering on the socket is not root nor the client's own user.
var ErrUntrusted = errors.New("untrusted process on the socket")

// checkPeer refuses a connection whose other end (the process that
// listens on the socket, SO_PEERCRED) is neither root nor this user:
// anyone who could bind the socket path first (a stale directory that
// another user can write, a daemon that never started) would otherwise
// be told every request, and its answers shown as the daemon's.
func checkPeer(c net.Conn, socket string, trust int) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("%w: %s is not a UNIX socket", ErrUntrusted, socket)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	cerr := raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("%w: cannot read who answers on %s: %v", ErrUntrusted, socket, err)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() && (trust < 0 || int(cred.Uid) != trust) {
		return fmt.Errorf("%w: the process answering on %s (pid %d) runs as uid %d, neither root nor you: not sending it anything", ErrUntrusted, socket, cred.Pid, cred.Uid)
	}
	return nil
}
