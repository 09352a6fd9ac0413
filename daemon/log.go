package daemon

import (
	"fmt"
	"os"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// encoderConfig is the form of every log line: zap's production keys,
// ISO 8601 times.
func encoderConfig() zapcore.EncoderConfig {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return enc
}

// Logger is the daemon's log: a zap logger, and the --log file it may
// reopen.
type Logger struct {
	*zap.Logger
	file *logFile // nil without --log
}

// NewLogger logs in zap's console format to stderr and, when path is set,
// appends the same to that file. When stderr is systemd's journal stream
// (JOURNAL_STREAM), what would go to stderr goes to the journal instead,
// with priorities and fields (journal.go); the file is written as
// elsewhere.
func NewLogger(path string, debug bool) (*Logger, error) {
	level := zapcore.InfoLevel
	if debug {
		level = zapcore.DebugLevel
	}
	console := zapcore.NewConsoleEncoder(encoderConfig())
	stderr, note := stderrCore(level, console)
	cores := []zapcore.Core{stderr}
	var file *logFile
	if path != "" {
		var err error
		if file, err = openLogFile(path); err != nil {
			return nil, err
		}
		cores = append(cores, zapcore.NewCore(console, file, level))
	}
	log := &Logger{Logger: zap.New(zapcore.NewTee(cores...)), file: file}
	if note != "" {
		log.Warn(note)
	}
	return log, nil
}

// Reopen opens the --log file again by its path (on SIGHUP, after
// logrotate renamed it); without --log it does nothing.
func (l *Logger) Reopen() error {
	if l.file == nil {
		return nil
	}
	if err := l.file.reopen(); err != nil {
		return err
	}
	l.Info("log file reopened", zap.String("path", l.file.path))
	return nil
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
