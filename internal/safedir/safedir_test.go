package safedir

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func mkdir(t *testing.T, p string, mode os.FileMode) string {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(p, uint32(mode)); err != nil { // past the umask; 01000 is sticky
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give directories to another user")
	}
	base := t.TempDir()
	good := mkdir(t, filepath.Join(base, "good"), 0o700)
	open := mkdir(t, filepath.Join(base, "open"), 0o777)
	group := mkdir(t, filepath.Join(base, "group"), 0o770)
	theirs := mkdir(t, filepath.Join(base, "theirs"), 0o700)
	os.Chown(theirs, 65534, 65534)
	inOpen := mkdir(t, filepath.Join(open, "mine"), 0o700)
	sticky := mkdir(t, filepath.Join(base, "sticky"), 0o1777)
	inSticky := mkdir(t, filepath.Join(sticky, "mine"), 0o700)
	// A symlink of another user's in a sticky directory, to a good one:
	// they may point it elsewhere at any time.
	link := filepath.Join(sticky, "link")
	os.Symlink(good, link)
	os.Lchown(link, 65534, 65534)
	myLink := filepath.Join(base, "mylink")
	os.Symlink(good, myLink)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)

	for dir, want := range map[string]string{
		good: "", inSticky: "", myLink: "",
		open:     "mode 0777: others may write in it",
		group:    "mode 0770",
		theirs:   "belongs to uid 65534",
		inOpen:   "which is mode 0777: others may replace",
		link:     "on the way, " + link + " belongs to uid 65534",
		file:     "not a directory",
		"nosuch": "no such file",
	} {
		err := Check(dir)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v, want accepted", dir, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want an error with %q", dir, err, want)
		}
	}
	if err := Ensure(filepath.Join(good, "a", "b"), 0o700); err != nil {
		t.Errorf("Ensure in a good directory: %v", err)
	}
	if err := Ensure(filepath.Join(open, "new"), 0o700); err == nil {
		t.Error("Ensure in an open directory: accepted")
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := CheckFile(f); err != nil {
		t.Fatalf("a plain file: %v", err)
	}
	os.Link(p, filepath.Join(dir, "hard"))
	if err := CheckFile(f); err == nil || !strings.Contains(err.Error(), "2 hard links") {
		t.Fatalf("a file with two links: %v", err)
	}
}
