package daemon

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
)

// What the rest of the node adds is given at construction: more
// requests, the check that refuses a local tell of an HA group, and the
// reread used by an explicit reread and before a request on a changed
// cltab.
func TestServerOptions(t *testing.T) {
	const tab = "g:a:1:off:\nweb:w:1:off:\n"
	eng := testEngine(t, tab, nil)
	var rereads atomic.Int32
	s := NewServer(eng, zap.NewNop(), ServerOptions{
		Reread: func(ctx context.Context) ([]string, error) {
			rereads.Add(1)
			return eng.Reread(ctx)
		},
		IsHA: func(ctx context.Context, g string) bool { return g == "web" },
		Routes: map[string]Route{"/v0/extra": {Method: http.MethodGet, Handler: func(w http.ResponseWriter, r *http.Request) {
			WriteJSON(w, http.StatusOK, api.Message{Message: "extra"})
		}}},
	})
	if rec := serve(s, 0, "GET", "/v0/extra", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), "extra") {
		t.Errorf("an added request: %d %q", rec.Code, rec.Body.String())
	}
	if rec := serve(s, 0, "POST", "/v0/extra", ""); rec.Code != 405 {
		t.Errorf("an added request with the wrong method: %d", rec.Code)
	}
	if rec := serve(s, 0, "POST", api.PathTell, `{"group":"web","level":"1"}`); rec.Code != 409 || !strings.Contains(rec.Body.String(), "clinit --ha web 1") {
		t.Errorf("a tell of an HA group: %d %q", rec.Code, rec.Body.String())
	}
	before := rereads.Load()
	if rec := serve(s, 0, "POST", api.PathReread, "{}"); rec.Code != 200 || rereads.Load() != before+1 {
		t.Errorf("reread: %d %q, given reread called %d times", rec.Code, rec.Body.String(), rereads.Load())
	}
	// A tell after an edit rereads first, through the same reread.
	if err := os.WriteFile(eng.cfg.CltabPath, []byte(tab+"g:b:1:off:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec := serve(s, 0, "POST", api.PathTell, `{"group":"g","level":"1"}`); rec.Code != 200 || rereads.Load() != before+2 {
		t.Errorf("tell after an edit: %d %q, given reread called %d times", rec.Code, rec.Body.String(), rereads.Load())
	}
}

// A request given twice is a wiring mistake, found when the server is
// built rather than by one handler silently replacing another.
func TestServerRouteTwice(t *testing.T) {
	eng := newTestEngine(t, "g:a:1:off:\n", nil)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), api.PathReread) {
			t.Errorf("a second handler of %s: recovered %v, want a panic naming it", api.PathReread, r)
		}
	}()
	NewServer(eng, zap.NewNop(), ServerOptions{Routes: map[string]Route{api.PathReread: {Method: http.MethodPost}}})
}
