package daemon

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/internal/safedir"
)

// encoderConfig is the form of every log line: zap's production keys,
// ISO 8601 times.
func encoderConfig() zapcore.EncoderConfig {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return enc
}

// NewLogger logs in zap's console format to stderr and, when path is set,
// appends the same to that file. When stderr is systemd's journal stream
// (JOURNAL_STREAM), what would go to stderr goes to the journal instead,
// with priorities and fields (journal.go); the file is written as
// elsewhere.
func NewLogger(path string, debug bool) (*zap.Logger, error) {
	level := zapcore.InfoLevel
	if debug {
		level = zapcore.DebugLevel
	}
	console := zapcore.NewConsoleEncoder(encoderConfig())
	stderr, note := stderrCore(level, console)
	cores := []zapcore.Core{stderr}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		// Never through a symlink, nor into a file of another user's or
		// a hard link: either would have root append to a file it names.
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW, 0o640)
		if err != nil {
			return nil, err
		}
		if err := safedir.CheckFile(f); err != nil {
			f.Close()
			return nil, err
		}
		cores = append(cores, zapcore.NewCore(console, zapcore.Lock(f), level))
	}
	log := zap.New(zapcore.NewTee(cores...))
	if note != "" {
		log.Warn(note)
	}
	return log, nil
}

// stderrCore is where stderr's entries go: the journal under systemd, the
// `<N>` form on stderr when its socket does not answer, else stderr as
// is. note, if not empty, is a warning for the log.
func stderrCore(level zapcore.LevelEnabler, console zapcore.Encoder) (core zapcore.Core, note string) {
	plain := zapcore.NewCore(console, zapcore.Lock(os.Stderr), level)
	under, err := underJournal()
	switch {
	case err != nil:
		return plain, fmt.Sprintf("JOURNAL_STREAM ignored: %v", err)
	case !under:
		return plain, ""
	case !journal.Enabled():
		return newPrefixCore(level, os.Stderr), "the journal's socket does not answer: logging to stderr with <N> priority prefixes"
	}
	return newJournalCore(level, journal.Send, os.Stderr), ""
}
