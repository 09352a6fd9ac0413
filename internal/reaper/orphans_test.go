package reaper_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/clinit/clinit/internal/reaper"
	"github.com/clinit/clinit/internal/reaper/reapertest"
)

// Commands run back to back get their own exit status, every one, while
// orphans are reaped beside them (os/exec's Wait racing a reaper
// misreported about 40% of them).
func TestBackToBackExitsWithOrphans(t *testing.T) {
	defer reapertest.Orphans(t)()
	const n = 400
	wrong := 0
	for i := range n {
		want := i % 5 // 0 to 3: that exit status; 4: killed
		script := fmt.Sprintf("/bin/true & exit %d", want)
		if want == 4 {
			script = "/bin/true & kill -KILL $$"
		}
		out, err := reaper.Output(context.Background(), []string{"/bin/sh", "-c", script}, reaper.Attrs{})
		var xe *reaper.ExitError
		switch {
		case want == 0 && err == nil:
		case want == 4 && errors.As(err, &xe) && xe.Status.Signal() == syscall.SIGKILL:
		case want > 0 && want < 4 && errors.As(err, &xe) && xe.Code() == want:
		default:
			wrong++
			t.Errorf("command %d: want %d, got %v (output %q)", i, want, err, out)
		}
		if wrong > 10 {
			t.Fatal("giving up")
		}
	}
}
