package cltab

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseHactl(t *testing.T) {
	h, err := ParseHactl("hactl", []byte("# HA groups\n\nweb start n1,n2\r\ndb  run\n\tcache stop ,n3,\nmq start n2 failback=off\nvip start failback=on\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []*HAGroup{
		{Group: "web", Level: "start", Prefer: []string{"n1", "n2"}, Line: 3},
		{Group: "db", Level: "run", Line: 4},
		{Group: "cache", Level: "stop", Prefer: []string{"n3"}, Line: 5},
		{Group: "mq", Level: "start", Prefer: []string{"n2"}, Failback: "off", Line: 6},
		{Group: "vip", Level: "start", Failback: "on", Line: 7},
	}
	if !reflect.DeepEqual(h.Groups, want) {
		t.Fatalf("got %+v", h.Groups)
	}
	if h.Group("db") != h.Groups[1] || h.Group("nope") != nil {
		t.Fatal("Group lookup")
	}
	for _, c := range []struct {
		g        string
		def, got bool
	}{{"web", true, true}, {"web", false, false}, {"mq", true, false}, {"vip", false, true}} {
		if got := h.Group(c.g).FailsBack(c.def); got != c.got {
			t.Errorf("%s fails back with the cltab's %v: %v, want %v", c.g, c.def, got, c.got)
		}
	}
}

func TestParseHactlErrors(t *testing.T) {
	text := "web\nweb start\nweb run\na b c d\nx:y start\ndb start n1,n1\ndb2 start n:1\n" +
		"f1 start n1 failback=maybe\nf2 start failback=\nf3 start failback=off n1\nf4 start n1 n2 failback=on\n"
	_, err := ParseHactl("/etc/hactl", []byte(text))
	var es Errors
	if !errors.As(err, &es) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v", err)
	}
	want := []string{
		"/etc/hactl:1: missing level: want GROUP LEVEL [NODE,...] [failback=on|off]",
		`/etc/hactl:3: duplicate group "web" (first at line 2)`,
		"/etc/hactl:4: too many fields: want GROUP LEVEL [NODE,...] [failback=on|off]",
		`/etc/hactl:5: bad group name "x:y": holds ':' (` + NameRule + ")",
		`/etc/hactl:6: node "n1" preferred twice`,
		`/etc/hactl:7: bad node name "n:1": holds ':' (` + NameRule + ")",
		`/etc/hactl:8: bad failback "maybe": want failback=on or failback=off`,
		`/etc/hactl:9: bad failback "?": want failback=on or failback=off`,
		"/etc/hactl:10: too many fields: want GROUP LEVEL [NODE,...] [failback=on|off]",
		"/etc/hactl:11: too many fields: want GROUP LEVEL [NODE,...] [failback=on|off]",
	}
	if got := es.Lines(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSetHactl(t *testing.T) {
	base := "# keep me\nweb start n1,n2\ndb run\nmq start n3 failback=off\n"
	cases := []struct {
		g, level string
		prefer   []string
		want     string
	}{
		{"web", "stop", nil, "# keep me\nweb stop n1,n2\ndb run\nmq start n3 failback=off\n"},
		{"web", "start", []string{}, "# keep me\nweb start\ndb run\nmq start n3 failback=off\n"},
		{"db", "run", []string{"n3"}, "# keep me\nweb start n1,n2\ndb run n3\nmq start n3 failback=off\n"},
		// An edit of the level or the preferred nodes keeps failback=.
		{"mq", "stop", nil, "# keep me\nweb start n1,n2\ndb run\nmq stop n3 failback=off\n"},
		{"mq", "start", []string{"n1"}, "# keep me\nweb start n1,n2\ndb run\nmq start n1 failback=off\n"},
		{"new", "up", nil, base + "new up\n"},
	}
	for _, c := range cases {
		got := string(SetHactl([]byte(base), c.g, c.level, c.prefer))
		if got != c.want {
			t.Errorf("SetHactl(%s %s %v) = %q, want %q", c.g, c.level, c.prefer, got, c.want)
		}
		if _, err := ParseHactl("x", []byte(got)); err != nil {
			t.Errorf("result invalid: %v", err)
		}
	}
	if got := string(SetHactl(nil, "web", "start", nil)); got != "web start\n" {
		t.Errorf("empty hactl: %q", got)
	}
}

// FuzzHactl: the parser never panics, and what it accepts renders to text
// that parses to the same groups.
func FuzzHactl(f *testing.F) {
	for _, s := range []string{"web start n1,n2\n", "# c\n\ndb run\n", "a b c d", "x\xff y",
		"web start n1,n2 failback=off\n", "db run failback=on\n", "a b failback=x", "a b failback= n1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHactl("f", data)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error without lines: %v", err)
			}
			return
		}
		var b strings.Builder
		for _, g := range h.Groups {
			b.WriteString(g.String() + "\n")
		}
		h2, err := ParseHactl("f", []byte(b.String()))
		if err != nil {
			t.Fatalf("rendered text invalid: %v\n%s", err, b.String())
		}
		if len(h2.Groups) != len(h.Groups) {
			t.Fatalf("round trip lost groups")
		}
		for i := range h.Groups {
			a, b := h.Groups[i], h2.Groups[i]
			if a.Group != b.Group || a.Level != b.Level || !reflect.DeepEqual(a.Prefer, b.Prefer) || a.Failback != b.Failback {
				t.Fatalf("round trip: %+v != %+v", a, b)
			}
		}
	})
}
