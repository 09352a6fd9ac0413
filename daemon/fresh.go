package daemon

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"syscall"

	"github.com/clinit/clinit/cltab"
)

// stamp tells one version of a file from another without reading it: an
// edit in place changes its mtime and ctime (and mostly its size), a
// rename over it its inode. The zero stamp is no file.
type stamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

// stampOf stamps the file at path, following symlinks.
func stampOf(path string) stamp {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return stamp{}
	}
	return stamp{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

// tabFile is what the engine knows of its cltab on disk. Its lock is held
// by every reread from its stat to the end of the reconcile, so rereads
// apply in the order they read the file, and a staleness check waits for
// a reread under way. Any goroutine.
type tabFile struct {
	mu    sync.Mutex
	stamp stamp // of the file as last read valid; zero: not read yet
}

// Stale reports whether the cltab on disk may not be the one in use.
func (e *Engine) Stale() bool {
	e.onDisk.mu.Lock()
	defer e.onDisk.mu.Unlock()
	s := stampOf(e.cfg.CltabPath)
	return s == stamp{} || s != e.onDisk.stamp
}

// Fresh makes sure a request that depends on the cltab acts on the file
// as it is on disk now (Cluster::Init reads it at every tell): when it
// changed since eng last read it, reread rereads it first, as the watcher
// would do a moment later. It answers the request itself and returns
// false when the file on disk is invalid or cannot be reread.
func Fresh(w http.ResponseWriter, r *http.Request, eng *Engine, reread func(context.Context) ([]string, error)) bool {
	if !eng.Stale() {
		return true
	}
	_, err := reread(r.Context())
	var invalid cltab.Errors
	switch {
	case errors.As(err, &invalid):
		WriteError(w, http.StatusUnprocessableEntity, "the cltab on disk is invalid, nothing done: fix it first", invalid.Lines())
		return false
	case err != nil:
		WriteError(w, http.StatusServiceUnavailable, "rereading the changed cltab: "+err.Error(), nil)
		return false
	}
	return true
}
