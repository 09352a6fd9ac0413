package t

import (
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// complete runs examples/clinit.bash's completion for words (the last is
// the one being completed) and returns the candidates.
func complete(t *testing.T, words ...string) []string {
	t.Helper()
	script := `source ../examples/clinit.bash
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
_clinit
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", append([]string{"-c", script, "bash"}, words...)...)
	cmd.Env = append(cmd.Environ(), "PATH="+filepath.Dir(clinitBin)+":/usr/bin:/bin")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash completion: %v", err)
	}
	return strings.Fields(string(out))
}

func TestBashCompletion(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	tab := filepath.Join(dir, "cltab")
	writeFile(t, tab, "# c\n:::stoptimeout:5\nweb:a:12:wait:true\nweb:b:2:respawn:sleep 1\nworker:c:run,idle:once:true\n")
	cases := []struct {
		words []string
		want  []string
	}{
		{[]string{"clinit", "-c", tab, ""}, []string{"web", "worker"}},
		{[]string{"clinit", "-c", tab, "wo"}, []string{"worker"}},
		{[]string{"clinit", "-c", tab, "web", ""}, []string{"1", "12", "2"}},
		{[]string{"clinit", "-c", tab, "-v", "worker", ""}, []string{"idle", "run"}},
		{[]string{"clinit", "--cltab=" + tab, "--ha", "worker", "r"}, []string{"run"}},
		{[]string{"clinit", "--ha"}, []string{"--ha", "--hactl", "--hastat"}},
	}
	for _, c := range cases {
		if got := complete(t, c.words...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("complete %q = %q, want %q", c.words, got, c.want)
		}
	}
}
