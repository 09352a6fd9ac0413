package daemon

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// freshFile replaces whatever is at path (a leftover of an earlier run)
// by a new empty file of ours, mode 0600, made with O_EXCL|O_NOFOLLOW:
// what a child's wrapper writes there then lands in that file, never
// through a symlink someone left in its place.
func freshFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}
