package t

import (
	"net/http"
	"strconv"
	"testing"
)

// TestStatusPageHostCheck: the status page and status.json answer only a
// Host that names them (their address, localhost, the node): a browser
// led there by DNS rebinding sends the attacker's name, and gets 403.
func TestStatusPageHostCheck(t *testing.T) {
	t.Parallel()
	port := strconv.Itoa(freePort(t))
	d := startDaemon(t, "web:srv:1:once:true\n", "--metrics", port)
	get := func(path, host string) int {
		req, err := http.NewRequest("GET", "http://127.0.0.1:"+port+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/", "/status.json"} {
		for host, want := range map[string]int{
			"127.0.0.1:" + port: 200, "localhost:" + port: 200, "LOCALHOST": 200, d.node + ":" + port: 200,
			"evil.example:" + port: 403, "evil.example": 403, "127.0.0.2:" + port: 403,
		} {
			if got := get(path, host); got != want {
				t.Errorf("GET %s with Host %s: %d, want %d", path, host, got, want)
			}
		}
	}
	if got := get("/metrics", "evil.example"); got != 200 {
		t.Errorf("/metrics with another Host: %d, want 200 (scrapers name targets as they like)", got)
	}
}
