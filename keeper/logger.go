package keeper

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// logger writes one line per action to w without ever blocking its
// caller: w is often a pipe read by the daemon, and a frozen daemon
// stops reading it. Lines that find the buffer full are dropped, and
// counted in the next line that gets through.
type logger struct {
	lines   chan string
	dropped atomic.Int64
	done    chan struct{}
	node    string
}

// logBuffer lines wait for a slow reader before lines are dropped.
const logBuffer = 256

func newLogger(w io.Writer, node string) *logger {
	l := &logger{lines: make(chan string, logBuffer), done: make(chan struct{})}
	// The writer goroutine owns w; it is the only one that may block.
	go func() {
		defer close(l.done)
		for s := range l.lines {
			io.WriteString(w, s)
		}
	}()
	l.node = node
	return l
}

// printf logs one line: time, "keeper", node, then the message, in the
// key=value form of the daemon's console log.
func (l *logger) printf(format string, args ...any) {
	var b strings.Builder
	b.WriteString(time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteString(" keeper node=")
	b.WriteString(l.node)
	b.WriteByte(' ')
	fmt.Fprintf(&b, format, args...)
	n := l.dropped.Swap(0)
	if n > 0 {
		fmt.Fprintf(&b, " (%d earlier lines dropped: the log reader is slow)", n)
	}
	b.WriteByte('\n')
	select {
	case l.lines <- b.String():
	default:
		l.dropped.Add(n + 1)
	}
}

// close flushes what is buffered, waiting at most wait for a slow reader.
func (l *logger) close(wait time.Duration) {
	close(l.lines)
	select {
	case <-l.done:
	case <-time.After(wait):
	}
}
