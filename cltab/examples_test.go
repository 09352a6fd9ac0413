package cltab

import (
	"path/filepath"
	"testing"
)

// The shipped examples stay valid.
func TestExamplesValid(t *testing.T) {
	tabs, _ := filepath.Glob("../examples/*cltab")
	more, _ := filepath.Glob("../examples/*/cltab")
	tabs = append(tabs, more...)
	if len(tabs) < 3 {
		t.Fatalf("found only %v", tabs)
	}
	for _, p := range tabs {
		if _, err := Load(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	hactls, _ := filepath.Glob("../examples/*/hactl")
	if len(hactls) == 0 {
		t.Fatal("no example hactl")
	}
	for _, p := range hactls {
		h, err := LoadHactl(p)
		if err != nil || len(h.Groups) == 0 {
			t.Errorf("%s: %v (%d groups)", p, err, len(h.Groups))
		}
	}
}
