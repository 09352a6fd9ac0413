package node

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The engine knows nothing of the cluster: package daemon (the engine
// and its socket server) depends on no package of the cluster or the
// lease keeper; what ties them together is this package.
func TestEngineImportsNoCluster(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/clinit/clinit/daemon").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !slices.Contains(deps, "github.com/clinit/clinit/cltab") {
		t.Fatalf("go list -deps gave no sensible list: %q", deps)
	}
	for _, d := range deps {
		for _, banned := range []string{"github.com/clinit/clinit/cluster", "github.com/clinit/clinit/keeper"} {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("package daemon depends on %s: the engine must reach the cluster and the keeper only through what package node gives it", d)
			}
		}
	}
}
