package raftnode

import (
	"io"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/clinit/clinit/cluster/store"
)

// fsm is raft's view of the store. raft calls Apply, Snapshot and
// Restore from its own goroutines, one at a time; readers take mu.
type fsm struct {
	mu      sync.Mutex
	st      *store.State
	changed chan struct{} // closed at each change, then replaced
}

func newFSM() *fsm { return &fsm{st: store.New(), changed: make(chan struct{})} }

var _ raft.FSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any {
	c, err := store.Decode(l.Data)
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.notify()
	if err != nil {
		f.st.Index = l.Index
		return store.Result{Err: err}
	}
	if c.Op == store.OpBatch {
		return f.st.ApplyBatch(l.Index, c)
	}
	return f.st.Apply(l.Index, c)
}

// notify wakes every waiter on Changed; mu is held.
func (f *fsm) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// read runs fn on the state under the lock; fn must not keep it.
func (f *fsm) read(fn func(*store.State)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.st)
}

// watch returns the state's copy and a channel closed at its next change.
func (f *fsm) watch() (*store.State, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Clone(), f.changed
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.st.Marshal()
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	st, err := store.Unmarshal(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = st
	f.notify()
	return nil
}

// snapshot is the encoded state at one point.
type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() {}
