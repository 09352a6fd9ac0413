package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/internal/safedir"
)

// logFile is the --log file, reopened by its path on SIGHUP: logrotate
// renames the file and signals, and the lines after that go to a new file
// of the old name. Every write goes whole to one file or the other.
type logFile struct {
	path string
	mu   sync.Mutex // guards f; held for each write and for the swap
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, f: f}, nil
}

// openLog opens path for appending, creating it (and its directory).
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// Never through a symlink, nor into a file of another user's or a
	// hard link: either would have root append to a file it names.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, err
	}
	if err := safedir.CheckFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func (l *logFile) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Sync()
}

// reopen opens the path again and writes there from now on. If it cannot,
// the daemon keeps writing to the file it has, and says why.
func (l *logFile) reopen() error {
	f, err := openLog(l.path)
	if err != nil {
		return fmt.Errorf("reopening the log file %s (still writing to the one open): %w", l.path, err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}
