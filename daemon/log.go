package daemon

import (
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/internal/safedir"
)

// NewLogger logs in zap's console format to stderr and, when path is set,
// appends the same to that file.
func NewLogger(path string, debug bool) (*zap.Logger, error) {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	level := zapcore.InfoLevel
	if debug {
		level = zapcore.DebugLevel
	}
	sinks := []zapcore.WriteSyncer{zapcore.Lock(os.Stderr)}
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
		sinks = append(sinks, zapcore.Lock(f))
	}
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.NewMultiWriteSyncer(sinks...), level)
	return zap.New(core), nil
}
