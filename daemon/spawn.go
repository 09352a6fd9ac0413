package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
)

// Output capture limits: a chatty child must neither grow the daemon's
// memory nor flood its log. Lines are cut at lineMax bytes; beyond a burst
// of burstLines, at most linesPerSec lines a second are logged and the
// rest are counted as dropped (the child is never blocked by us).
const (
	lineMax     = 4096
	burstLines  = 1000
	linesPerSec = 100
)

// spawner starts children: own process group, stdin from /dev/null,
// stdout and stderr into the log with their tag, CLINIT_* environment.
type spawner struct {
	node    string
	log     *zap.Logger
	devnull *os.File
	env     []string
	reaper  *reaper
}

func newSpawner(node string, log *zap.Logger) (*spawner, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		// Children must not talk to systemd in the daemon's name.
		if strings.HasPrefix(kv, "CLINIT_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			continue
		}
		env = append(env, kv)
	}
	return &spawner{node: node, log: log, devnull: devnull, env: env, reaper: newReaper()}, nil
}

func (s *spawner) close() { s.devnull.Close() }

// spawn starts ent's command and returns its pid. onExit is called from
// the child's own Wait goroutine when it ends.
func (s *spawner) spawn(ent *cltab.Entry, level string, onExit func(*os.ProcessState)) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	env := append(s.env[:len(s.env):len(s.env)],
		"CLINIT_GROUP="+ent.Group, "CLINIT_TAG="+ent.Tag, "CLINIT_LEVEL="+level, "CLINIT_NODE="+s.node)
	var child *os.Process
	pid, err := s.reaper.spawn(func() (int, error) {
		var err error
		child, err = os.StartProcess("/bin/sh", []string{"/bin/sh", "-c", ent.Command}, &os.ProcAttr{
			Env:   env,
			Files: []*os.File{s.devnull, w, w},
			Sys:   &syscall.SysProcAttr{Setpgid: true},
		})
		if err != nil {
			return 0, err
		}
		return child.Pid, nil
	})
	w.Close()
	if err != nil {
		r.Close()
		return 0, err
	}
	go s.capture(r, s.log.With(zap.String("group", ent.Group), zap.String("tag", ent.Tag), zap.Int("pid", pid)))
	// One Wait goroutine per child: the exit is an event, never polled.
	go func() {
		ps, _ := child.Wait()
		s.reaper.waited(pid)
		onExit(ps)
	}()
	return pid, nil
}

// capture logs a child's output line by line until every holder of the
// pipe has closed it. Memory is bounded by the reader's buffer.
func (s *spawner) capture(r *os.File, log *zap.Logger) {
	defer r.Close()
	br := bufio.NewReaderSize(r, lineMax)
	lim := limiter{tokens: burstLines, last: time.Now()}
	skipping := false // inside a line already cut
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			cut := errors.Is(err, bufio.ErrBufferFull)
			if !skipping {
				text := string(bytes.TrimRight(line, "\r\n"))
				if cut {
					text += " [line cut]"
				}
				if lim.allow(time.Now()) {
					if lim.dropped > 0 {
						log.Warn("output lines dropped", zap.Int("lines", lim.dropped))
						lim.dropped = 0
					}
					log.Info(text)
				}
			}
			skipping = cut
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if lim.dropped > 0 {
				log.Warn("output lines dropped", zap.Int("lines", lim.dropped))
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				log.Debug("output", zap.Error(err))
			}
			return
		}
	}
}

// limiter is a token bucket of lines.
type limiter struct {
	tokens  float64
	last    time.Time
	dropped int
}

func (l *limiter) allow(now time.Time) bool {
	l.tokens += now.Sub(l.last).Seconds() * linesPerSec
	if l.tokens > burstLines {
		l.tokens = burstLines
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true
	}
	l.dropped++
	return false
}
