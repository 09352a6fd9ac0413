package t

import (
	"net"
	"testing"
)

// clinit -k returns once the daemon process has exited, not only once its
// groups have stopped: right after it, the socket, the state directory and
// the process are gone, so a new daemon can start at once.
func TestKillReturnsOnceExited(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `
G:r:1:respawn:exec sleep 1000
`)
	d.tellDone("G", "1")
	// A client stuck halfway through its request: the daemon gives it a
	// moment before it closes its socket server and exits, after its
	// groups have stopped and -k has had its answer.
	slow, err := net.Dial("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("GET /v0/status HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := d.clinit("-k"); code != 0 {
		t.Fatalf("clinit -k: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	if pid := d.cmd.Process.Pid; alive(pid) {
		t.Fatalf("clinit -k returned while the daemon (pid %d) still runs", pid)
	}
	if code := d.waitExit(); code != 0 {
		t.Fatalf("the daemon exited with status %d after -k", code)
	}
	// The same state directory and socket serve a new daemon at once.
	d2 := launch(t, d.dir)
	d2.waitReady()
}
