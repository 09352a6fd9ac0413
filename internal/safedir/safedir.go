// Package safedir checks that a directory the daemon writes in as root
// cannot be tampered with by another user, the way sshd's StrictModes
// checks a user's files: a user who can write in it (or replace it, or
// a symlink on the way to it) can plant symlinks there, and root then
// writes and reads through them (a service's exit status into a
// root-only file, a root-only file's content into the log).
package safedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Ensure creates dir if missing (with its missing parents, mode perm)
// and checks it with Check.
func Ensure(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	return Check(dir)
}

// Check refuses dir unless it is a directory owned by this user or root
// that neither group nor others may write, and every directory above it
// is owned by this user or root and either not writable by group or
// others or sticky (like /tmp: others may not remove or rename what is
// ours there). Symlinks on the way are followed, and must be owned by
// this user or root, as the directories they lead to must.
func Check(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := owned(real, fi); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is mode %04o: others may write in it and plant symlinks that root would follow; chmod go-w %s", dir, fi.Mode().Perm(), real)
	}
	// What leads to it, as given (its symlinks) and as resolved.
	for _, p := range []string{abs, real} {
		if err := checkAbove(dir, p); err != nil {
			return err
		}
	}
	return nil
}

// checkAbove checks every directory above p, and every symlink on the
// way to it.
func checkAbove(dir, p string) error {
	for q := p; ; {
		if li, err := os.Lstat(q); err == nil && li.Mode()&os.ModeSymlink != 0 {
			if err := owned(q, li); err != nil {
				return fmt.Errorf("%s: on the way, %w", dir, err)
			}
		}
		up := filepath.Dir(q)
		if up == q {
			return nil
		}
		q = up
		fi, err := os.Stat(q)
		if err != nil {
			return err
		}
		if err := owned(q, fi); err != nil {
			return fmt.Errorf("%s: above it, %w", dir, err)
		}
		if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("%s is in %s, which is mode %04o: others may replace what is in it; use a directory only root (or this user) may write", dir, q, fi.Mode().Perm())
		}
	}
}

// owned refuses what belongs to another user than this one or root.
func owned(p string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("cannot read the owner of " + p)
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, neither root nor this user (uid %d): refusing it", p, st.Uid, os.Geteuid())
	}
	return nil
}

// CheckFile refuses an open file that a log or state file must not be:
// anything but a regular file of this user or root with one link (a
// hard link to a root-only file would be appended to).
func CheckFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	if err := owned(f.Name(), fi); err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return fmt.Errorf("%s has %d hard links: refusing to write to it", f.Name(), st.Nlink)
	}
	return nil
}
