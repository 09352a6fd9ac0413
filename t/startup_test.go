package t

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestStartupDoesNoWork: every clinit command, the client's `clinit G L`
// included, runs the initialisation of every package linked into the one
// binary before main. Ours must do none (no allocation at init: tables
// are laid out by the linker, metrics are written at each scrape), and
// the Prometheus client library, whose init registers collectors and
// loads protobuf descriptors, must not be linked at all.
func TestStartupDoesNoWork(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(clinitBin, "--version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("clinit --version: %v\n%s", err, out)
	}
	inits := 0
	for _, line := range strings.Split(string(out), "\n") {
		// init PKG @T ms, C ms clock, B bytes, A allocs
		f := strings.Fields(line)
		if len(f) != 11 || f[0] != "init" {
			continue
		}
		inits++
		pkg, allocs := f[1], f[9]
		switch {
		case strings.HasPrefix(pkg, "github.com/clinit/clinit/") && allocs != "0":
			t.Errorf("package %s allocates at init: %s", pkg, line)
		case strings.HasPrefix(pkg, "github.com/prometheus/"), strings.HasPrefix(pkg, "google.golang.org/protobuf/"):
			t.Errorf("package %s is initialised in every clinit process: %s", pkg, line)
		}
	}
	if inits == 0 {
		t.Fatalf("no inittrace lines from clinit --version:\n%s", out)
	}
}
