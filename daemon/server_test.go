package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// testServer runs an engine on tab (commands are real) and returns its
// server; everything stops at the end of the test.
func testServer(t testing.TB, tab string) *Server {
	t.Helper()
	return NewServer(testEngine(t, tab, nil), zap.NewNop(), ServerOptions{})
}

// testEngine runs an engine of node n1 on tab in a temporary directory,
// its Config set further by with (nil: nothing more); it is shut down
// at the end of the test.
func testEngine(t testing.TB, tab string, with func(dir string, c *Config)) *Engine {
	t.Helper()
	eng := newTestEngine(t, tab, with)
	runTestEngine(t, eng)
	return eng
}

// newTestEngine is testEngine's engine, not running yet.
func newTestEngine(t testing.TB, tab string, with func(dir string, c *Config)) *Engine {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "cltab")
	if err := os.WriteFile(path, []byte(tab), 0o644); err != nil {
		t.Fatal(err)
	}
	parsed, err := cltab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{CltabPath: path, Tab: parsed, Clstat: filepath.Join(dir, "clstat"), Node: "n1", Log: zap.NewNop()}
	if with != nil {
		with(dir, &cfg)
	}
	eng, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// runTestEngine runs eng until the end of the test.
func runTestEngine(t testing.TB, eng *Engine) {
	go eng.Run()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
}

// serve sends one request as uid (as SO_PEERCRED would have read it).
func serve(s *Server, uid int, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://clinit"+path, strings.NewReader(body))
	req = req.WithContext(context.WithValue(req.Context(), peerKey{}, uid))
	rec := httptest.NewRecorder()
	s.srv.Handler.ServeHTTP(rec, req)
	return rec
}

func TestServerRequests(t *testing.T) {
	s := testServer(t, "g:a:1:off:\nn1:b:1:off:\n")
	big := `{"group":"g","level":"` + strings.Repeat("x", api.MaxRequestBody) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		uid                      int
		code                     int
		want                     string // in the body
	}{
		{"tell", "POST", api.PathTell, `{"group":"g","level":"1"}`, 0, 200, "g: going to level 1"},
		{"tell own node", "POST", api.PathTell, `{"level":"2"}`, 0, 200, "n1: going to level 2"},
		{"unknown group", "POST", api.PathTell, `{"group":"nope","level":"1"}`, 0, 404, "no such group: nope"},
		{"malformed json", "POST", api.PathTell, `{"group":`, 0, 400, "bad request body"},
		{"unknown field", "POST", api.PathTell, `{"group":"g","level":"1","x":1}`, 0, 400, "unknown field"},
		{"two values", "POST", api.PathTell, `{"group":"g","level":"1"}{}`, 0, 400, "more than one JSON value"},
		{"empty level", "POST", api.PathTell, `{"group":"g"}`, 0, 400, "bad level name"},
		{"level with colon", "POST", api.PathTell, `{"group":"g","level":"a:b"}`, 0, 400, "bad level name"},
		{"oversized body", "POST", api.PathTell, big, 0, 400, "request body over"},
		{"unknown path", "GET", "/v0/nope", "", 0, 404, "no such request"},
		{"wrong method", "GET", api.PathTell, "", 0, 405, "wants POST"},
		{"status", "GET", api.PathStatus, "", 0, 200, `"node":"n1"`},
		{"other uid", "GET", api.PathStatus, "", 12345, 403, "permission denied: uid 12345"},
		{"no credentials", "GET", api.PathStatus, "", -1, 403, "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(s, tc.uid, tc.method, tc.path, tc.body)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%s %s: got %d %q, want %d containing %q", tc.method, tc.path, rec.Code, rec.Body.String(), tc.code, tc.want)
			}
			if rec.Header().Get(api.VersionHeader) != api.Version {
				t.Errorf("no %s header", api.VersionHeader)
			}
			if tc.code != 200 {
				var e api.Error
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("error body is not {\"error\": ...}: %q", rec.Body.String())
				}
			}
		})
	}
}

// TestTellRefusesBadNames: a level or group that breaks cltab's name
// rule is answered 400 with the reason, and lands nowhere (on c02508e a
// NUL, an escape sequence or 60,000 bytes went into clstat raw).
func TestTellRefusesBadNames(t *testing.T) {
	s := testServer(t, "g:a:1:off:\n")
	for _, tc := range []struct{ body, want string }{
		{`{"group":"g","level":"2\u0000x"}`, `bad level name "2\x00x": holds the unprintable '\x00'`},
		{`{"group":"g","level":"\u001b[2J"}`, `holds the unprintable '\x1b'`},
		{`{"group":"g","level":"a\nb"}`, `holds whitespace '\n'`},
		{`{"group":"g","level":"` + strings.Repeat("x", 60000) + `"}`, "60000 bytes, over 128"},
		{`{"group":"g\u0001","level":"1"}`, "bad group name"},
		{`{"group":"\u00ff\u0000","level":"1"}`, "bad group name"},
		{`{"level":"\u0007"}`, "bad level name"},
	} {
		rec := serve(s, 0, "POST", api.PathTell, tc.body)
		var e api.Error
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != 400 || !strings.Contains(e.Error, tc.want) || !strings.Contains(e.Error, cltab.NameRule) {
			t.Errorf("%.60s: got %d %q, want 400 with %q and the rule", tc.body, rec.Code, e.Error, tc.want)
		}
	}
	rec := serve(s, 0, "GET", api.PathStatus, "")
	var st api.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || len(st.Groups) != 0 {
		t.Fatalf("a refused tell was applied: %s", rec.Body.String())
	}
}

// FuzzRequest: whatever arrives on the socket, the daemon answers with a
// JSON body and a 2xx or 4xx status, never a panic or a 5xx.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{`{"group":"g","level":"1"}`, `{"level":"x"}`, `{"group":`, `[]`, `null`, `{"group":"g","level":"1"}{}`, "\x00\xff"} {
		f.Add(0, seed)
		f.Add(1, seed)
	}
	s := testServer(f, "g:a:1:off:\n")
	paths := []string{api.PathTell, api.PathStatus, "/v0/x"}
	f.Fuzz(func(t *testing.T, which int, body string) {
		path := paths[(which%len(paths)+len(paths))%len(paths)]
		method := http.MethodPost
		if path == api.PathStatus {
			method = http.MethodGet
		}
		rec := serve(s, 0, method, path, body)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("%s %q: status %d", path, body, rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: body is not JSON: %q", path, body, rec.Body.String())
		}
	})
}
