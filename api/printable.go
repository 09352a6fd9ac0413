package api

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns s with every control character, other unprintable
// rune and invalid UTF-8 byte written as a Go escape (\n, \x1b, \xff),
// so that what a peer or a request named cannot forge a line of its own
// or send escape sequences to a terminal. Printable text is unchanged.
func Printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

func isPrintable(s string) bool {
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			ascii = false
		}
	}
	if ascii {
		return true // the common case, without decoding runes
	}
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
