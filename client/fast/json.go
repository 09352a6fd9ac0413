package fast

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// errNoHead is an answer cut before its head ended: as package client
// reads it, the daemon went away.
var errNoHead = errors.New("no end of the HTTP head")

// parseHTTP splits an HTTP/1.x answer read to its end: the status code,
// the status ("404 Not Found") and the body (cut at Content-Length when
// there is one). An answer to an HTTP/1.0 request is never chunked.
func parseHTTP(b []byte) (code int, status string, body []byte, err error) {
	end := -1
	for i := 0; i+3 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' && b[i+2] == '\r' && b[i+3] == '\n' {
			end = i
			break
		}
	}
	if end < 0 {
		return 0, "", nil, errNoHead
	}
	head, body := b[:end], b[end+4:]
	lines := splitCRLF(head)
	st := lines[0]
	if len(st) < 12 || string(st[:7]) != "HTTP/1." || st[8] != ' ' {
		return 0, "", nil, errors.New("bad status line " + strconv.Quote(string(st)))
	}
	code, err = strconv.Atoi(string(st[9:12]))
	if err != nil || (len(st) > 12 && st[12] != ' ') {
		return 0, "", nil, errors.New("bad status line " + strconv.Quote(string(st)))
	}
	status = string(st[9:])
	for _, h := range lines[1:] {
		name, value, ok := cutHeader(h)
		switch {
		case !ok:
			return 0, "", nil, errors.New("bad header line " + strconv.Quote(string(h)))
		case lowerEq(name, "transfer-encoding"):
			return 0, "", nil, errors.New("a " + value + " body to an HTTP/1.0 request")
		case lowerEq(name, "content-length"):
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > len(body) {
				return 0, "", nil, errors.New("Content-Length " + strconv.Quote(value) + " for a body of " + strconv.Itoa(len(body)) + " bytes")
			}
			body = body[:n]
		}
	}
	return code, status, body, nil
}

func splitCRLF(b []byte) [][]byte {
	var out [][]byte
	for {
		i := 0
		for i+1 < len(b) && !(b[i] == '\r' && b[i+1] == '\n') {
			i++
		}
		if i+1 >= len(b) {
			return append(out, b)
		}
		out = append(out, b[:i])
		b = b[i+2:]
	}
}

// cutHeader splits "Name: value", the value trimmed of spaces and tabs.
func cutHeader(h []byte) (string, string, bool) {
	for i, c := range h {
		if c == ':' {
			v := h[i+1:]
			for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
				v = v[1:]
			}
			for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
				v = v[:len(v)-1]
			}
			return string(h[:i]), string(v), i > 0
		}
	}
	return "", "", false
}

// lowerEq compares an ASCII header name with a lower-case one.
func lowerEq(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// answer is what the fast tell uses of an api.Message or an api.Error.
type answer struct {
	message string   // Message.Message
	err     string   // Error.Error
	lines   []string // Error.Lines
}

// parseAnswer reads one JSON object: the string members "message" and
// "error" and the array of strings "lines" are kept, any other member is
// read and left (a later daemon may add some).
func parseAnswer(b []byte) (answer, error) {
	p := &parser{b: b}
	var a answer
	p.space()
	if !p.eat('{') {
		return a, p.fail("want an object")
	}
	p.space()
	if p.eat('}') {
		return a, p.end()
	}
	for {
		p.space()
		key, err := p.str()
		if err != nil {
			return a, err
		}
		p.space()
		if !p.eat(':') {
			return a, p.fail("want ':'")
		}
		p.space()
		switch key {
		case "message":
			a.message, err = p.str()
		case "error":
			a.err, err = p.str()
		case "lines":
			a.lines, err = p.strs()
		default:
			err = p.value(0)
		}
		if err != nil {
			return a, err
		}
		p.space()
		if p.eat('}') {
			return a, p.end()
		}
		if !p.eat(',') {
			return a, p.fail("want ',' or '}'")
		}
	}
}

// parser reads JSON from b at i.
type parser struct {
	b []byte
	i int
}

// maxDepth bounds the nesting of a value that is skipped.
const maxDepth = 64

func (p *parser) fail(what string) error {
	return errors.New("JSON at byte " + strconv.Itoa(p.i) + ": " + what)
}

func (p *parser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end accepts only white space after the object.
func (p *parser) end() error {
	p.space()
	if p.i != len(p.b) {
		return p.fail("more after the object")
	}
	return nil
}

// str reads a string, its escapes decoded as encoding/json decodes them
// (a lone surrogate is U+FFFD).
func (p *parser) str() (string, error) {
	if !p.eat('"') {
		return "", p.fail("want a string")
	}
	var out []byte
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), nil
		case c < ' ':
			return "", p.fail("control character in a string")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			break
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("bad \\u escape")
			}
			if 0xd800 <= r && r < 0xdc00 { // a high surrogate: a low one should follow
				save := p.i
				if p.eat('\\') && p.eat('u') {
					if r2, ok := p.hex4(); ok && 0xdc00 <= r2 && r2 < 0xe000 {
						out = utf8.AppendRune(out, (r-0xd800)<<10|(r2-0xdc00)+0x10000)
						continue
					}
				}
				p.i = save
				r = utf8.RuneError
			} else if 0xdc00 <= r && r < 0xe000 {
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", p.fail("bad escape")
		}
	}
	return "", p.fail("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}

// strs reads an array of strings, or null.
func (p *parser) strs() ([]string, error) {
	if p.literal("null") {
		return nil, nil
	}
	if !p.eat('[') {
		return nil, p.fail("want an array")
	}
	var out []string
	p.space()
	if p.eat(']') {
		return out, nil
	}
	for {
		p.space()
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		p.space()
		if p.eat(']') {
			return out, nil
		}
		if !p.eat(',') {
			return nil, p.fail("want ',' or ']'")
		}
	}
}

func (p *parser) literal(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// value reads and drops any JSON value.
func (p *parser) value(depth int) error {
	if depth > maxDepth {
		return p.fail("nested too deep")
	}
	if p.i >= len(p.b) {
		return p.fail("want a value")
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, err := p.str()
		return err
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		p.i++
		p.space()
		if p.eat(closing) {
			return nil
		}
		for {
			p.space()
			if c == '{' {
				if _, err := p.str(); err != nil {
					return err
				}
				p.space()
				if !p.eat(':') {
					return p.fail("want ':'")
				}
				p.space()
			}
			if err := p.value(depth + 1); err != nil {
				return err
			}
			p.space()
			if p.eat(closing) {
				return nil
			}
			if !p.eat(',') {
				return p.fail("want ',' or '" + string(closing) + "'")
			}
		}
	case p.literal("true"), p.literal("false"), p.literal("null"):
		return nil
	case c == '-' || ('0' <= c && c <= '9'):
		start := p.i
		for p.i < len(p.b) && (p.b[p.i] == '-' || p.b[p.i] == '+' || p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E' || ('0' <= p.b[p.i] && p.b[p.i] <= '9')) {
			p.i++
		}
		if _, err := strconv.ParseFloat(string(p.b[start:p.i]), 64); err != nil {
			return p.fail("bad number")
		}
		return nil
	}
	return p.fail("want a value")
}
