package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/client"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/daemon"
)

// startNode runs a node alone on cltab, its file the target of a
// symlink in another directory (so that no file watcher sees an edit of
// it: only an explicit reread does). It returns the client of its socket
// and the file to edit; the node is shut down at the end of the test.
func startNode(t *testing.T, tab string) (*client.Client, string) {
	t.Helper()
	dir, files := t.TempDir(), t.TempDir()
	target := filepath.Join(files, "cltab")
	if err := os.WriteFile(target, []byte(tab), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "cltab")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	hactl := filepath.Join(dir, "hactl")
	if err := os.WriteFile(hactl, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	parsed, err := cltab.Load(link)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	n, err := New(Config{
		Engine: daemon.Config{CltabPath: link, Tab: parsed, Clstat: filepath.Join(dir, "clstat"), RunDir: filepath.Join(dir, "out"), Node: "n1", Log: zap.NewNop()},
		Socket: sock,
		Hactl:  hactl,
	})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- n.Run() }()
	c := client.New(sock)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// As clinit -k does, but the client would wait for this process
		// to exit.
		if err := n.eng.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("node: %v", err)
			}
		case <-ctx.Done():
			t.Error("the node did not stop")
		}
	})
	return c, target
}

// haRefusal is why this node refuses clinit --ha web start.
func haRefusal(t *testing.T, c *client.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.HA(ctx, "web", "start", nil)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("clinit --ha on a node alone: %v, want a refusal", err)
	}
	return apiErr.Error()
}

// A reread asked on the socket hands the new cltab to the cluster too:
// an HA setting it changes is seen by the cluster at once.
func TestSocketRereadReachesTheCluster(t *testing.T) {
	const tab = "web:w1:start:once:true\n"
	c, file := startNode(t, tab)
	if msg := haRefusal(t, c); !strings.Contains(msg, "the cltab names no voters") {
		t.Fatalf("before the edit: %q, want the cltab to name no voters", msg)
	}
	if err := os.WriteFile(file, []byte(":::nodes:1\n"+tab), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Reread(ctx); err != nil {
		t.Fatalf("reread: %v", err)
	}
	if msg := haRefusal(t, c); !strings.Contains(msg, "it runs alone") {
		t.Errorf("after a reread of a cltab that names voters: %q, want HA off only for running alone", msg)
	}
}
