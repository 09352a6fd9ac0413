package keeper

import (
	"io"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logger logs one line per action, in the daemon's zap console format,
// to w without ever blocking its caller: w is often a pipe read by the
// daemon, and a frozen daemon stops reading it. Lines that find the
// buffer full are dropped, and counted in a warning once w takes lines
// again. When a write to w fails (the daemon is gone), the lines go to
// file instead (see stderrOrFile); file "" keeps them on w.
type logger struct {
	*zap.Logger
	sink *dropSink
	done chan struct{}
}

// logBuffer lines wait for a slow reader before lines are dropped.
const logBuffer = 256

func newLogger(w io.Writer, file, node string) *logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	core := func(ws zapcore.WriteSyncer) *zap.Logger {
		return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), ws, zapcore.InfoLevel)).
			With(zap.String("node", node), zap.Int("keeper", os.Getpid()))
	}
	s := &dropSink{lines: make(chan []byte, logBuffer)}
	l := &logger{Logger: core(s), sink: s, done: make(chan struct{})}
	// The writer goroutine owns out; it is the only one that may block.
	out := &stderrOrFile{w: w, path: file}
	direct := core(zapcore.AddSync(out))
	go func() {
		defer close(l.done)
		for b := range s.lines {
			if n := s.dropped.Swap(0); n > 0 {
				direct.Warn("log lines dropped: the log reader is slow", zap.Int64("dropped", n))
			}
			out.Write(b)
			if out.broke != nil && !out.reported {
				out.reported = true
				direct.Warn("stderr failed: logging to this file from now on", zap.String("file", file), zap.NamedError("stderr", out.broke))
			}
		}
	}()
	return l
}

// dropSink is a zapcore.WriteSyncer that queues each line for the writer
// goroutine, or drops it.
type dropSink struct {
	lines   chan []byte
	dropped atomic.Int64
}

func (s *dropSink) Write(p []byte) (int, error) {
	select {
	case s.lines <- append([]byte(nil), p...):
	default:
		s.dropped.Add(1)
	}
	return len(p), nil
}

func (s *dropSink) Sync() error { return nil }

// close flushes what is buffered, waiting at most wait for a slow reader.
func (l *logger) close(wait time.Duration) {
	close(l.sink.lines)
	select {
	case <-l.done:
	case <-time.After(wait):
	}
}
