// Package fast is the command line's tell, `clinit [-c CLTAB] [-s SOCKET]
// GROUP LEVEL` (or LEVEL alone), done with nothing but what a Go process
// has initialised before most of its packages: os, syscall and strconv.
//
// clinit is one binary, the daemon and its client, so every clinit
// process links memberlist, raft, their codecs (net/rpc, encoding/gob,
// html/template) and the HTTP stack, and Go initialises every linked
// package before main: about 2 ms of package initialisation at each
// `clinit GROUP LEVEL` before it could talk to the daemon. Go
// initialises packages in the order of their import paths, each as soon
// as what it imports is initialised; package cmd/clinit/early, imported
// by main, imports only this package, so its init runs before those
// packages' and calls Tell, which does a plain tell there and then and
// exits. Anything else (another flag, -v, a name it does not vouch for,
// no daemon on the socket, a socket it does not trust) returns not
// handled, having sent nothing, and the process goes on to package cli,
// which does it all and says what is wrong.
//
// So this package imports no package that imports unicode, reflect or
// fmt (not strings, bytes, net or encoding/json): it speaks HTTP/1.0
// on the UNIX socket with syscalls, and reads the answer's JSON itself
// (json.go).
package fast

import (
	"errors"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/clinit/clinit/api/wire"
)

// Built-in defaults of the paths the tell needs (SPEC 2); package cli
// uses the same.
const (
	DefaultCltab  = "/etc/cltab"
	DefaultSocket = "/var/run/clinit/clinit.s"
)

// Timeout bounds a request and its answer.
const Timeout = 30 * time.Second

// maxAnswer bounds the answer read, as package client does.
const maxAnswer = 16 << 20

var errTooLong = errors.New("answer over 16 MiB")

// Exit statuses (package cli has the same).
const (
	exitOK       = 0
	exitFail     = 1
	exitNoDaemon = 3
)

// tell is a plain tell's arguments.
type tell struct {
	socket, cltab string
	socketSet     bool
	group, level  string // group "": the node's own group
}

// Tell does the tell args (without the program name) ask for, when they
// are a plain one, and returns its exit status and true, having written
// the daemon's answer to stdout or what failed to stderr. It returns
// false when args are anything else, or nothing was sent to a daemon.
func Tell(args []string, stdout, stderr io.Writer) (int, bool) {
	return tellWithin(Timeout, args, stdout, stderr)
}

func tellWithin(timeout time.Duration, args []string, stdout, stderr io.Writer) (int, bool) {
	t, ok := parse(args)
	if !ok {
		return 0, false
	}
	if !t.socketSet {
		if v, ok := ScanSetting(t.cltab, "socket"); ok {
			t.socket = v
		}
	}
	fd, ok := dial(t.socket, timeout)
	if !ok {
		return 0, false
	}
	defer syscall.Close(fd)
	body := `{"group":"` + quote(t.group) + `","level":"` + quote(t.level) + `"}`
	req := "POST " + wire.PathTell + " HTTP/1.0\r\nHost: clinit\r\n" + wire.VersionHeader + ": " + wire.Version +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	var answer []byte
	err := writeAll(fd, []byte(req))
	if err == nil {
		answer, err = readAll(fd)
	}
	if err != nil {
		msg, code := transportError(t.socket, timeout, err)
		return failed(stderr, msg, code)
	}
	code, status, payload, err := parseHTTP(answer)
	if err == errNoHead {
		msg, code := transportError(t.socket, timeout, err)
		return failed(stderr, msg, code)
	}
	if err != nil {
		return failed(stderr, "clinit: bad answer from the daemon on "+t.socket+": "+err.Error(), exitFail)
	}
	a, err := parseAnswer(payload)
	if code/100 == 2 {
		if err != nil {
			return failed(stderr, "clinit: bad answer from the daemon on "+t.socket+": "+err.Error(), exitFail)
		}
		if a.message != "" {
			io.WriteString(stdout, a.message+"\n")
		}
		return exitOK, true
	}
	// As package cli prints a client.APIError.
	if err != nil || a.err == "" {
		a.err = "daemon answered " + status
	}
	var out []byte
	for _, l := range a.lines {
		out = append(append(out, l...), '\n')
	}
	io.WriteString(stderr, string(out)+"clinit: "+a.err+"\n")
	return exitFail, true
}

func failed(stderr io.Writer, msg string, code int) (int, bool) {
	io.WriteString(stderr, msg+"\n")
	return code, true
}

// transportError is package client's sentence for a daemon that stopped
// answering once asked, and its exit status.
func transportError(socket string, timeout time.Duration, err error) (string, int) {
	if err == syscall.EAGAIN { // SO_RCVTIMEO or SO_SNDTIMEO ran out
		return "clinit: the clinit daemon on " + socket + " did not answer in time: no answer in " + timeout.String(), exitFail
	}
	return "clinit: " + NoDaemon(socket), exitNoDaemon
}

// NoDaemon is what the command line says when no daemon answers on
// socket (package client says it too).
func NoDaemon(socket string) string {
	return "no clinit daemon answers on " + socket + ": is clinit -d running?"
}

// parse reads args the way package cli's flags do, for the one case of
// a plain tell: -s/--socket and -c/--cltab in all their spellings,
// anywhere, the last one winning; "--"; one or two names.
func parse(args []string) (tell, bool) {
	t := tell{socket: DefaultSocket, cltab: DefaultCltab}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		var name, value string
		hasValue := false
		switch {
		case a[1] == '-':
			name = a[2:]
			for j := 0; j < len(name); j++ {
				if name[j] == '=' {
					name, value, hasValue = name[:j], name[j+1:], true
					break
				}
			}
			if name != "socket" && name != "cltab" {
				return tell{}, false
			}
		case a[1] == 's' || a[1] == 'c':
			name = "socket"
			if a[1] == 'c' {
				name = "cltab"
			}
			if len(a) > 2 {
				value, hasValue = a[2:], true
				if value[0] == '=' {
					value = value[1:]
				}
			}
		default:
			return tell{}, false
		}
		if !hasValue {
			if i+1 >= len(args) {
				return tell{}, false
			}
			i++
			value = args[i]
		}
		if value == "" {
			return tell{}, false
		}
		if name == "socket" {
			t.socket, t.socketSet = value, true
		} else {
			t.cltab = value
		}
	}
	switch len(pos) {
	case 1:
		t.level = pos[0]
	case 2:
		t.group, t.level = pos[0], pos[1]
	default:
		return tell{}, false
	}
	if !plainName(t.level) || (len(pos) == 2 && !plainName(t.group)) {
		return tell{}, false
	}
	return t, true
}

// plainName reports whether s is a name this package vouches for: 1 to
// wire.MaxName bytes of printable ASCII, none of them ':' or ','. Every
// such name passes cltab.CheckName; any other goes to package cli, which
// checks it and says what is wrong.
func plainName(s string) bool {
	if s == "" || len(s) > wire.MaxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' || c == ',' {
			return false
		}
	}
	return true
}

// quote escapes a plain name for a JSON string: only '"' and '\' need it.
func quote(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// ScanSetting finds the first `:::name:value` line with a value in a
// cltab, without validating the rest of the file (the cltab may be
// invalid: that is what a reread reports).
func ScanSetting(path, name string) (string, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	prefix := ":::" + name + ":"
	for len(data) > 0 {
		line := data
		for i, c := range data {
			if c == '\n' {
				line, data = data[:i], data[i+1:]
				break
			}
		}
		if len(line) == len(data) {
			data = nil
		}
		for len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) > len(prefix) && string(line[:len(prefix)]) == prefix {
			return string(line[len(prefix):]), true
		}
	}
	return "", false
}

// dial connects to the daemon's socket, bounded by Timeout both ways,
// and checks who listens (as package client does): root or this user.
// Any failure is false: nothing was sent, package cli says what is wrong.
func dial(socket string, timeout time.Duration) (int, bool) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, false
	}
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	if syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv) != nil ||
		syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv) != nil ||
		syscall.Connect(fd, &syscall.SockaddrUnix{Name: socket}) != nil {
		syscall.Close(fd)
		return -1, false
	}
	cred, err := syscall.GetsockoptUcred(fd, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err != nil || (cred.Uid != 0 && int(cred.Uid) != os.Geteuid()) {
		syscall.Close(fd)
		return -1, false
	}
	return fd, true
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// readAll reads the answer until the daemon closes the connection, as
// it does after answering an HTTP/1.0 request.
func readAll(fd int) ([]byte, error) {
	b := make([]byte, 0, 4096)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := syscall.Read(fd, b[len(b):cap(b)])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, err
		case n == 0:
			return b, nil
		}
		b = b[:len(b)+n]
		if len(b) > maxAnswer {
			return nil, errTooLong
		}
	}
}
