package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// A burst of writes to the watched file is seen once it settles, and a
// later change again. (That a burst is merged into one reread is the
// coalescer's test, on a fake clock.)
func TestWatchFileSettles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cltab")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("first\n")
	changed := make(chan struct{}, 16)
	stop := make(chan struct{})
	defer close(stop)
	if err := watchFile(path, zap.NewNop(), stop, func() { changed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	seen := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not seen", what)
		}
	}
	for _, s := range []string{"a\n", "", "b\n", "burst\n"} {
		write(s)
	}
	seen("a burst of writes")
	for len(changed) > 0 { // a slow burst may be seen in parts
		<-changed
	}
	write("later\n")
	seen("a later change")
}
