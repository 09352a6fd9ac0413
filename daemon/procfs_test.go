package daemon

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// A process group number remembered across a restart is ours only while
// a member still carries the entry's environment: a reused number is
// someone else's, never to be watched or signalled.
func TestGroupOf(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "10")
	cmd.SysProcAttr = setpgid()
	cmd.Env = append(os.Environ(), "CLINIT_GROUP=web", "CLINIT_TAG=httpd")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer cmd.Process.Kill()

	if !groupOf(pid, "web", "httpd") {
		t.Error("groupOf: a member with the entry's environment not recognized")
	}
	for _, c := range [][2]string{{"web", "http"}, {"we", "httpd"}, {"db", "httpd"}} {
		if groupOf(pid, c[0], c[1]) {
			t.Errorf("groupOf(%s, %s) holds for a process of web/httpd", c[0], c[1])
		}
	}
	if m, _, ok := groupMember(pid); !ok || m != pid {
		t.Errorf("groupMember = %d, %v; want %d", m, ok, pid)
	}

	f, err := openPidfd(pid)
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan struct{})
	go func() { awaitExit(f); close(gone) }()
	select {
	case <-gone:
		t.Fatal("awaitExit returned while the process runs")
	case <-time.After(50 * time.Millisecond):
	}
	cmd.Process.Kill()
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("awaitExit did not return after the process was killed")
	}
	// Exited (a zombie until waited for): no longer a live group.
	if groupOf(pid, "web", "httpd") || groupAlive(pid) {
		t.Error("an exited process group still counts as alive")
	}
	cmd.Wait()
}
