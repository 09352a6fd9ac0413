package keeper

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// SocketName is the keeper's socket in its directory.
const SocketName = "keeper.s"

// lockName is held locked by the running keeper, so that two keepers
// started at once for one directory cannot both listen.
const lockName = "keeper.lock"

// maxSocketPath is the longest path a sockaddr_un holds, with its NUL.
const maxSocketPath = 107

// checkDir refuses a directory that others could put a socket or lock
// into: it must be ours (or root's) and writable by nobody else.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, not by us (uid %d)", dir, st.Uid, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by others (mode %#o): chmod go-w it", dir, fi.Mode().Perm())
	}
	return nil
}

// listen takes dir's lock and listens on dir/keeper.s, mode 0600. The
// lock stays held, by the returned file, for the keeper's life.
func listen(dir string) (*net.UnixListener, *os.File, error) {
	path := filepath.Join(dir, SocketName)
	if len(path) > maxSocketPath {
		return nil, nil, fmt.Errorf("socket path %s is %d bytes, too long for a UNIX socket (at most %d): use a shorter DIR", path, len(path), maxSocketPath)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("another keeper runs for %s", dir)
		}
		return nil, nil, fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	// Holding the lock, a socket file left here is a dead keeper's.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		lock.Close()
		return nil, nil, err
	}
	// The umask makes the socket 0600 from its creation on, not from a
	// chmod a moment later.
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	ln.SetUnlinkOnClose(true)
	return ln, lock, nil
}

// peerAllowed reports whether the process at the other end of c runs as
// our uid or as root (SO_PEERCRED).
func peerAllowed(c *net.UnixConn) (uid uint32, ok bool, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, false, err
	}
	if cerr != nil {
		return 0, false, cerr
	}
	return cred.Uid, cred.Uid == 0 || int(cred.Uid) == os.Geteuid(), nil
}
