package t

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestKeyFile: clinit --keygen PATH writes a key only its owner can
// read, and a daemon refuses a key file that others can read.
func TestKeyFile(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	key := filepath.Join(dir, "key")
	out, errOut, code, err := runClinit("--keygen", key)
	if err != nil || code != 0 || !strings.Contains(out, key) {
		t.Fatalf("clinit --keygen %s: %d %q %q %v", key, code, out, errOut, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if _, errOut, code, _ := runClinit("--keygen", key); code != 1 || !strings.Contains(errOut, "file exists") {
		t.Fatalf("clinit --keygen over an existing key: %d %q", code, errOut)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "cltab"), "g:a:1:once:true\n")
	d := launch(t, dir, "--bind", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--keyfile", key)
	if code := d.waitExit(); code != 1 || !strings.Contains(d.log.String(), "chmod 600 "+key) {
		t.Fatalf("a daemon with a key of mode 0644: exit %d, log:\n%s", code, d.log)
	}
}
