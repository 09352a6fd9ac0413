package t

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var seqLine = regexp.MustCompile(`\tseq (\d+)\t`)

// seqs are the numbers of the counter's lines in a log, in order.
func seqs(log string) []int {
	var out []int
	for _, m := range seqLine.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// logrotate renames the --log file and sends SIGHUP: the daemon opens a
// new file of the name and writes there from then on. A child writing
// all along loses no line: what is not in the renamed file is in the new
// one, in order, and both together hold every line the daemon logged.
func TestLogReopenedOnSIGHUP(t *testing.T) {
	t.Parallel()
	dir := newCaseDir(t)
	writeFile(t, filepath.Join(dir, "cltab"),
		"web:count:1:once:i=0; while :; do echo seq $i; i=$((i+1)); sleep 0.01; done\n")
	logPath := filepath.Join(dir, "clinit.log")
	d := launch(t, dir, "--log", logPath)
	d.waitReady()
	d.tell("web", "1")
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	eventually(t, hang, func() bool { return len(seqs(read(logPath))) >= 20 }, "20 lines of the counter in the log")

	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, hang, func() bool {
		s := read(logPath)
		return strings.Contains(s, "log file reopened") && len(seqs(s)) >= 20
	}, "a new log file with the reopening and 20 lines of the counter")
	d.tellDone("web", "9")
	d.clinit("-k")
	d.waitExit()

	old, cur := read(rotated), read(logPath)
	if strings.Contains(old, "log file reopened") {
		t.Errorf("the reopening was logged to the renamed file")
	}
	if !strings.Contains(cur, "every group stopped") {
		t.Errorf("the daemon's own lines after the reopening are not in the new file:\n%s", cur)
	}
	before, after := seqs(old), seqs(cur)
	if len(before) == 0 || len(after) == 0 {
		t.Fatalf("counter lines: %d in the renamed file, %d in the new one", len(before), len(after))
	}
	all := append(append([]int{}, before...), after...)
	for i, n := range all {
		if n != i {
			t.Fatalf("counter lines across the two files are not 0..%d in order: line %d is seq %d (renamed file ends at %d, new starts at %d)",
				len(all)-1, i, n, before[len(before)-1], after[0])
		}
	}
	// Everything the daemon logged (its stderr has it all) is in one of
	// the files.
	if logged := seqs(d.log.String()); len(logged) != len(all) {
		t.Errorf("the daemon logged %d counter lines, the two files hold %d", len(logged), len(all))
	}
}
