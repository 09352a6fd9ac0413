package cltab

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/clinit/clinit/api/wire"
)

// MaxName is the longest name, in bytes: group, tag, level and node names
// end up in status lines, file names, metrics labels and the argument of
// the stomith command, and a host name is at most 64 bytes on Linux.
const MaxName = wire.MaxName

// NameRule says what a name may be, for messages.
const NameRule = "want 1 to 128 printable characters, none of them ':', ',' or whitespace"

// CheckName is the one rule for group, tag, level and node names (SPEC
// 1), wherever they come from: the cltab, the hactl, the command line,
// the socket, gossip. A name is read in lines and fields split at
// whitespace, ':' and ','; a name that holds one of them, a control
// character or invalid UTF-8 forges or splits fields (a newline in a
// node name made a line of its own in hastat), and would be seen
// differently by different readers. The error says what is wrong.
func CheckName(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > MaxName:
		return fmt.Errorf("%d bytes, over %d", len(s), MaxName)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case r == ':' || r == ',':
			return fmt.Errorf("holds %q", r)
		case unicode.IsSpace(r):
			return fmt.Errorf("holds whitespace %s", strconv.QuoteRune(r))
		case !unicode.IsPrint(r):
			return fmt.Errorf("holds the unprintable %s", strconv.QuoteRuneToASCII(r))
		}
	}
	return nil
}

// ValidName reports whether s passes CheckName.
func ValidName(s string) bool { return CheckName(s) == nil }

// BadName is the message for a bad name of a kind ("group", "node"...,
// or "" for just "name"), "" for a good name:
// `bad group name "x y": holds whitespace ' ' (want ...)`.
func BadName(kind, s string) string {
	err := CheckName(s)
	if err == nil {
		return ""
	}
	if kind != "" {
		kind += " "
	}
	return fmt.Sprintf("bad %sname %s: %v (%s)", kind, quote(s), err, NameRule)
}
