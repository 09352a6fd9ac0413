package cltab

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*", "*.cltab"))
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "fuzz.cltab"
		tab, err := Parse(path, data)
		if err != nil {
			checkErrors(t, path, data, err)
			return
		}
		checkTab(t, tab)
		checkRoundTrip(t, tab)
	})
}

// checkErrors: a failure is an Errors value whose lines all point into
// the file, in line order.
func checkErrors(t *testing.T, path string, data []byte, err error) {
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %T %v is not a non-empty Errors", err, err)
	}
	nlines := strings.Count(string(data), "\n") + 1
	prev := 0
	for i, line := range es.Lines() {
		n := es[i].Line
		if n < 1 || n > nlines || n < prev {
			t.Fatalf("error %q: line %d outside 1..%d or out of order", line, n, nlines)
		}
		prev = n
		if !strings.HasPrefix(line, path+":"+strconv.Itoa(n)+": ") {
			t.Fatalf("error %q does not start with %s:%d: ", line, path, n)
		}
	}
}

// checkTab restates SPEC 1 independently of the parser.
func checkTab(t *testing.T, tab *Tab) {
	good := func(s string) bool {
		return s != "" && strings.IndexFunc(s, func(r rune) bool {
			return r == ':' || r == ',' || unicode.IsSpace(r)
		}) < 0
	}
	tags := map[string]bool{}
	for _, e := range tab.Entries {
		if !good(e.Group) || !good(e.Tag) || len(e.Levels) == 0 {
			t.Fatalf("bad entry accepted: %+v", e)
		}
		for _, l := range e.Levels {
			if !good(l) || !e.HasLevel(l) {
				t.Fatalf("bad level %q accepted: %+v", l, e)
			}
		}
		if tags[e.Tag] {
			t.Fatalf("duplicate tag %q accepted", e.Tag)
		}
		tags[e.Tag] = true
		switch e.Mode {
		case ModeWait, ModeOnce, ModeRespawn, ModeTest:
			if strings.TrimSpace(e.Command) == "" {
				t.Fatalf("empty command accepted: %+v", e)
			}
		case ModeOff:
		default:
			t.Fatalf("bad mode accepted: %+v", e)
		}
	}
	for name, s := range tab.Settings {
		if _, ok := settingCheck(name); !ok || s.Name != name {
			t.Fatalf("bad setting accepted: %q %+v", name, s)
		}
	}
}

// checkRoundTrip: rendering the entries back as lines and parsing them
// again gives the same entries.
func checkRoundTrip(t *testing.T, tab *Tab) {
	var b strings.Builder
	for _, e := range tab.Entries {
		b.WriteString(e.Group + ":" + e.Tag + ":" + e.RawLevels + ":" + string(e.Mode) + ":" + e.Command + "\n")
	}
	again, err := Parse("again", []byte(b.String()))
	if err != nil {
		t.Fatalf("re-rendered entries do not parse: %v\n%s", err, b.String())
	}
	if len(again.Entries) != len(tab.Entries) {
		t.Fatalf("round trip: %d entries, want %d", len(again.Entries), len(tab.Entries))
	}
	for i, e := range again.Entries {
		want := *tab.Entries[i]
		want.Line = i + 1
		if !reflect.DeepEqual(*e, want) {
			t.Fatalf("round trip:\ngot  %+v\nwant %+v", *e, want)
		}
	}
}
