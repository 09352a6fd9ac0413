package cltab

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// dump renders a Tab as stable text for golden files; %q makes stray
// whitespace and CRs visible.
func dump(t *Tab) string {
	var b strings.Builder
	for _, e := range t.Entries {
		fmt.Fprintf(&b, "entry line=%d group=%q tag=%q raw=%q levels=%q mode=%q command=%q\n",
			e.Line, e.Group, e.Tag, e.RawLevels, e.Levels, e.Mode, e.Command)
	}
	names := make([]string, 0, len(t.Settings))
	for n := range t.Settings {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := t.Settings[n]
		fmt.Fprintf(&b, "setting line=%d name=%q value=%q\n", s.Line, s.Name, s.Value)
	}
	return b.String()
}

func TestGoldenValid(t *testing.T) {
	forEachCase(t, "valid", func(path string, data []byte) string {
		tab, err := Parse(path, data)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		return dump(tab)
	})
}

func TestGoldenInvalid(t *testing.T) {
	forEachCase(t, "invalid", func(path string, data []byte) string {
		tab, err := Parse(path, data)
		if err == nil {
			t.Fatalf("Parse succeeded, want errors; got:\n%s", dump(tab))
		}
		var es Errors
		if !errors.As(err, &es) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse error %T %v is not an Errors matching ErrInvalid", err, err)
		}
		return strings.Join(es.Lines(), "\n") + "\n"
	})
}

// forEachCase runs render on every testdata/dir/*.cltab and compares the
// result with the .golden file next to it (or rewrites it with -update).
func forEachCase(t *testing.T, dir string, render func(path string, data []byte) string) {
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.cltab"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test files in testdata/%s: %v", dir, err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := render(path, data)
			golden := strings.TrimSuffix(path, ".cltab") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("mismatch with %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
