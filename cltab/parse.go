package cltab

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Load reads the file at path and calls Parse. A missing or unreadable
// file gives an error wrapping the os error (so errors.Is(err,
// fs.ErrNotExist) tells "no cltab" from ErrInvalid); the os error names
// the path.
func Load(path string) (*Tab, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read cltab: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates cltab text. path is used only in error
// messages. On any problem it returns (nil, Errors) with every problem
// found, in line order, so an operator fixes the file in one pass.
func Parse(path string, data []byte) (*Tab, error) {
	p := &parser{
		path:    path,
		tab:     &Tab{Path: path, Settings: map[string]Setting{}},
		tagLine: map[string]int{},
	}
	if n, msg := sizeError(data); msg != "" {
		return nil, Errors{{Path: path, Line: n, Msg: msg}}
	}
	// Split by hand rather than with bufio.Scanner, so that a line over
	// the cap gets its own message with its number.
	for i, line := range strings.Split(string(data), "\n") {
		p.line(i+1, line)
	}
	p.crossCheck()
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return p.tab, nil
}

// parser holds the state that spans lines: what was seen where, for the
// duplicate checks, and the problems so far.
type parser struct {
	path    string
	tab     *Tab
	tagLine map[string]int
	errs    Errors
}

func (p *parser) errorf(n int, format string, args ...any) {
	p.errs = append(p.errs, &Error{Path: p.path, Line: n, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) line(n int, line string) {
	// All trailing CRs go, not just one, so that no command can end in a
	// CR that a re-rendered file would lose.
	line = strings.TrimRight(line, "\r")
	if msg := lineError(line); msg != "" {
		p.errorf(n, "%s", msg)
		return
	}
	if !utf8.ValidString(line) {
		p.errorf(n, "line is not valid UTF-8")
		return
	}
	if strings.IndexByte(line, 0) >= 0 {
		p.errorf(n, "line contains a NUL byte")
		return
	}
	trimmed := strings.TrimLeftFunc(line, unicode.IsSpace)
	switch {
	case trimmed == "" || trimmed[0] == '#':
		return
	case strings.HasPrefix(line, ":::"):
		p.setting(n, line[3:])
	default:
		p.entry(n, line)
	}
}

func (p *parser) entry(n int, line string) {
	f := strings.SplitN(line, ":", 5)
	if len(f) < 5 {
		p.errorf(n, "missing field: want group:tag:runlevels:mode:command")
		return
	}
	e := &Entry{Group: f[0], Tag: f[1], RawLevels: f[2], Mode: Mode(f[3]), Command: f[4], Line: n}
	ok := true
	if !ValidName(e.Group) {
		p.errorf(n, "%s", BadName("group", e.Group))
		ok = false
	}
	if !ValidName(e.Tag) {
		p.errorf(n, "%s", BadName("tag", e.Tag))
		ok = false
	} else if first, dup := p.tagLine[e.Tag]; dup {
		p.errorf(n, "duplicate tag %s (first at line %d)", quote(e.Tag), first)
		ok = false
	} else {
		p.tagLine[e.Tag] = n
	}
	levels, err := parseLevels(e.RawLevels)
	if err != "" {
		p.errorf(n, "%s", err)
		ok = false
	}
	e.Levels = levels
	switch e.Mode {
	case ModeWait, ModeOnce, ModeRespawn, ModeTest:
		if strings.TrimSpace(e.Command) == "" {
			p.errorf(n, "empty command (only mode off may have none)")
			ok = false
		}
	case ModeOff:
	default:
		p.errorf(n, "unknown mode %s (want wait, once, respawn, test or off)", quote(string(e.Mode)))
		ok = false
	}
	if ok {
		p.tab.Entries = append(p.tab.Entries, e)
	}
}

// parseLevels expands a runlevels field: a comma-separated list when it
// has a comma, else one level per character. The second result is a
// message, empty when the field is good.
func parseLevels(raw string) ([]string, string) {
	if raw == "" {
		return nil, "missing runlevels: want e.g. 12 or long3,"
	}
	if strings.IndexFunc(raw, unicode.IsSpace) >= 0 {
		return nil, fmt.Sprintf("bad runlevels %s: whitespace is not allowed", quote(raw))
	}
	var items []string
	if strings.Contains(raw, ",") {
		items = strings.Split(raw, ",")
	} else {
		for _, r := range raw {
			items = append(items, string(r))
		}
	}
	var levels []string
	seen := map[string]bool{}
	for _, l := range items {
		if l != "" && !ValidName(l) {
			return nil, BadName("level", l)
		}
		if l != "" && !seen[l] {
			seen[l] = true
			levels = append(levels, l)
		}
	}
	if len(levels) == 0 {
		return nil, fmt.Sprintf("bad runlevels %s: no level", quote(raw))
	}
	return levels, ""
}

func (p *parser) setting(n int, rest string) {
	name, value, found := strings.Cut(rest, ":")
	if !found {
		p.errorf(n, "missing value: want :::name:value")
		return
	}
	check, known := settingCheck(name)
	if !known {
		p.errorf(n, "unknown setting %s (known: %s)", quote(name), strings.Join(KnownSettings(), ", "))
		return
	}
	// Surrounding blanks in a value are never meant (a path or a number
	// with a trailing space), so they are dropped before checking.
	value = strings.TrimSpace(value)
	if first, dup := p.tab.Settings[name]; dup {
		p.errorf(n, "duplicate setting %q (first at line %d)", name, first.Line)
	}
	if err := check(value); err != nil {
		p.errorf(n, "bad value for %s: %s: %v", name, quote(value), err)
		return
	}
	if _, dup := p.tab.Settings[name]; !dup {
		p.tab.Settings[name] = Setting{Name: name, Value: value, Line: n}
	}
}

// quote quotes s for a message, cut short so that a runaway line does not
// make a runaway error (they go back to clients and into logs).
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
