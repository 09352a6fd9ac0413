// Package atomicfile replaces files so that readers see the old content or
// the new, never a mix: write a temporary file beside it, sync, rename.
//
// It is kept rather than github.com/google/renameio/v2, which does the
// same write, sync and rename but always syncs: the status files (clstat,
// hastat) are rewritten at every state change of a group and need no
// sync (WriteStatus below), and renameio has no way to skip it.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, creating the directory if needed, and
// syncs it before the rename: after a crash, path holds the old data or
// the new.
func Write(path string, data []byte, mode os.FileMode) error {
	return write(path, data, mode, true)
}

// WriteStatus is Write without the sync, for status files that the
// daemon writes anew from memory whenever it starts (clstat, hastat):
// readers still never see a mix, and a crash costs nothing that the
// restart does not write again, while a sync per change costs a disk
// flush each time a group changes state.
func WriteStatus(path string, data []byte, mode os.FileMode) error {
	return write(path, data, mode, false)
}

func write(path string, data []byte, mode os.FileMode, sync bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
