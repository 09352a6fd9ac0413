package cltab

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseEntries(t *testing.T) {
	long := strings.Repeat("x", MaxLine-100)
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"colons in command", "web:ip:1:once:echo a:b:c",
			[]Entry{{Group: "web", Tag: "ip", RawLevels: "1", Levels: []string{"1"}, Mode: ModeOnce, Command: "echo a:b:c", Line: 1}}},
		{"off without command", "g:t:1:off:",
			[]Entry{{Group: "g", Tag: "t", RawLevels: "1", Levels: []string{"1"}, Mode: ModeOff, Line: 1}}},
		{"crlf", "g:t:0:wait:true\r\n",
			[]Entry{{Group: "g", Tag: "t", RawLevels: "0", Levels: []string{"0"}, Mode: ModeWait, Command: "true", Line: 1}}},
		{"line longer than bufio.Scanner's limit, within MaxLine", "\n# c\ng:t:1:once:" + long + "\n",
			[]Entry{{Group: "g", Tag: "t", RawLevels: "1", Levels: []string{"1"}, Mode: ModeOnce, Command: long, Line: 3}}},
		{"blank and comment lines only", " \t\n#x\n\t# y\r\n\r\n", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse("x", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []Entry
			for _, e := range tab.Entries {
				got = append(got, *e)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"g:t:1:once", []string{"p:1: missing field: want group:tag:runlevels:mode:command"}},
		{"g:t:1:once:  ", []string{"p:1: empty command (only mode off may have none)"}},
		{"a:t:1:once:x\nb:t:1:once:y", []string{`p:2: duplicate tag "t" (first at line 1)`}},
		{"g:t:1:daily:x", []string{`p:1: unknown mode "daily" (want wait, once, respawn, test or off)`}},
		{"g:t:,,:once:x", []string{`p:1: bad runlevels ",,": no level`}},
		{":::x:1", []string{`p:1: unknown setting "x" (known: ` + strings.Join(KnownSettings(), ", ") + ")"}},
		{":::nodes:1\n:::nodes:2", []string{`p:2: duplicate setting "nodes" (first at line 1)`}},
		{":::stoptimeout:abc", []string{`p:1: bad value for stoptimeout: "abc": want a duration like 10s, 1m30s or 500ms, or a number of seconds`}},
		{"\n\ng:t:1:once:\xff", []string{"p:3: line is not valid UTF-8"}},
		// A runaway field is cut short in the message.
		{strings.Repeat("é", 40) + " :t:1:once:x", []string{`p:1: bad group name "` + strings.Repeat("é", 32) + `"...: holds whitespace ' ' (` + NameRule + `)`}},
		{"g:t:1:once:\x00", []string{"p:1: line contains a NUL byte"}},
		// Every problem, in line order, several on one line.
		{"x y:a b:1 2:once:\nz", []string{
			`p:1: bad group name "x y": holds whitespace ' ' (` + NameRule + `)`,
			`p:1: bad tag name "a b": holds whitespace ' ' (` + NameRule + `)`,
			`p:1: bad runlevels "1 2": whitespace is not allowed`,
			`p:1: empty command (only mode off may have none)`,
			`p:2: missing field: want group:tag:runlevels:mode:command`,
		}},
	}
	for _, tt := range tests {
		tab, err := Parse("p", []byte(tt.in))
		if tab != nil {
			t.Errorf("Parse(%q) returned a Tab with errors", tt.in)
		}
		var es Errors
		if !errors.As(err, &es) {
			t.Fatalf("Parse(%q) = %v, want Errors", tt.in, err)
		}
		if got := es.Lines(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q):\ngot  %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestHasLevel(t *testing.T) {
	tests := []struct {
		raw     string
		yes, no []string
	}{
		{"12", []string{"1", "2", "12"}, []string{"3", "", "21"}},
		{"0", []string{"0"}, []string{"00", ""}},
		{"long3,", []string{"long3", "long3,"}, []string{"l", "3", "long"}},
		{"a,b,,c", []string{"a", "b", "c", "a,b,,c"}, []string{"", "a,b", "ab"}},
	}
	for _, tt := range tests {
		tab, err := Parse("p", []byte("g:t:"+tt.raw+":once:true"))
		if err != nil {
			t.Fatal(err)
		}
		e := tab.Entries[0]
		for _, l := range tt.yes {
			if !e.HasLevel(l) {
				t.Errorf("%q: HasLevel(%q) = false, want true", tt.raw, l)
			}
		}
		for _, l := range tt.no {
			if e.HasLevel(l) {
				t.Errorf("%q: HasLevel(%q) = true, want false", tt.raw, l)
			}
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	_, err := Load(missing)
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist and not ErrInvalid", err)
	}
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) error %v does not name the path", err)
	}

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("g:t:1:once:x\ng:t:1:once:y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	var es Errors
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &es) || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(invalid) = %v, want Errors matching ErrInvalid", err)
	}
	if want := bad + `:2: duplicate tag "t" (first at line 1)`; len(es) != 1 || es[0].Error() != want {
		t.Errorf("Load(invalid) = %q, want %q", es.Lines(), want)
	}

	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte(":::nodes:3\ng:t:1:once:x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := Load(good)
	if err != nil || tab.Path != good || len(tab.Entries) != 1 || tab.Int("nodes", 0) != 3 {
		t.Errorf("Load(good) = %+v, %v", tab, err)
	}
}
