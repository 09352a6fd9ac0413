package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clinit/clinit/internal/testkit"
)

// fakeEnv makes the test binary a fake daemon: it listens on the socket
// named there and writes every request it gets to the file beside it.
const fakeEnv = "CLINIT_CLIENT_TEST_FAKE_DAEMON"

// exitEnv makes the fake daemon exit after its first answer, once it is
// sent, and not at once: 200 ms later.
const exitEnv = "CLINIT_CLIENT_TEST_FAKE_EXIT"

func TestMain(m *testing.M) {
	if sock := os.Getenv(fakeEnv); sock != "" {
		fakeDaemon(sock)
		return
	}
	os.Exit(m.Run())
}

func fakeDaemon(sock string) {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.Exit(1)
	}
	os.Chmod(sock, 0o777)
	answered := make(chan struct{}, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f, _ := os.OpenFile(sock+".got", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
		f.Write(append([]byte(r.URL.Path+" "), body...))
		f.Close()
		w.Write([]byte(`{"message":"fake: going to level 1"}`))
		answered <- struct{}{}
	})}
	go srv.Serve(ln)
	os.Stdout.WriteString("listening\n")
	<-answered
	if os.Getenv(exitEnv) == "" {
		select {} // until killed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx) // the answer is out
	time.Sleep(200 * time.Millisecond)
	os.Exit(0)
}

// TestClientRefusesUntrustedServer: a process of another user listening
// on the socket is told nothing; one of root's (or ours) is talked to.
func TestClientRefusesUntrustedServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the fake daemon as another user")
	}
	// A directory the other user can reach, with a copy of this binary.
	dir, err := os.MkdirTemp("", "clpeer")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	self, _ := os.Executable()
	bin := filepath.Join(dir, "fake")
	data, err := os.ReadFile(self)
	if err != nil || os.WriteFile(bin, data, 0o755) != nil {
		t.Fatal(err)
	}
	for _, uid := range []uint32{65534, 0} {
		sock := filepath.Join(dir, "sock"+string(rune('a'+uid%26)))
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), fakeEnv+"="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		waited, err := testkit.StartListening(cmd)
		if err != nil {
			t.Fatalf("the fake daemon as uid %d: %v", uid, err)
		}
		defer func() { cmd.Process.Kill(); <-waited }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msg, err := New(sock).Tell(ctx, "web", "1")
		got, _ := os.ReadFile(sock + ".got")
		if uid == 0 {
			if err != nil || msg != "fake: going to level 1" || !strings.Contains(string(got), "web") {
				t.Fatalf("root's daemon: %q %v, it got %q", msg, err, got)
			}
			continue
		}
		if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "runs as uid 65534") || !strings.Contains(err.Error(), sock) {
			t.Fatalf("another user's process on the socket: %q %v, want refused", msg, err)
		}
		if len(got) != 0 {
			t.Fatalf("the untrusted process was told %q", got)
		}
	}
}
