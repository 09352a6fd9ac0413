package cltab

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Caps on a cltab or hactl, well past any real one: a file is read
// whole, replicated whole to every node, and parsed on every change, so
// a runaway one (a log written to the wrong path, a key holder's
// mistake) must be refused where it is, not carried round the cluster.
// A command is run by /bin/sh -c as one argument, which Linux caps at
// 128 KiB.
const (
	MaxSize = 1 << 20  // bytes in a file
	MaxLine = 64 << 10 // bytes in a line
)

// readCapped reads at most MaxSize+1 bytes of the file at path: enough
// for Parse to tell that it is too big, without reading it all.
func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxSize+1))
}

// sizeError is the error of a file over MaxSize, at the line where the
// cap is crossed, or "" for a file within it.
func sizeError(data []byte) (line int, msg string) {
	if len(data) <= MaxSize {
		return 0, ""
	}
	return strings.Count(string(data[:MaxSize]), "\n") + 1,
		fmt.Sprintf("the file is over %d bytes (1 MiB) from this line on: refusing it whole", MaxSize)
}

// lineError is the message for a line over MaxLine, "" for one within it.
func lineError(line string) string {
	if len(line) <= MaxLine {
		return ""
	}
	return fmt.Sprintf("line is %d bytes, over the %d-byte (64 KiB) limit", len(line), MaxLine)
}
