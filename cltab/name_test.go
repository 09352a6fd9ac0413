package cltab

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	good := []string{"web", "n1", "db-2.example", "long3", "é", "0", strings.Repeat("x", MaxName)}
	for _, s := range good {
		if err := CheckName(s); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", s, err)
		}
	}
	bad := map[string]string{
		"":                             "empty",
		"a b":                          "whitespace",
		"a\tb":                         "whitespace",
		"fake\nnode fake alive":        "whitespace",
		"a:b":                          `':'`,
		"a,b":                          `','`,
		"a\x00b":                       "unprintable",
		"a\x1b[2J":                     "unprintable",
		"a\x7f":                        "unprintable",
		"a\u0085":                      "whitespace",
		"a\u200e":                      "unprintable",
		"\xff":                         "UTF-8",
		strings.Repeat("x", MaxName+1): "over 128",
	}
	for s, want := range bad {
		err := CheckName(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckName(%q) = %v, want an error about %s", s, err, want)
		}
	}
}

func TestBadNameMessage(t *testing.T) {
	got := BadName("node", "a\nb")
	want := `bad node name "a\nb": holds whitespace '\n' (` + NameRule + ")"
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if BadName("node", "ok") != "" {
		t.Fatal("a good name has a message")
	}
}

func TestHactlRefusesControlCharacters(t *testing.T) {
	for _, text := range []string{"web\x01 start\n", "web st\x1bart\n", "web start n1,n\x072\n"} {
		if _, err := ParseHactl("/etc/hactl", []byte(text)); err == nil {
			t.Errorf("%q accepted", text)
		}
	}
}
