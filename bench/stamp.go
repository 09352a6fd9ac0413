package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The latency figures end at a service's "first instruction". What the
// bench can see of it is a CLOCK_MONOTONIC reading that the service takes
// and writes to a file as soon as it can: the service is `exec STAMP FILE`
// run by the daemon's `/bin/sh -c`, so a reading includes the start of
// /bin/sh, its exec of the helper and the helper's own start-up (for a C
// helper, static: the kernel's exec and a few instructions; for the Go
// helper, the Go runtime's start, about a millisecond more). The "floor"
// row measures exactly that part without a daemon.
//
// The C helper is preferred; it needs a C compiler, so without one the
// bench falls back to the Go helper in bench/stamp and says so.

// stampC is the C helper: argv[1] is the file, argv[2] "hold" keeps it
// running until killed.
const stampC = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (argc < 2) return 2;
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
	FILE *f = fopen(tmp, "w");
	if (!f) return 1;
	fprintf(f, "%d %lld\n", (int)getpid(), (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	if (fclose(f) != 0 || rename(tmp, argv[1]) != 0) return 1;
	if (argc > 2 && strcmp(argv[2], "hold") == 0)
		for (;;) pause();
	return 0;
}
`

// buildStamp builds the helper into dir and returns its path and kind:
// "c (static)", "c (dynamic)" or "go".
func buildStamp(ctx context.Context, dir, kind string) (path, built string, err error) {
	switch kind {
	case "c", "go", "auto":
	default:
		return "", "", fmt.Errorf("--stamp %q: want c, go or auto", kind)
	}
	if kind != "go" {
		path, static, err := buildStampC(ctx, dir)
		if err == nil && static {
			return path, "c (static)", nil
		}
		if err == nil {
			return path, "c (dynamic)", nil
		}
		if kind == "c" {
			return "", "", err
		}
	}
	if path, err = buildStampGo(ctx, dir); err != nil {
		return "", "", err
	}
	return path, "go", nil
}

// buildStampGo builds the Go helper (bench/stamp) into dir. Beside the C
// helper it is the floor of a Go program's start: the exec of a static Go
// binary to its package initialisation.
func buildStampGo(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, "stamp-go")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", path, "github.com/clinit/clinit/bench/stamp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build bench/stamp: %v: %s", err, out)
	}
	return path, nil
}

func buildStampC(ctx context.Context, dir string) (path string, static bool, err error) {
	src := filepath.Join(dir, "stamp.c")
	if err := os.WriteFile(src, []byte(stampC), 0o644); err != nil {
		return "", false, err
	}
	path = filepath.Join(dir, "stamp-c")
	cc := strings.Fields(os.Getenv("CC"))
	if len(cc) == 0 {
		cc = []string{"cc"}
	}
	// Static if the C library allows it (no dynamic loader to run).
	var last error
	for _, static := range []bool{true, false} {
		args := append(cc[1:len(cc):len(cc)], "-O2", "-o", path, src)
		if static {
			args = append(args, "-static")
		}
		out, err := exec.CommandContext(ctx, cc[0], args...).CombinedOutput()
		if err == nil {
			return path, static, nil
		}
		last = fmt.Errorf("%s: %v: %s", cc[0], err, out)
	}
	return "", false, last
}

// stampReading is what the helper wrote.
type stampReading struct {
	pid int
	ns  int64 // CLOCK_MONOTONIC
}

// readStamp reads a helper's file; os.ErrNotExist until it has written.
func readStamp(file string) (stampReading, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return stampReading{}, err
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return stampReading{}, fmt.Errorf("%s: bad stamp %q", file, data)
	}
	pid, err1 := strconv.Atoi(f[0])
	ns, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return stampReading{}, fmt.Errorf("%s: bad stamp %q", file, data)
	}
	return stampReading{pid: pid, ns: ns}, nil
}

// waitStamp waits for the helper's file to be renamed into place, told
// by w, a watch of its directory set before the clock started: the bench
// sleeps meanwhile instead of polling, so it takes no CPU from the daemon
// and the helper. The figure is the helper's own clock reading anyway.
func waitStamp(w *dirWatch, file string, timeout time.Duration) (stampReading, error) {
	dir, name := filepath.Split(file)
	if _, err := w.waitFile(dir, name, func(data []byte) bool { return true }, timeout); err != nil {
		return stampReading{}, err
	}
	return readStamp(file)
}
