package cltab

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSizeAndLineCaps(t *testing.T) {
	long := "g:t:1:once:" + strings.Repeat("x", MaxLine)
	_, err := Parse("p", []byte("# ok\n"+long+"\ng:u:1:once:true\n"))
	want := []string{"p:2: line is 65547 bytes, over the 65536-byte (64 KiB) limit"}
	if es, _ := err.(Errors); !reflect.DeepEqual(es.Lines(), want) {
		t.Errorf("a long line: %v, want %q", err, want)
	}
	if _, err := ParseHactl("h", []byte("web start "+strings.Repeat("n", MaxLine)+"\n")); err == nil || !strings.Contains(err.Error(), "h:1: line is") {
		t.Errorf("hactl, a long line: %v", err)
	}
	// A big file is refused whole, at the line where it crosses the cap,
	// also when read from disk (without reading past the cap).
	line := "# " + strings.Repeat("c", 1000) + "\n"
	big := strings.Repeat(line, MaxSize/len(line)+2)
	path := filepath.Join(t.TempDir(), "cltab")
	if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	wantLine := MaxSize/len(line) + 1
	for name, err := range map[string]error{"Parse": func() error { _, err := Parse(path, []byte(big)); return err }(),
		"Load": func() error { _, err := Load(path); return err }(), "LoadHactl": func() error { _, err := LoadHactl(path); return err }()} {
		es, _ := err.(Errors)
		if len(es) != 1 || es[0].Line != wantLine || !strings.Contains(es[0].Msg, "over 1048576 bytes") {
			t.Errorf("%s of a %d-byte file: %v, want one error at line %d", name, len(big), err, wantLine)
		}
	}
}

func TestSettingsThatCannotWork(t *testing.T) {
	for _, tc := range []struct {
		in   string
		errs []string
		warn []string
	}{
		{":::nodes:3\n:::quorum:4\n", []string{"p:2: quorum 4 is more than nodes 3 (line 1): no node could ever see a quorum, and HA groups would run nowhere"}, nil},
		{":::quorum:3\n:::nodes:3\n:::stoptimeout:5s\n", nil, nil},
		{":::respawnwindow:0\n", []string{`p:1: bad value for respawnwindow: "0": must be more than 0: with 0 no restart counts as rapid, and a crashing entry restarts without end`}, nil},
		{":::respawnwindow:0s\n", []string{`p:1: bad value for respawnwindow: "0s": must be more than 0`}, nil},
		{":::nodes:3\n:::fencetime:5s\n:::stoptimeout:5s\n", nil, []string{"p:3: warning: stoptimeout 5s is not below fencetime 5s"}},
		{":::nodes:3\n:::stoptimeout:20\n", nil, []string{"p:2: warning: stoptimeout 20s is not below fencetime 10s"}},
		{":::nodes:3\n:::fencetime:2s\n", nil, []string{"p:2: warning: stoptimeout 10s is not below fencetime 2s"}},
		{":::nodes:3\n", nil, []string{"p:1: warning: stoptimeout 10s is not below fencetime 10s"}},
		{":::stoptimeout:30\n", nil, nil}, // no HA: no fencetime
		{":::nodes:3\n:::stoptimeout:3s\n:::fencetime:5s\n", nil, nil},
	} {
		tab, err := Parse("p", []byte(tc.in))
		es, _ := err.(Errors)
		if !prefixes(es.Lines(), tc.errs) {
			t.Errorf("%q: errors %q, want %q", tc.in, es.Lines(), tc.errs)
		}
		if tab != nil && !prefixes(tab.Warnings.Lines(), tc.warn) {
			t.Errorf("%q: warnings %q, want %q", tc.in, tab.Warnings.Lines(), tc.warn)
		}
	}
}

// prefixes: got has as many lines as want, each starting with its want.
func prefixes(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !strings.HasPrefix(got[i], want[i]) {
			return false
		}
	}
	return true
}
