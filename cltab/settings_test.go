package cltab

import (
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10s", 10 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"10", 10 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{".5", 500 * time.Millisecond, true},
		{"0", 0, true},
		{"0s", 0, true},
		{"-1s", 0, false},
		{"-1", 0, false},
		{"-0.5", 0, false},
		{"", 0, false},
		{"abc", 0, false},
		{"10 s", 0, false},
		{"1e3", 0, false},
		{"inf", 0, false},
		{"NaN", 0, false},
		{"1.2.3", 0, false},
		{".", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestDurationAndInt(t *testing.T) {
	tab, err := Parse("p", []byte(":::stoptimeout:3\n:::fencetime:250ms\n:::quorum:2\n"))
	if err != nil {
		t.Fatal(err)
	}
	durations := []struct {
		name string
		def  time.Duration
		want time.Duration
	}{
		{"stoptimeout", DefaultStopTimeout, 3 * time.Second},
		{"fencetime", time.Second, 250 * time.Millisecond},
		{"respawnpause", DefaultRespawnPause, DefaultRespawnPause},
	}
	for _, tt := range durations {
		if got := tab.Duration(tt.name, tt.def); got != tt.want {
			t.Errorf("Duration(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := tab.Int("quorum", 9); got != 2 {
		t.Errorf("Int(quorum) = %d, want 2", got)
	}
	if got := tab.Int("respawnlimit", DefaultRespawnLimit); got != DefaultRespawnLimit {
		t.Errorf("Int(respawnlimit) = %d, want default", got)
	}
	var none *Tab // no cltab at all: every setting is its default
	if none.Duration("stoptimeout", time.Minute) != time.Minute || none.Int("nodes", 4) != 4 {
		t.Error("nil Tab does not give defaults")
	}
}

func TestKnownSettings(t *testing.T) {
	got := KnownSettings()
	if !sort.StringsAreSorted(got) || len(got) != 20 {
		t.Errorf("KnownSettings() = %q, want 20 sorted names", got)
	}
	got[0] = "clobbered" // callers get their own copy
	if KnownSettings()[0] == "clobbered" {
		t.Error("KnownSettings shares its slice")
	}
}

func TestServersAndLease(t *testing.T) {
	for text, want := range map[string]string{
		":::servers:a,b,c\n":               "",
		":::servers:a, b ,c,\n":            "",
		":::servers:a,b,c,d,e,f\n":         "names 6 nodes; want 1 to 5 voters",
		":::servers:,\n":                   "names 0 nodes",
		":::servers:a,b c\n":               `node "b c"`,
		":::lease:3s\n":                    "",
		":::lease:0\n":                     "must be at least 1s",
		":::lease:900ms\n":                 "must be at least 1s",
		":::lease:1s\n":                    "",
		":::lease:soon\n":                  "want a duration",
		":::servers:a,b,w\n:::witness:w\n": "",
		":::nodes:3\n:::witness:w\n":       "",
		":::servers:a,b,c\n:::witness:w\n": "witness w is not one of the servers (line 1)",
		":::witness:\n":                    "names 0 nodes",
		":::settle:0\n":                    "",
		":::settle:1s\n":                   "",
		":::settle:1h\n":                   "",
		":::settle:999ms\n":                "cltab:1: bad value for settle: \"999ms\": must be 0 (no wait) or at least 1s",
		":::settle:61m\n":                  "must be at most 1h0m0s",
		":::settle:-5s\n":                  "must not be negative",
		":::failback:on\n":                 "",
		":::failback:off\n":                "",
		":::failback:yes\n":                "cltab:1: bad value for failback: \"yes\": want on or off",
	} {
		_, err := Parse("cltab", []byte(text))
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", text, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

func TestFailbackSetting(t *testing.T) {
	for text, want := range map[string]bool{"": true, ":::failback:on\n": true, ":::failback:off\n": false} {
		tab, err := Parse("cltab", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if got := tab.Failback(); got != want {
			t.Errorf("%q: failback %v, want %v", text, got, want)
		}
	}
	var none *Tab
	if !none.Failback() {
		t.Error("no cltab: failback off, want the default on")
	}
}
