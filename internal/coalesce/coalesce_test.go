package coalesce

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeClock moves only when told; its AfterFuncs run in Advance, on the
// caller's goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c   *fakeClock
	at  time.Time
	f   func()
	off bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.off
	t.off = true
	return was
}

// Advance moves the clock by d, calling each timer due on the way at
// its time.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.off && !t.at.After(end) {
				next = t
				break
			}
		}
		if next == nil {
			break
		}
		next.off = true
		c.now = next.at
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// bench is a coalescer on a fake clock that records when it flushed,
// as milliseconds from the start.
type bench struct {
	t     *testing.T
	clk   *fakeClock
	co    *Coalescer
	start time.Time
	at    []int
}

func newBench(t *testing.T, cfg Config) *bench {
	b := &bench{t: t, clk: &fakeClock{now: time.Unix(1000, 0)}}
	b.start = b.clk.now
	inner := cfg.Flush
	cfg.Flush = func() {
		b.at = append(b.at, int(b.clk.Now().Sub(b.start)/time.Millisecond))
		if inner != nil {
			inner()
		}
	}
	b.co = New(b.clk, cfg)
	return b
}

// to moves the clock to ms, answering C as the owner's loop would.
func (b *bench) to(ms int) {
	for {
		now := int(b.clk.Now().Sub(b.start) / time.Millisecond)
		if now >= ms {
			return
		}
		b.clk.Advance(time.Millisecond)
		select {
		case <-b.co.C():
			b.co.Poll()
		default:
		}
	}
}

// mark marks at ms and polls, as the loop does after an event.
func (b *bench) mark(ms int) {
	b.to(ms)
	b.co.Mark()
	b.co.Poll()
}

func (b *bench) want(at ...int) {
	b.t.Helper()
	if len(at) == 0 {
		at = nil
	}
	if len(b.at) != len(at) {
		b.t.Fatalf("flushed at %v ms, want %v", b.at, at)
	}
	for i := range at {
		if b.at[i] != at[i] {
			b.t.Fatalf("flushed at %v ms, want %v", b.at, at)
		}
	}
}

func gap(d time.Duration) func() time.Duration { return func() time.Duration { return d } }

func TestGap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		marks []int
		want  []int
	}{
		{"at once after quiet", []int{0}, []int{0}},
		{"a burst is merged", []int{0, 1, 10, 20, 49}, []int{0, 50}},
		{"gap honoured", []int{0, 10, 60, 70, 200}, []int{0, 50, 100, 200}},
		{"a steady stream cannot postpone", []int{0, 5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 105}, []int{0, 50, 100, 150}},
		{"quiet again", []int{0, 500}, []int{0, 500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, Config{Gap: gap(50 * time.Millisecond)})
			for _, m := range tc.marks {
				b.mark(m)
			}
			b.to(1000)
			b.want(tc.want...)
		})
	}
}

func TestGapAskedAtEachPoll(t *testing.T) {
	g := 50 * time.Millisecond
	b := newBench(t, Config{Gap: func() time.Duration { return g }})
	b.mark(0)
	g = 200 * time.Millisecond
	b.mark(10)
	b.to(1000)
	b.want(0, 200)
}

func TestNoGapFlushesEachPoll(t *testing.T) {
	b := newBench(t, Config{})
	b.mark(0)
	b.mark(0)
	b.mark(3)
	b.to(100)
	b.want(0, 0, 3)
}

func TestPollWithoutMark(t *testing.T) {
	b := newBench(t, Config{Gap: gap(50 * time.Millisecond)})
	b.co.Poll()
	b.to(100)
	b.want()
	if b.co.Pending() {
		t.Fatal("pending with nothing marked")
	}
}

func TestExpedite(t *testing.T) {
	b := newBench(t, Config{Gap: gap(50 * time.Millisecond)})
	b.mark(0)
	b.mark(10) // waits for 50
	b.to(20)
	b.co.Expedite()
	b.co.Poll() // the waiting mark goes out now
	b.mark(30)  // the gap counts from the expedited flush
	b.to(1000)
	b.want(0, 20, 70)
}

func TestFlushMarksAgain(t *testing.T) {
	var b *bench
	again := 2
	b = newBench(t, Config{Gap: gap(50 * time.Millisecond), Flush: func() {
		if again > 0 {
			again--
			b.co.Mark()
		}
	}})
	b.mark(0)
	b.to(1000)
	b.want(0, 50, 100)
}

func TestQuiet(t *testing.T) {
	for _, tc := range []struct {
		name    string
		quantum time.Duration
		marks   []int
		want    []int
	}{
		{"waits for quiet", 0, []int{0}, []int{150}},
		{"a burst is merged", 0, []int{0, 100, 200, 300}, []int{450}},
		{"unbounded", 0, []int{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200}, []int{1350}},
		{"bounded by the quantum", time.Second, []int{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200}, []int{1000, 1350}},
		{"quantum from the first mark after a flush", time.Second, []int{0, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500}, []int{150, 1400, 1650}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, Config{Quiet: 150 * time.Millisecond, Quantum: tc.quantum})
			for _, m := range tc.marks {
				b.mark(m)
			}
			b.to(3000)
			b.want(tc.want...)
		})
	}
}

func TestQuietAndGap(t *testing.T) {
	b := newBench(t, Config{Gap: gap(time.Second), Quiet: 150 * time.Millisecond})
	b.mark(0)
	b.mark(200)
	b.to(3000)
	b.want(150, 1150)
}

func TestStop(t *testing.T) {
	b := newBench(t, Config{Gap: gap(50 * time.Millisecond)})
	b.mark(0)
	b.mark(10)
	b.co.Stop()
	b.clk.Advance(time.Second)
	select {
	case <-b.co.C():
		t.Fatal("C received after Stop")
	default:
	}
	b.co.Mark()
	b.co.Poll()
	b.want(0)
	if b.co.Pending() {
		t.Fatal("pending after Stop")
	}
}

func TestWallClock(t *testing.T) {
	flushed := make(chan struct{}, 4)
	co := New(Wall, Config{Gap: gap(10 * time.Millisecond), Flush: func() { flushed <- struct{}{} }})
	defer co.Stop()
	co.Mark()
	co.Poll()
	<-flushed
	co.Mark()
	co.Poll()
	select {
	case <-flushed:
		t.Fatal("flushed within the gap")
	default:
	}
	<-co.C()
	co.Poll()
	<-flushed
}

func TestFlushNow(t *testing.T) {
	b := newBench(t, Config{Gap: gap(50 * time.Millisecond)})
	b.mark(0)
	b.to(10)
	b.co.FlushNow() // nothing marked: runs all the same
	b.mark(20)      // waits for 60, the gap from FlushNow
	b.to(1000)
	b.want(0, 10, 60)
	b.co.Stop()
	b.co.FlushNow()
	b.want(0, 10, 60)
}
