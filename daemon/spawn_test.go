package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clinit/clinit/internal/reaper"
)

// The daemon's own commands (the fencing command) run through the reaper
// with the children's environment: their status is theirs, and they do
// not speak to systemd in the daemon's name.
func TestRunCommand(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("CLINIT_TAG", "inherited")
	eng := testEngine(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := eng.RunCommand(ctx, []string{"/bin/sh", "-c", `echo "[$NOTIFY_SOCKET$CLINIT_TAG]"; exit 4`})
	var xe *reaper.ExitError
	if !errors.As(err, &xe) || xe.Code() != 4 {
		t.Errorf("err = %v, want exit status 4", err)
	}
	if string(out) != "[]\n" {
		t.Errorf("output %q: the daemon's NOTIFY_SOCKET or CLINIT_* reached the command", out)
	}
}
