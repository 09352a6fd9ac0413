package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeyRefusesAKeyOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o622, 0o660} {
		path := filepath.Join(dir, "key"+mode.String())
		if err := os.WriteFile(path, []byte(Keygen()+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode) // past the umask
		_, err := LoadKey(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("a key of mode %04o: %v, want refused with the fix", mode, err)
		}
	}
	path := filepath.Join(dir, "good")
	if err := os.WriteFile(path, []byte(Keygen()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err != nil {
		t.Fatalf("a key of mode 0600: %v", err)
	}
	if os.Geteuid() == 0 {
		os.Chown(path, 65534, 65534)
		if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "uid 65534") {
			t.Errorf("another user's key: %v, want refused", err)
		}
	}
}

func TestWriteKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := WriteKey(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if _, err := LoadKey(path); err != nil {
		t.Fatalf("the key written does not load: %v", err)
	}
	// It never replaces, nor writes through a symlink.
	before, _ := os.ReadFile(path)
	if err := WriteKey(path); err == nil {
		t.Fatal("an existing key was replaced")
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("an existing key changed")
	}
	target := filepath.Join(dir, "target")
	os.Symlink(target, filepath.Join(dir, "link"))
	if err := WriteKey(filepath.Join(dir, "link")); err == nil || exists(target) {
		t.Fatalf("wrote through a symlink: %v", err)
	}
}
