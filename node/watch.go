package node

import (
	"bytes"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/clinit/clinit/internal/coalesce"
)

// settle is how long the cltab must stay quiet after a change before it
// is reread: editors write, truncate and rename in bursts.
const settle = 150 * time.Millisecond

// watchFile calls changed whenever path's content changes on disk to
// something not empty. It
// watches the directory, not the file, so an editor that replaces the file
// by a rename is seen too. It runs until stop is closed.
func watchFile(path string, log *zap.Logger, stop <-chan struct{}, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		w.Close()
		return err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return err
	}
	last, _ := os.ReadFile(abs)
	reread := func() {
		now, err := os.ReadFile(abs)
		if err != nil || bytes.Equal(now, last) {
			return // gone for a moment, or touched without change
		}
		if len(now) == 0 {
			// Most likely a writer that truncated the file and has not
			// written it yet; applied (and replicated) it would stop
			// everything everywhere. An explicit reread still applies it.
			log.Warn("file is empty: ignored until it has content (a comment line is enough)", zap.String("path", abs))
			return
		}
		last = now
		changed()
	}
	// The goroutine below owns settled, last and the watcher.
	settled := coalesce.New(coalesce.Wall, coalesce.Config{Quiet: settle, Flush: reread})
	go func() {
		defer w.Close()
		defer settled.Stop()
		for {
			select {
			case <-stop:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) != abs {
					continue
				}
				settled.Mark()
				settled.Poll()
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("watching cltab", zap.Error(err))
			case <-settled.C():
				settled.Poll()
			}
		}
	}()
	return nil
}
