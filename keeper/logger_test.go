package keeper

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The keeper's stderr is a pipe its reader has stopped reading (a frozen
// daemon's): the keeper goes on answering and enforcing, dropping log
// lines instead of blocking on them.
func TestStuckLogReader(t *testing.T) {
	dir := keeperDir(t)
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	var cmd *exec.Cmd
	exited := make(chan struct{})
	ctx := ctxT(t)
	c, _, err := Ensure(ctx, dir, "n1", func(argv []string) error {
		cmd = exec.Command(argv[0], argv[1:]...)
		cmd.Stderr = w // the file itself: no goroutine of ours reads it
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { cmd.Wait(); close(exited) }()
		return nil
	})
	w.Close()
	must(t, err)
	t.Cleanup(func() { c.Close(); cmd.Process.Kill(); <-exited })
	deadline := BoottimeNow() + int64(time.Hour)
	must(t, c.Lease(ctx, deadline, time.Second))
	must(t, c.Hold(ctx, "web"))
	a := sleeper(t, "n1", "web")
	// Each watch and unwatch logs a line: far more than a pipe holds.
	start := time.Now()
	for i := range 3000 {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		if err := c.Watch(ctx, "web", a.pid, a.start); err != nil {
			t.Fatalf("watch %d: %v", i, err)
		}
		if err := c.Unwatch(ctx, a.pid); err != nil {
			t.Fatalf("unwatch %d: %v", i, err)
		}
		cancel()
	}
	t.Logf("6000 logged requests in %s", time.Since(start))
	ctx = ctxT(t)
	must(t, c.Watch(ctx, "web", a.pid, a.start))
	now := BoottimeNow()
	must(t, c.Lease(ctx, now, time.Second))
	if e := a.waitExit(t, bound); e.signal != syscall.SIGTERM {
		t.Errorf("with a stuck log reader: %v, want SIGTERM", e.signal)
	}
	st, err := c.State(ctx)
	must(t, err)
	if st.Lapses != 1 || len(st.Last.Termed) != 1 {
		t.Errorf("state after the lapse: %+v", st)
	}
	// Read again, the log says how much it dropped, at the first line
	// that gets through: log lines are made (a lease already past logs
	// one) until one does.
	var log bytes.Buffer
	buf := make([]byte, 64<<10)
	r.SetReadDeadline(time.Now().Add(bound))
	for !strings.Contains(log.String(), "log lines dropped") {
		n, err := r.Read(buf)
		log.Write(buf[:n])
		if err != nil {
			t.Fatalf("reading the keeper's log: %v; got %d bytes, ending %q", err, log.Len(), log.String()[max(0, log.Len()-400):])
		}
		must(t, c.Lease(ctx, BoottimeNow()-1, time.Second))
	}
}

// Once stderr is a broken pipe, lines go to the file, which is rotated
// at its cap.
func TestLogFileAfterStderrFails(t *testing.T) {
	r, w, err := os.Pipe()
	must(t, err)
	r.Close() // the reader is gone: writes fail with EPIPE
	defer w.Close()
	path := filepath.Join(t.TempDir(), LogName)
	s := &stderrOrFile{w: w, path: path}
	line := []byte(strings.Repeat("x", 999) + "\n")
	for range maxLogFile/len(line) + 10 {
		if _, err := s.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if !errors.Is(s.broke, syscall.EPIPE) {
		t.Errorf("broke = %v, want EPIPE", s.broke)
	}
	old, err1 := os.Stat(path + ".1")
	cur, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || old.Size() > maxLogFile || cur.Size() != 10*int64(len(line)) {
		t.Errorf("after %d bytes: %s.1 %v %v, %s %v %v", maxLogFile+10*len(line), path, old, err1, path, cur, err2)
	}
}
