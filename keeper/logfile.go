package keeper

import (
	"io"
	"os"
)

// LogName is the file in the keeper's directory its log goes to once
// stderr fails: stderr is a pipe to the daemon that started the keeper,
// and when that daemon is gone the keeper's lines, a lapse's among them,
// would go nowhere.
const LogName = "keeper.log"

// maxLogFile bounds LogName; when full it becomes LogName.1 and a new
// one starts.
const maxLogFile = 1 << 20

// stderrOrFile writes to w until a write to it fails, then to the file
// path for good. Only the logger's writer goroutine uses it.
type stderrOrFile struct {
	w        io.Writer
	path     string
	f        *os.File
	size     int64
	broke    error // the error that ended stderr
	reported bool  // the switch has been logged
}

func (s *stderrOrFile) Write(p []byte) (int, error) {
	if s.f == nil {
		_, err := s.w.Write(p)
		if err == nil || s.path == "" {
			return len(p), err
		}
		if err := s.open(); err != nil {
			return 0, err
		}
		s.broke = err
	}
	if s.size+int64(len(p)) > maxLogFile {
		s.f.Close()
		os.Rename(s.path, s.path+".1")
		if err := s.open(); err != nil {
			return 0, err
		}
	}
	n, err := s.f.Write(p)
	s.size += int64(n)
	return n, err
}

func (s *stderrOrFile) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		s.f = nil
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		s.f = nil
		return err
	}
	s.f, s.size = f, fi.Size()
	return nil
}
