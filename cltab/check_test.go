package cltab

import (
	"strings"
	"testing"
)

func TestCheckHactl(t *testing.T) {
	tab, err := Parse("cltab", []byte("a:x:1:once:true\nb:y:start,:once:true\nc:z:2:off:true\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		hactl string
		want  []string // the problems, in line order
	}{
		{"a 1\nb start\n", nil},
		{"a stop\n", nil},
		{"ghost 1\n", []string{`hactl:1: group "ghost" is not in the cltab cltab`}},
		{"a 2\nb start\n", []string{`hactl:1: group "a" has no entry at level "2" in the cltab cltab`}},
		{"c 2\n", nil}, // an off entry is an entry: the group has the level
	} {
		h, err := ParseHactl("hactl", []byte(c.hactl))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range CheckHactl(tab, h) {
			got = append(got, e.Error())
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("hactl %q: %q, want %q", c.hactl, got, c.want)
		}
	}
}

func TestHALevelProblemAndGroupLevels(t *testing.T) {
	tab, err := Parse("cltab", []byte("web:a:plan:once:true\nweb:b:start,big:once:true\nweb:c:12:once:true\nweb:d:start,:once:true\n"))
	if err != nil {
		t.Fatal(err)
	}
	for level, want := range map[string]string{
		"start":  "",
		"plan":   "",
		"p":      "", // a letter of plan is a level too
		"stop":   "", // runs nowhere: no entry needed
		"remove": `group "web" has no entry at level "remove" in the cltab cltab`,
	} {
		if got := HALevelProblem(tab, "web", level); got != want {
			t.Errorf("HALevelProblem(web, %s) = %q, want %q", level, got, want)
		}
	}
	if got := HALevelProblem(tab, "ghost", "start"); got != `group "ghost" is not in the cltab cltab` {
		t.Errorf("HALevelProblem(ghost) = %q", got)
	}
	if got := strings.Join(GroupLevels(tab, "web"), " "); got != "plan start big 12" {
		t.Errorf("GroupLevels(web) = %q, want the fields as written: plan start big 12", got)
	}
}

func TestLetterWarnings(t *testing.T) {
	tab, err := Parse("cltab", []byte(`vip:a:start:wait:true
vip:b:start,:wait:true
vip:c:12:once:true
vip:d:run:once:true
vip:e:s:once:true
web:f:start:once:true
`))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHactl("hactl", []byte("vip run\n"))
	if err != nil {
		t.Fatal(err)
	}
	ws := LetterWarnings(tab, h)
	var lines []string
	for _, w := range ws {
		lines = append(lines, w[:strings.Index(w, ": warning:")])
	}
	// start (lifecycle) and run (the hactl level) of the HA group vip; not
	// start, (a comma), 12 and s (not a lifecycle name), nor web (not HA).
	if got := strings.Join(lines, " "); got != "cltab:1 cltab:4" {
		t.Fatalf("warnings at %q, want cltab:1 cltab:4:\n%s", got, strings.Join(ws, "\n"))
	}
	if !strings.Contains(ws[0], `write "start," for the one level start`) {
		t.Errorf("warning %q does not suggest start,", ws[0])
	}
}
