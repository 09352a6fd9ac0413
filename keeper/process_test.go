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

// The keeper as a process: when it exits, whom it refuses, where its log
// goes.

// A keeper that holds nothing exits after the idle period without a
// daemon, and removes its socket; one that holds a group does not, even
// without a daemon.
func TestIdleExit(t *testing.T) {
	const idle = 300 * time.Millisecond
	k, c, ctx := keeperHoldingWeb(t, time.Second, "--idle", idle.String())
	c.Close()
	// Holding, and no daemon: it must stay (time is all there is to
	// wait for).
	select {
	case err := <-k.exit:
		t.Fatalf("the keeper exited while holding a group: %v", err)
	case <-time.After(3 * idle):
	}
	c, err := Dial(k.dir)
	must(t, err)
	must(t, c.Release(ctx, "web"))
	start := time.Now()
	c.Close()
	k.waitExit(t, idle+bound, "idle keeper")
	if d := time.Since(start); d < idle {
		t.Errorf("exited %s after the daemon left, before the idle period %s", d, idle)
	}
	if _, err := os.Stat(filepath.Join(k.dir, SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if !strings.Contains(k.log.String(), "\texit\t") {
		t.Errorf("no exit line in the log:\n%s", k.log)
	}
}

// Exit is obeyed once nothing is held.
func TestExitRequest(t *testing.T) {
	k, c := startKeeper(t, "n1")
	must(t, c.Exit(ctxT(t)))
	k.waitExit(t, bound, "keeper asked to exit")
}

// runKeeper runs a keeper on dir to its end and returns its status and
// stderr.
func runKeeper(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// A keeper refuses a directory others can write to, a second keeper on
// one directory, and bad flags, each with a message saying why.
func TestKeeperRefuses(t *testing.T) {
	k, _ := startKeeper(t, "n1")
	open := filepath.Join(t.TempDir(), "open")
	must(t, os.Mkdir(open, 0o700))
	must(t, os.Chmod(open, 0o777))
	owned := filepath.Join(t.TempDir(), "owned")
	must(t, os.Mkdir(owned, 0o700))
	must(t, os.Chown(owned, 65534, 65534))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--keeper", k.dir, "--node", "n1"}, 1, "another keeper runs for"},
		{[]string{"--keeper", open, "--node", "n1"}, 1, "writable by others"},
		{[]string{"--keeper", owned, "--node", "n1"}, 1, "owned by uid 65534"},
		{[]string{"--keeper", "/tmp/" + strings.Repeat("d", 100), "--node", "n1"}, 1, "too long for a UNIX socket"},
		{[]string{"--keeper", k.dir}, 2, "--node missing"},
		{[]string{"--keeper", k.dir, "--node", "a b"}, 2, "bad character"},
		{[]string{"--keeper", k.dir, "--node", "n1", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--keeper", k.dir, "--node", "n1", "--idle", "0s"}, 2, "must be positive"},
	} {
		code, stderr := runKeeper(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: status %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// A peer that is neither root nor our uid is refused by SO_PEERCRED,
// even when the socket's mode would let it connect.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to connect as another uid")
	}
	k, c := startKeeper(t, "n1")
	sock := filepath.Join(k.dir, SocketName)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v, want 0600", fi.Mode(), err)
	}
	// Open the way for uid 65534, to reach the SO_PEERCRED check.
	must(t, os.Chmod(sock, 0o666))
	for d := k.dir; d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	// The test binary, copied where uid 65534 may run it, dials.
	bin := filepath.Join(k.dir, "dialer")
	data, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{dialEnv + "=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python as uid 65534: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "closed" {
		t.Errorf("uid 65534 got %s, want the connection closed without a word", out)
	}
	if !strings.Contains(k.log.String(), `"uid": 65534`) {
		t.Errorf("no refusal in the log:\n%s", k.log)
	}
	// The refused peer did not replace the daemon's connection.
	if _, err := c.State(ctxT(t)); err != nil {
		t.Errorf("the daemon's connection after a refused peer: %v", err)
	}
}

// A keeper whose daemon went away for good, holding a group, exits once
// the lease has lapsed and its SIGKILL round has run: nothing is left to
// enforce, and a keeper living for ever would outlive every test bed and
// demo.
func TestIdleExitAfterLapse(t *testing.T) {
	const idle = 300 * time.Millisecond
	k, c, ctx := keeperHoldingWeb(t, 100*time.Millisecond, "--idle", idle.String())
	must(t, c.Lease(ctx, BoottimeNow()+int64(200*time.Millisecond), 100*time.Millisecond))
	c.Close()
	// Its lapse, its SIGKILL round and the idle period.
	k.waitExit(t, 200*time.Millisecond+100*time.Millisecond+idle+bound, "keeper after the lapse")
}

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
