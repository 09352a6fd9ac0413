package t

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUnsafeDirectoriesRefused: a state, socket or FIFO directory that
// another user owns or may write in is refused at start (sshd's
// StrictModes): there, anyone could plant symlinks that root would
// write through. The log is never opened through a symlink.
func TestUnsafeDirectoriesRefused(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(newCaseDir(t), "secret")
	writeFile(t, secret, "root only\n")
	for _, tc := range []struct {
		name  string
		setup func(dir string) []string // the flags
		want  string
	}{
		{"state dir mode 0777", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "state"), 0o777)
			return nil
		}, "state directory: " + "%s/state is mode 0777"},
		{"state dir of another user", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "state"), 0o700)
			os.Chown(filepath.Join(dir, "state"), 65534, 65534)
			return nil
		}, "belongs to uid 65534"},
		{"exit dir planted in the state dir", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "state"), 0o700)
			mkdirMode(t, filepath.Join(dir, "state", "exit"), 0o777)
			return nil
		}, "state/exit is mode 0777"},
		{"socket dir in an open dir", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "open"), 0o777)
			return []string{"-s", filepath.Join(dir, "open", "run", "sock")}
		}, "socket directory: "},
		{"FIFO dir of another user", func(dir string) []string {
			mkdirMode(t, filepath.Join(dir, "sock.out"), 0o700)
			os.Chown(filepath.Join(dir, "sock.out"), 65534, 65534)
			return nil
		}, "output directory: "},
		{"log through a symlink", func(dir string) []string {
			os.Symlink(secret, filepath.Join(dir, "log"))
			return []string{"--log", filepath.Join(dir, "log")}
		}, "log file: "},
	} {
		dir := newCaseDir(t)
		writeFile(t, filepath.Join(dir, "cltab"), "g:a:1:once:true\n")
		d := launch(t, dir, tc.setup(dir)...)
		want := strings.ReplaceAll(tc.want, "%s", dir)
		if code := d.waitExit(); code != 1 || !strings.Contains(d.log.String(), want) {
			t.Errorf("%s: exit %d, want 1 and %q in:\n%s", tc.name, code, want, d.log)
		}
	}
	if data, _ := os.ReadFile(secret); string(data) != "root only\n" {
		t.Fatalf("the secret file was written: %q", data)
	}
}

func mkdirMode(t *testing.T, p string, mode uint32) {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
