// Command stamp is the bench's stand-in for a service's first instruction:
// it writes its pid and a CLOCK_MONOTONIC reading, taken as early as a Go
// program can (package initialization, before main), to the file named by
// its first argument (written beside it, then renamed, so that a reader
// never sees half a line). With a second argument "hold" it then stays
// running until killed, as a respawn entry's service does.
//
// What a reading includes beyond the daemon's own work: the exec of
// stamp (`exec stamp FILE` is plain words, started without a shell) and
// its start-up. The bench measures that floor on its own (the
// "floor" row) so that it can be told apart from the daemon's share.
package main

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// t0 is read while the package initializes, before main runs.
var t0 = monotonic()

func monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

func main() {
	if len(os.Args) < 2 {
		os.Stderr.WriteString("usage: stamp FILE [hold]\n")
		os.Exit(2)
	}
	file := os.Args[1]
	line := strconv.Itoa(os.Getpid()) + " " + strconv.FormatInt(t0, 10) + "\n"
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if len(os.Args) > 2 && os.Args[2] == "hold" {
		for {
			time.Sleep(time.Hour)
		}
	}
}
