package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"

	"github.com/clinit/clinit/cltab"
)

// check is clinit --check: it validates the cltab and the hactl that goes
// with it (the --hactl path, else the cltab's setting, else the default),
// and warns of what is valid but most likely not meant. Exit 0 or 1.
func check(o *options, stdout, stderr io.Writer) int {
	t, err := cltab.Load(o.cltab)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	for _, w := range t.Warnings.Lines() {
		fmt.Fprintln(stderr, w)
	}
	fmt.Fprintf(stdout, "%s: ok: %d entries in %d groups\n", o.cltab, len(t.Entries), len(t.Groups()))
	path := o.path("hactl", "hactl", t)
	h, err := cltab.LoadHactl(path)
	var invalid cltab.Errors
	if errors.As(err, &invalid) || err == nil {
		// Every problem at once: those of the lines, then the others.
		invalid = append(invalid, cltab.CheckHactl(t, h)...)
		sort.SliceStable(invalid, func(i, j int) bool { return invalid[i].Line < invalid[j].Line })
		if len(invalid) > 0 {
			err = invalid
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitFail
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		// No hactl (a missing one is empty) is fine, unless named.
		if o.flags.Lookup("hactl").Changed {
			fmt.Fprintf(stderr, "%s: no such hactl\n", path)
			return ExitFail
		}
		return ExitOK
	}
	for _, w := range cltab.LetterWarnings(t, h) {
		fmt.Fprintln(stderr, w)
	}
	fmt.Fprintf(stdout, "%s: ok: %d HA groups\n", path, len(h.Groups))
	return ExitOK
}
