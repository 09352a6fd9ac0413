package netbed

import (
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }
	ev := func(kind, host string, s float64, pid int) Event { return Event{kind, host, at(s), pid} }
	// Every case looks at the same ten seconds.
	w := Window{at(0), at(10)}
	cases := []struct {
		name     string
		evs      []Event
		excused  []Window
		overlap  time.Duration
		overlaps int
		gap      time.Duration
		gaps     int
		moves    int
	}{
		{
			name: "one run all along",
			evs:  []Event{ev("start", "h1", 0, 10)},
		},
		{
			name:  "clean failover",
			evs:   []Event{ev("start", "h1", 0, 10), ev("stop", "h1", 4, 10), ev("start", "h2", 6, 20)},
			gap:   2 * time.Second,
			gaps:  1,
			moves: 1,
		},
		{
			name:     "double run",
			evs:      []Event{ev("start", "h1", 0, 10), ev("start", "h2", 5, 20), ev("stop", "h1", 6.5, 10)},
			overlap:  1500 * time.Millisecond,
			overlaps: 1,
			moves:    1,
		},
		{
			name:     "a kill ends the runs of its host",
			evs:      []Event{ev("start", "h1", 0, 10), ev("kill", "h1", 3, 0), ev("start", "h2", 7, 20), ev("start", "h1", 8, 30)},
			overlap:  2 * time.Second,
			overlaps: 1,
			gap:      4 * time.Second,
			gaps:     1,
			moves:    2,
		},
		{
			name:    "an excused window cuts a gap in two",
			evs:     []Event{ev("start", "h1", 0, 10), ev("stop", "h1", 2, 10), ev("start", "h3", 9, 20)},
			excused: []Window{{at(3), at(6)}},
			gap:     3 * time.Second,
			gaps:    2,
			moves:   1,
		},
		{
			name:    "a gap within an excused window does not count",
			evs:     []Event{ev("start", "h1", 0, 10), ev("stop", "h1", 2, 10), ev("start", "h1", 5, 11)},
			excused: []Window{{at(1), at(6)}},
		},
		{
			name:  "a restart on the same host is no move; stop then start at once is no overlap",
			evs:   []Event{ev("start", "h1", 0, 10), ev("stop", "h1", 2, 10), ev("start", "h1", 2, 11), ev("plan", "h2", 3, 12)},
			moves: 0,
		},
		{
			name:    "events after the window are left out",
			evs:     []Event{ev("start", "h1", 0, 10), ev("stop", "h1", 2, 10), ev("start", "h2", 12, 20)},
			gap:     8 * time.Second,
			gaps:    1,
			overlap: 0,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Check(c.evs, w, c.excused)
			if r.Overlap != c.overlap || len(r.Overlaps) != c.overlaps || r.Gap != c.gap || len(r.Gaps) != c.gaps || r.Moves != c.moves {
				t.Fatalf("got overlap %v (%v), gap %v (%v), moves %d; want overlap %v (%d), gap %v (%d), moves %d",
					r.Overlap, r.Overlaps, r.Gap, r.Gaps, r.Moves, c.overlap, c.overlaps, c.gap, c.gaps, c.moves)
			}
		})
	}
}

func TestParseEvents(t *testing.T) {
	evs, err := ParseEvents("start h2 2000000000 7\nstop h1 1000000000 6\n\n")
	if err != nil || len(evs) != 2 || evs[0].Host != "h1" || evs[1].Pid != 7 {
		t.Fatalf("%v %v", evs, err)
	}
	if _, err := ParseEvents("start h1 12\n"); err == nil {
		t.Fatal("a short line parsed")
	}
}
