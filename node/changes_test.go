package node

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster"
)

// fakeFiles is an engine and a cluster for changes: the engine reads the
// cltab from file when asked to reread; the cluster records what it is
// handed, and its SetTab can be held, to let other changes be asked
// while one is under way.
type fakeFiles struct {
	mu       sync.Mutex
	file     string   // the cltab on disk: its text
	engine   string   // the cltab the engine uses
	cluster  string   // the cltab the cluster was handed last
	ops      []string // what was done, in order
	versions []string // kinds FileChanged was asked for
	edits    []string // hactl edits: group level

	hold    chan struct{} // not nil: the next SetTab waits for it to close
	holding chan struct{} // closed when a SetTab waits on hold
}

func (f *fakeFiles) Reread(ctx context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "reread "+f.file)
	if f.file == "bad" {
		return nil, cltab.Errors{{Path: "cltab", Line: 1, Msg: "bad"}}
	}
	f.engine = f.file
	return []string{"g"}, nil
}

func (f *fakeFiles) Tab(ctx context.Context) (*cltab.Tab, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &cltab.Tab{Path: f.engine}, nil
}

func (f *fakeFiles) FileChanged(ctx context.Context, kind string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions = append(f.versions, kind)
	return nil
}

func (f *fakeFiles) SetTab(ctx context.Context, t *cltab.Tab) error {
	f.mu.Lock()
	hold, holding := f.hold, f.holding
	f.hold = nil
	f.mu.Unlock()
	if hold != nil {
		close(holding)
		<-hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "settab "+t.Path)
	f.cluster = t.Path
	return nil
}

func (f *fakeFiles) EditHactl(ctx context.Context, group, level string, prefer []string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.edits = append(f.edits, group+" "+level)
	return uint64(len(f.edits)), nil
}

func (f *fakeFiles) setFile(s string) {
	f.mu.Lock()
	f.file = s
	f.mu.Unlock()
}

func runChanges(t *testing.T, f *fakeFiles) *changes {
	c := newChanges(zap.NewNop(), nil)
	stop := make(chan struct{})
	go c.run(f, f, stop)
	t.Cleanup(func() { close(stop); <-c.done })
	return c
}

func waitResult(t *testing.T, ch <-chan changeResult) changeResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("a change was never applied")
		return changeResult{}
	}
}

// A change asked while another is under way waits for it to end: the
// cluster is never handed an older read after a newer one, and the
// engine and the cluster end on the newest file.
func TestChangesApplyInOrder(t *testing.T) {
	f := &fakeFiles{file: "v1", hold: make(chan struct{}), holding: make(chan struct{})}
	c := runChanges(t, f)
	hold := f.hold

	first := c.submit(change{kind: cluster.KindCltab, local: true, cause: "SIGHUP"})
	<-f.holding // v1 read and applied to the engine; the cluster not told yet
	f.setFile("v2")
	second := c.submit(change{kind: cluster.KindCltab, cause: "new version from the cluster"})
	third := c.submit(change{kind: cluster.KindCltab, local: true})
	close(hold)
	for _, ch := range []<-chan changeResult{first, second, third} {
		if r := waitResult(t, ch); r.err != nil {
			t.Errorf("change: %v", r.err)
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	want := []string{"reread v1", "settab v1", "reread v2", "settab v2", "reread v2", "settab v2"}
	if !slices.Equal(f.ops, want) {
		t.Errorf("applied %q, want %q", f.ops, want)
	}
	if f.engine != "v2" || f.cluster != "v2" {
		t.Errorf("the engine ends on %q, the cluster on %q; want v2 for both", f.engine, f.cluster)
	}
	// Local edits are versioned first; a version from the cluster is not
	// versioned again.
	if !slices.Equal(f.versions, []string{cluster.KindCltab, cluster.KindCltab}) {
		t.Errorf("versioned %q", f.versions)
	}
}

// Concurrent rereads, each after its own edit, end with the newest file
// in the engine and in the cluster alike.
func TestChangesConcurrentRereads(t *testing.T) {
	f := &fakeFiles{file: "v0"}
	c := runChanges(t, f)
	var edits sync.Mutex
	var wg sync.WaitGroup
	last := ""
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			edits.Lock()
			last = "v" + string(rune('a'+i))
			f.setFile(last)
			edits.Unlock()
			if _, err := c.Reread(context.Background()); err != nil {
				t.Errorf("reread: %v", err)
			}
		}()
	}
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.engine != last || f.cluster != last {
		t.Errorf("the newest file is %q; the engine uses %q, the cluster was handed %q", last, f.engine, f.cluster)
	}
}

// An invalid cltab goes back to who asked, and the cluster keeps being
// handed what the engine uses: the last good one.
func TestChangesInvalidCltab(t *testing.T) {
	f := &fakeFiles{file: "v1"}
	c := runChanges(t, f)
	if _, err := c.Reread(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.setFile("bad")
	_, err := c.Reread(context.Background())
	var invalid cltab.Errors
	if !errors.As(err, &invalid) {
		t.Fatalf("reread of an invalid cltab: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.engine != "v1" || f.cluster != "v1" {
		t.Errorf("after an invalid reread the engine uses %q, the cluster %q; want v1", f.engine, f.cluster)
	}
}

// An hactl edit and a local hactl change go to the cluster through the
// same queue; a version of the hactl from elsewhere needs nothing more.
func TestChangesHactl(t *testing.T) {
	f := &fakeFiles{file: "v1"}
	c := runChanges(t, f)
	if v, err := c.EditHactl(context.Background(), "web", "start", nil); err != nil || v != 1 {
		t.Fatalf("edit: version %d, %v", v, err)
	}
	waitResult(t, c.submit(change{kind: cluster.KindHactl, local: true, cause: "file changed"}))
	c.fromCluster(cluster.KindHactl)
	waitResult(t, c.submit(change{kind: cluster.KindHactl, edit: &hactlEdit{"db", "stop", nil}}))
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.edits, []string{"web start", "db stop"}) || !slices.Equal(f.versions, []string{cluster.KindHactl}) || len(f.ops) != 0 {
		t.Errorf("edits %q, versioned %q, cltab ops %q", f.edits, f.versions, f.ops)
	}
}

// After the node stops, a change is refused rather than left waiting.
func TestChangesAfterStop(t *testing.T) {
	f := &fakeFiles{file: "v1"}
	c := newChanges(zap.NewNop(), nil)
	stop := make(chan struct{})
	go c.run(f, f, stop)
	close(stop)
	<-c.done
	if _, err := c.Reread(context.Background()); !errors.Is(err, errNoChanges) {
		t.Errorf("reread after stop: %v", err)
	}
	c.post(change{kind: cluster.KindCltab}) // returns
}
