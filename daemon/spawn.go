package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/reaper"
)

// Output capture limits: a chatty child must neither grow the daemon's
// memory nor flood its log. Lines are cut at lineMax bytes; beyond a burst
// of burstLines, at most linesPerSec lines a second are logged (a token
// bucket, x/time/rate's) and the rest are counted as dropped (the child
// is never blocked by us).
const (
	lineMax     = 4096
	burstLines  = 1000
	linesPerSec = 100
)

// spawner starts children through the reaper: own process group, stdin
// from /dev/null, stdout and stderr into the log with their tag, CLINIT_*
// environment.
type spawner struct {
	node string
	log  *zap.Logger
	env  []string
	// keeper is the lease keeper's directory, named in every child's
	// environment; "" when there is none.
	keeper string
	unread []output // children's output not read yet (readOutput)
}

func newSpawner(node string, log *zap.Logger) (*spawner, error) {
	var env []string
	for _, kv := range os.Environ() {
		// Children must not talk to systemd in the daemon's name.
		if strings.HasPrefix(kv, "CLINIT_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, "PWD=") {
			continue
		}
		env = append(env, kv)
	}
	// The PWD sh would export, so that a command started without it has
	// the same environment (direct.go).
	if wd := shellPWD(); wd != "" {
		env = append(env, "PWD="+wd)
	}
	return &spawner{node: node, log: log, env: env}, nil
}

// keeperDir is the directory of the node's keeper, as its children name
// it (CLINIT_KEEPER): the state directory, absolute.
func keeperDir(stateDir string) string {
	if stateDir == "" {
		return ""
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return stateDir
	}
	return abs
}

// exitWrapper runs a command and leaves its exit status in a file, for a
// daemon that was not there to wait for it; exitWrapperWords does the
// same for a command of plain words (direct.go), without a second shell.
const (
	exitWrapper      = `/bin/sh -c "$1"; s=$?; echo $s >"$2"; exit $s`
	exitWrapperWords = `f=$1; shift; "$@"; s=$?; echo $s >"$f"; exit $s`
)

// command is how ent's command starts: the program to execute (path, ""
// for argv[0]) and its arguments. A command of plain words starts
// directly (direct.go); with exitFile set, under a shell that writes its
// exit status there.
func (s *spawner) command(ent *cltab.Entry, exitFile string) (argv []string, path string) {
	words := directWords(ent.Command)
	if exitFile != "" {
		if words != nil {
			return append([]string{"/bin/sh", "-c", exitWrapperWords, "clinit-" + ent.Tag, exitFile}, words...), ""
		}
		return []string{"/bin/sh", "-c", exitWrapper, "clinit-" + ent.Tag, ent.Command, exitFile}, ""
	}
	if words != nil {
		if path := lookPath(words[0], s.env); path != "" {
			return words, path
		}
		// Not found: sh says so, and exits 127.
	}
	return []string{"/bin/sh", "-c", ent.Command}, ""
}

// spawn starts ent's command and returns its pid and its start time
// (clock ticks since boot, as /proc/PID/stat has it). With exitFile set,
// the command's exit status is also written there. onExit is called, on
// the reaper's goroutine, with the exit it collected: it must not block
// for long.
func (s *spawner) spawn(ent *cltab.Entry, level, exitFile, outFifo string, onExit func(*reaper.Exit)) (int, uint64, error) {
	if exitFile != "" {
		if err := os.MkdirAll(filepath.Dir(exitFile), 0o700); err != nil {
			return 0, 0, err
		}
		if err := freshFile(exitFile); err != nil {
			return 0, 0, err
		}
	}
	argv, path := s.command(ent, exitFile)
	r, w, err := outputPipe(outFifo)
	if err != nil {
		return 0, 0, err
	}
	env := append(s.env[:len(s.env):len(s.env)],
		"CLINIT_GROUP="+ent.Group, "CLINIT_TAG="+ent.Tag, "CLINIT_LEVEL="+level, "CLINIT_NODE="+s.node)
	if s.keeper != "" {
		// The lease keeper (package keeper) finds a child it was not
		// told of by these: node, group, and its own directory.
		env = append(env, "CLINIT_KEEPER="+s.keeper)
	}
	var ticks uint64
	attrs := reaper.Attrs{Path: path, Env: env, Stdout: w, Stderr: w, StartTicks: &ticks,
		OnExit: func(x reaper.Exit) { onExit(&x) }}
	pid, _, err := reaper.Start(argv, attrs)
	if err != nil && path != "" {
		// Not executable after all (a script without #!, for one):
		// sh does what it does with it.
		attrs.Path = ""
		pid, _, err = reaper.Start([]string{"/bin/sh", "-c", ent.Command}, attrs)
	}
	w.Close()
	if err != nil {
		r.Close()
		return 0, 0, err
	}
	if ticks == 0 {
		ticks, _, _ = procStart(pid)
	}
	s.unread = append(s.unread, output{r, outFifo, childLog{s.log, ent.Group, ent.Tag, pid}})
	return pid, ticks, nil
}

// output is a child's output, to be read.
type output struct {
	r    *os.File
	fifo string
	log  childLog
}

// readOutput starts a reader for each child spawned since the last call.
// Started at each spawn, a reader woke an idle thread only to park at
// once on its empty pipe: 1,000 of them, when 1,000 entries start. Now
// they start together once the engine is done with its batch (a FIFO
// holds 64 KiB meanwhile).
func (s *spawner) readOutput() {
	for i, o := range s.unread {
		go s.capture(o.r, o.fifo, o.log)
		s.unread[i] = output{}
	}
	s.unread = s.unread[:0]
}

// outputPipe makes the pipe for a child's stdout and stderr. Without a
// FIFO path it is an ordinary pipe, and the child's writes fail with
// SIGPIPE if the daemon dies. With one, it is a FIFO that the child holds
// open for reading and writing: being a reader itself, it never gets
// SIGPIPE (its writes wait once 64 KiB are buffered), and a daemon that
// starts again reopens the FIFO by its path and goes on reading.
func outputPipe(fifo string) (r, w *os.File, err error) {
	if fifo == "" {
		return os.Pipe()
	}
	// A FIFO of the same name can only be a leftover of a run this
	// daemon does not know (its predecessor died before saving it): it
	// is removed when it is there. The directory is made when the FIFO
	// cannot be for want of it. So a start costs one system call here
	// in the common case, no stat or unlink.
	err = unix.Mkfifo(fifo, 0o600)
	if err == unix.EEXIST {
		if err := unix.Unlink(fifo); err != nil && err != unix.ENOENT {
			return nil, nil, &os.PathError{Op: "remove", Path: fifo, Err: err}
		}
		err = unix.Mkfifo(fifo, 0o600)
	}
	if err == unix.ENOENT {
		if err = os.MkdirAll(filepath.Dir(fifo), 0o700); err == nil {
			err = unix.Mkfifo(fifo, 0o600)
		}
	}
	if err != nil {
		return nil, nil, &os.PathError{Op: "mkfifo", Path: fifo, Err: err}
	}
	if r, err = openFifo(fifo); err != nil {
		os.Remove(fifo)
		return nil, nil, err
	}
	// Opened with a raw open so that the runtime does not make it
	// non-blocking: the child gets a blocking stdout.
	fd, err := unix.Open(fifo, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		r.Close()
		os.Remove(fifo)
		return nil, nil, err
	}
	return r, os.NewFile(uintptr(fd), fifo), nil
}

// openFifo opens a child's output FIFO for reading, through the poller.
func openFifo(fifo string) (*os.File, error) {
	return os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
}

// childLog is the logger of a child's output, made when it first has
// something to say: most children say nothing, and a logger with fields
// of its own costs allocations at every start.
type childLog struct {
	base       *zap.Logger
	group, tag string
	pid        int
}

func (c childLog) logger() *zap.Logger {
	return c.base.With(zap.String("group", c.group), zap.String("tag", c.tag), zap.Int("pid", c.pid))
}

// capture logs a child's output line by line until every holder of the
// pipe has closed it, then removes its FIFO if it has one. Memory is
// bounded by the reader's buffer.
func (s *spawner) capture(r *os.File, fifo string, cl childLog) {
	var log *zap.Logger
	logger := func() *zap.Logger {
		if log == nil {
			log = cl.logger()
		}
		return log
	}
	defer r.Close()
	if fifo != "" {
		defer os.Remove(fifo)
	}
	br := bufio.NewReaderSize(r, lineMax)
	lim := rate.NewLimiter(linesPerSec, burstLines)
	var dropped int        // lines dropped since the last report
	var reported time.Time // when dropped lines were last reported
	skipping := false      // inside a line already cut
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			cut := errors.Is(err, bufio.ErrBufferFull)
			// A dropped line costs no copy: under a flood, most are.
			now := time.Now()
			switch {
			case skipping:
			case lim.AllowN(now, 1):
				text := string(bytes.TrimRight(line, "\r\n"))
				if cut {
					text += " [line cut]"
				}
				// The count of what was dropped comes at most once a
				// second, so as not to double a flood's share of the log.
				if dropped > 0 && now.Sub(reported) >= time.Second {
					logger().Warn("output lines dropped", zap.Int("lines", dropped))
					dropped, reported = 0, now
				}
				logger().Info(text)
			default:
				dropped++
			}
			skipping = cut
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if dropped > 0 {
				logger().Warn("output lines dropped", zap.Int("lines", dropped))
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				logger().Debug("output", zap.Error(err))
			}
			return
		}
	}
}

// RunCommand runs a command of the daemon's own (not a cltab entry: the
// fencing command) to its end, with the children's environment, and
// returns its output; ctx ending kills it with its process group.
func (e *Engine) RunCommand(ctx context.Context, argv []string) ([]byte, error) {
	return reaper.Output(ctx, argv, reaper.Attrs{Env: e.kids.env})
}
