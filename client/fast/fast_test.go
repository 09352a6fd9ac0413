package fast

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/testkit"
)

func TestParse(t *testing.T) {
	def := tell{socket: DefaultSocket, cltab: DefaultCltab}
	with := func(f func(*tell)) tell { t := def; f(&t); return t }
	for _, c := range []struct {
		args []string
		want tell
		ok   bool
	}{
		{[]string{"web", "2"}, with(func(t *tell) { t.group, t.level = "web", "2" }), true},
		{[]string{"2"}, with(func(t *tell) { t.level = "2" }), true},
		{[]string{"-s", "/s", "web", "2"}, with(func(t *tell) { t.socket, t.socketSet, t.group, t.level = "/s", true, "web", "2" }), true},
		{[]string{"-s/s", "web", "2"}, with(func(t *tell) { t.socket, t.socketSet, t.group, t.level = "/s", true, "web", "2" }), true},
		{[]string{"-s=/s", "web", "2"}, with(func(t *tell) { t.socket, t.socketSet, t.group, t.level = "/s", true, "web", "2" }), true},
		{[]string{"--socket=/s", "web", "2"}, with(func(t *tell) { t.socket, t.socketSet, t.group, t.level = "/s", true, "web", "2" }), true},
		{[]string{"web", "--socket", "/a", "2", "--socket", "/b"}, with(func(t *tell) { t.socket, t.socketSet, t.group, t.level = "/b", true, "web", "2" }), true},
		{[]string{"-c", "/etc/x", "--cltab=/etc/y", "web", "2"}, with(func(t *tell) { t.cltab, t.group, t.level = "/etc/y", "web", "2" }), true},
		{[]string{"-cX", "-", "2"}, with(func(t *tell) { t.cltab, t.group, t.level = "X", "-", "2" }), true},
		{[]string{"--", "-web", "2"}, with(func(t *tell) { t.group, t.level = "-web", "2" }), true},
		{[]string{"web", `a"b\c`}, with(func(t *tell) { t.group, t.level = "web", `a"b\c` }), true},
		// Everything else is package cli's.
		{nil, tell{}, false},
		{[]string{"a", "b", "c"}, tell{}, false},
		{[]string{"-v", "web", "2"}, tell{}, false},
		{[]string{"-vs", "/s", "web", "2"}, tell{}, false},
		{[]string{"--status"}, tell{}, false},
		{[]string{"-k"}, tell{}, false},
		{[]string{"-d"}, tell{}, false},
		{[]string{"--keeper", "/d"}, tell{}, false},
		{[]string{"--sock", "/s", "web", "2"}, tell{}, false},
		{[]string{"web", "2", "-s"}, tell{}, false},
		{[]string{"--socket=", "web", "2"}, tell{}, false},
		{[]string{"web", "a,b"}, tell{}, false},
		{[]string{"web:x", "2"}, tell{}, false},
		{[]string{"web", "2 3"}, tell{}, false},
		{[]string{"web", "é"}, tell{}, false},
		{[]string{"web", "\x01"}, tell{}, false},
		{[]string{"web", ""}, tell{}, false},
		{[]string{"web", strings.Repeat("x", 129)}, tell{}, false},
		{[]string{"-test.run", "X"}, tell{}, false},
	} {
		got, ok := parse(c.args)
		if ok != c.ok || got != c.want {
			t.Errorf("parse(%q) = %+v, %v; want %+v, %v", c.args, got, ok, c.want, c.ok)
		}
	}
}

// Every name the fast tell takes is one package cli takes too.
func TestPlainNamesAreNames(t *testing.T) {
	for c := 0; c < 256; c++ {
		s := string([]byte{byte(c)})
		if plainName(s) && !cltab.ValidName(s) {
			t.Errorf("plainName(%q) but cltab refuses it", s)
		}
	}
	long := strings.Repeat("a", cltab.MaxName)
	if !plainName(long) || plainName(long+"a") {
		t.Errorf("plainName's length bound is not cltab.MaxName (%d)", cltab.MaxName)
	}
}

func TestScanSetting(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cltab")
	if err := os.WriteFile(p, []byte("# :::socket:/not\n:::socket:\r\nG:a:1:once:true\r\n:::socket:/run/s\r\n:::socket:/later\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, ok := ScanSetting(p, "socket"); !ok || v != "/run/s" {
		t.Errorf("ScanSetting = %q, %v; want /run/s", v, ok)
	}
	if v, ok := ScanSetting(p, "clstat"); ok {
		t.Errorf("ScanSetting(clstat) = %q, want none", v)
	}
	if err := os.WriteFile(p, []byte(":::socket:/last/line"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, ok := ScanSetting(p, "socket"); !ok || v != "/last/line" {
		t.Errorf("ScanSetting without a final newline = %q, %v", v, ok)
	}
	if _, ok := ScanSetting(filepath.Join(dir, "none"), "socket"); ok {
		t.Error("ScanSetting of a missing file found something")
	}
}

func TestParseAnswer(t *testing.T) {
	for _, c := range []struct {
		in   string
		want answer
		bad  bool
	}{
		{`{"message":"web: going to level 2"}` + "\n", answer{message: "web: going to level 2"}, false},
		{`{"error":"invalid","lines":["a:1: x","a:2: y"]}`, answer{err: "invalid", lines: []string{"a:1: x", "a:2: y"}}, false},
		{` { "later" : {"a":[1,2.5e3,-3,true,false,null,{"b":"c"}]}, "message" : "m\u00e9\ud83d\ude00\n\"\\\/" } `, answer{message: "mé😀\n\"\\/"}, false},
		{`{"message":"lone \udc00 and \ud800x"}`, answer{message: "lone \ufffd and \ufffdx"}, false},
		{`{"lines":null}`, answer{}, false},
		{`{}`, answer{}, false},
		{``, answer{}, true},
		{`[]`, answer{}, true},
		{`{"message":"x"`, answer{}, true},
		{`{"message":"x"} {}`, answer{}, true},
		{`{"message":"a` + "\n" + `"}`, answer{}, true},
		{`{"message":"\x"}`, answer{}, true},
		{`{"message":"\u12"}`, answer{}, true},
		{`{"message":1}`, answer{}, true},
		{`{"lines":["a",1]}`, answer{}, true},
		{`{"x":01.2.3}`, answer{}, true},
		{`{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, answer{}, true},
	} {
		got, err := parseAnswer([]byte(c.in))
		if c.bad {
			if err == nil {
				t.Errorf("parseAnswer(%q) = %+v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got.message != c.want.message || got.err != c.want.err || strings.Join(got.lines, "|") != strings.Join(c.want.lines, "|") {
			t.Errorf("parseAnswer(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// FuzzParseAnswer: what encoding/json writes of api.Message and
// api.Error, the fast tell reads back the same; and no input panics.
func FuzzParseAnswer(f *testing.F) {
	f.Add("web: going to level 2", "no such group: <x> & \"y\"", "a\u2028b\x00c", []byte(`{"message":"\ud83d"}`))
	f.Fuzz(func(t *testing.T, msg, errMsg, line string, raw []byte) {
		parseAnswer(raw)
		if !utf8Valid(msg) || !utf8Valid(errMsg) || !utf8Valid(line) {
			return // encoding/json writes U+FFFD for invalid UTF-8
		}
		b, _ := json.Marshal(api.Message{Message: msg})
		a, err := parseAnswer(b)
		if err != nil || a.message != msg {
			t.Fatalf("message %q: json %s read back as %q, %v", msg, b, a.message, err)
		}
		b, _ = json.Marshal(api.Error{Error: errMsg, Lines: []string{line, msg}})
		a, err = parseAnswer(b)
		if err != nil || a.err != errMsg || len(a.lines) != 2 || a.lines[0] != line || a.lines[1] != msg {
			t.Fatalf("error %q %q: json %s read back as %+v, %v", errMsg, line, b, a, err)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\ufffd") == s }

func TestParseHTTP(t *testing.T) {
	code, status, body, err := parseHTTP([]byte("HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\ncontent-length: 4\r\n\r\nbodyextra"))
	if err != nil || code != 404 || status != "404 Not Found" || string(body) != "body" {
		t.Errorf("parseHTTP = %d %q %q %v", code, status, body, err)
	}
	code, _, body, err = parseHTTP([]byte("HTTP/1.1 200 OK\r\n\r\nto the end"))
	if err != nil || code != 200 || string(body) != "to the end" {
		t.Errorf("parseHTTP without Content-Length = %d %q %v", code, body, err)
	}
	for _, bad := range []string{"", "HTTP/1.0 200 OK\r\n", "SPDY 200 OK\r\n\r\n", "HTTP/1.0 2x0 OK\r\n\r\n", "HTTP/1.0 2000\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n", "HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nshort", "HTTP/1.0 200 OK\r\nno colon\r\n\r\n"} {
		if _, _, _, err := parseHTTP([]byte(bad)); err == nil {
			t.Errorf("parseHTTP(%q): no error", bad)
		}
	}
}

// serve answers on a UNIX socket with a real net/http server, as the
// daemon does, and records the requests it was sent.
func serve(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body []byte)) (string, <-chan *http.Request) {
	t.Helper()
	sock, ln := testkit.ListenUnix(t)
	got := make(chan *http.Request, 10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		got <- r
		h(w, r, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock, got
}

func TestTell(t *testing.T) {
	sock, reqs := serve(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req api.TellRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch req.Group {
		case "nosuch":
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.Error{Error: "no such group: " + req.Group})
		case "invalid":
			// Over 2 KiB: net/http would chunk it in an HTTP/1.1 answer.
			lines := []string{}
			for i := 0; i < 100; i++ {
				lines = append(lines, "/etc/cltab:1: a problem <of> 50 bytes or so, to make it long")
			}
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(api.Error{Error: "invalid cltab", Lines: lines})
		case "plain":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not json")
		default:
			json.NewEncoder(w).Encode(api.Message{Message: req.Group + ": going to level " + req.Level + " <&>"})
		}
	})
	run := func(args ...string) (string, string, int, bool) {
		var out, errOut bytes.Buffer
		code, ok := Tell(append([]string{"-s", sock}, args...), &out, &errOut)
		return out.String(), errOut.String(), code, ok
	}

	out, errOut, code, ok := run("we\"b\\", "2")
	if !ok || code != 0 || out != "we\"b\\: going to level 2 <&>\n" || errOut != "" {
		t.Fatalf("tell: handled %v, status %d, stdout %q, stderr %q", ok, code, out, errOut)
	}
	r := <-reqs
	var req api.TellRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req != (api.TellRequest{Group: "we\"b\\", Level: "2"}) {
		t.Errorf("the daemon read %+v, %v", req, err)
	}
	if r.Method != http.MethodPost || r.URL.Path != api.PathTell || r.Header.Get(api.VersionHeader) != api.Version || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s, headers %v", r.Method, r.URL.Path, r.Header)
	}

	if out, errOut, code, ok = run("2"); !ok || code != 0 || out != ": going to level 2 <&>\n" {
		t.Errorf("tell LEVEL: handled %v, status %d, stdout %q, stderr %q", ok, code, out, errOut)
	}
	if r := <-reqs; true {
		json.NewDecoder(r.Body).Decode(&req)
		if req.Group != "" || req.Level != "2" {
			t.Errorf("tell LEVEL sent %+v, want no group", req)
		}
	}

	if out, errOut, code, ok = run("nosuch", "1"); !ok || code != 1 || out != "" || errOut != "clinit: no such group: nosuch\n" {
		t.Errorf("unknown group: handled %v, status %d, stdout %q, stderr %q", ok, code, out, errOut)
	}
	out, errOut, code, ok = run("invalid", "1")
	if lines := strings.Split(errOut, "\n"); !ok || code != 1 || out != "" || len(lines) != 102 || lines[0] != "/etc/cltab:1: a problem <of> 50 bytes or so, to make it long" || lines[100] != "clinit: invalid cltab" {
		t.Errorf("invalid cltab: handled %v, status %d, stdout %q, stderr %q", ok, code, out, errOut)
	}
	if out, errOut, code, ok = run("plain", "1"); !ok || code != 1 || errOut != "clinit: daemon answered 503 Service Unavailable\n" {
		t.Errorf("an answer that is not JSON: handled %v, status %d, stdout %q, stderr %q", ok, code, out, errOut)
	}
}

// Nothing is sent when no daemon listens: package cli says why.
func TestTellNotHandled(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o600)
	for _, args := range [][]string{{"-s", filepath.Join(dir, "none"), "G", "1"}, {"-s", plain, "G", "1"}, {"-v", "G", "1"}} {
		var out, errOut bytes.Buffer
		if code, ok := Tell(args, &out, &errOut); ok || out.Len() != 0 || errOut.Len() != 0 {
			t.Errorf("Tell(%q) = %d, %v, stdout %q, stderr %q; want not handled, nothing written", args, code, ok, out.String(), errOut.String())
		}
	}
}

// A daemon that hangs up before answering is no daemon (status 3); one
// that does not answer in time is said so.
func TestTellTransportErrors(t *testing.T) {
	sock, ln := testkit.ListenUnix(t)
	hangUp := make(chan bool, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			if <-hangUp {
				c.Close()
			} else {
				defer c.Close() // never answered
			}
		}
	}()
	hangUp <- true
	var out, errOut bytes.Buffer
	code, ok := Tell([]string{"-s", sock, "G", "1"}, &out, &errOut)
	if !ok || code != exitNoDaemon || errOut.String() != "clinit: "+NoDaemon(sock)+"\n" {
		t.Errorf("hung up: handled %v, status %d, stderr %q", ok, code, errOut.String())
	}
	hangUp <- false
	errOut.Reset()
	start := time.Now()
	code, ok = tellWithin(200*time.Millisecond, []string{"-s", sock, "G", "1"}, &out, &errOut)
	want := "clinit: the clinit daemon on " + sock + " did not answer in time: no answer in 200ms\n"
	if !ok || code != exitFail || errOut.String() != want {
		t.Errorf("no answer: handled %v, status %d, stderr %q; want %q", ok, code, errOut.String(), want)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("gave up after %v, before its timeout", d)
	}
}
