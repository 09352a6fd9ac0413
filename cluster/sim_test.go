package cluster

// The HA simulation (issue 16): the real planner (plan), the real node
// rules (runNode, stopAhead, updateGate) and the real state machine
// (store.State.Apply, its epoch checks), driven by a deterministic
// discrete-event model of the cluster on fake clocks (sim_model_test.go
// and the files beside it), with random faults from a seeded RNG, and I1
// and I5 checked after every event (sim_check_test.go).
//
// CI runs TestHASim: a fixed list of seeds for each scenario. `make soak`
// runs TestHASimSoak over random seeds (SIM_SEEDS, default 1000) and
// prints the seed of any failure; SIM_SEED=N replays one seed in every
// scenario, with the trace of a failure:
//
//	make soak SIM_SEED=N
//	SIM_SEED=N go test -count=1 -run TestHASimSoak -v ./cluster/

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var simScenarios = []simConfig{
	{name: "3 nodes", nodes: 3, voters: 3, groups: 4, storms: 3},
	{name: "3 nodes, stomith", nodes: 3, voters: 3, groups: 4, stomith: true, storms: 2},
	{name: "5 nodes", nodes: 5, voters: 5, groups: 6, storms: 3},
	{name: "9 nodes, 5 voters", nodes: 9, voters: 5, groups: 8, storms: 3},
}

// simSeeds are CI's. A seed that once found a bug stays here: 2 (3
// nodes) ran a group twice for 38 ms before plan.go committed a stop to
// a node gone by time before it freed its groups; 10 and 12 (3 nodes,
// stomith) had a thawed, deposed leader fence healthy nodes, itself
// included, before planloop.go checked its leadership first; 448422323 (3
// nodes, stomith) ran a group twice for 175 ms before the store made a
// group given again to a node fenced since a new assignment; 270610 and
// 271490 (3 nodes, stomith) for 84 and 121 ms before a grant left out
// the groups of a node being fenced, or fenced since.
var simSeeds = []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 448422323, 270610, 271490}

// simResult is one run's figures.
type simResult struct {
	failure                          string
	longestDouble, longestDown, owed time.Duration
	bound, length                    time.Duration
	events, failbacks                int
	trace                            []string
}

func runSim(t testing.TB, cfg simConfig, seed int64) simResult {
	s := newSim(t, cfg, seed)
	length := s.schedule()
	s.run(length)
	s.finish()
	return simResult{failure: s.chk.failure, longestDouble: s.chk.longestDouble, longestDown: s.chk.longestDown, owed: s.chk.longestOwed,
		bound: s.bound(), length: s.now, events: s.events, failbacks: s.failbacks, trace: s.trace}
}

func (r simResult) String() string {
	return "longest double run " + r.longestDouble.String() + ", longest time down " + r.longestDown.Round(time.Millisecond).String() +
		" (in a calm " + r.owed.Round(time.Millisecond).String() + ", bound " + r.bound.String() + "), " +
		strconv.Itoa(r.events) + " events over " + r.length.Round(time.Second).String() + ", " + strconv.Itoa(r.failbacks) + " failbacks"
}

func simReport(t *testing.T, cfg simConfig, seed int64, r simResult) {
	t.Helper()
	if r.failure == "" {
		t.Logf("%s, seed %d: %s", cfg.name, seed, r)
		return
	}
	t.Errorf("%s, seed %d: %s\n%s\nreplay: make soak SIM_SEED=%d\nthe last events:\n%s", cfg.name, seed, r.failure, r, seed, strings.Join(r.trace, "\n"))
}

func TestHASim(t *testing.T) {
	for _, cfg := range simScenarios {
		t.Run(strings.ReplaceAll(cfg.name, " ", "_"), func(t *testing.T) {
			failbacks := 0
			for _, seed := range simSeeds {
				r := runSim(t, cfg, seed)
				simReport(t, cfg, seed, r)
				failbacks += r.failbacks
			}
			// Half the groups prefer a node that storms take down and
			// bring back: failback's graceful moves are among what I1
			// and I5 are checked against.
			if failbacks == 0 {
				t.Errorf("no failback in %d seeds", len(simSeeds))
			}
		})
	}
}

// TestHASimSoak is `make soak`: SIM_SEEDS random seeds across the
// scenarios, or SIM_SEED alone in each.
func TestHASimSoak(t *testing.T) {
	one, runs := os.Getenv("SIM_SEED"), os.Getenv("SIM_SEEDS")
	if one == "" && runs == "" {
		t.Skip("a soak: make soak (SIM_SEEDS=N random seeds, or SIM_SEED=N to replay one)")
	}
	if one != "" {
		seed, err := strconv.ParseInt(one, 10, 64)
		if err != nil {
			t.Fatalf("SIM_SEED=%q: not a number", one)
		}
		for _, cfg := range simScenarios {
			simReport(t, cfg, seed, runSim(t, cfg, seed))
		}
		return
	}
	n, err := strconv.Atoi(runs)
	if err != nil || n < 1 {
		t.Fatalf("SIM_SEEDS=%q: not a positive number", runs)
	}
	base := time.Now().UnixNano() % 1_000_000_000
	failed := 0
	for i := 0; i < n; i++ {
		seed := base + int64(i)
		cfg := simScenarios[i%len(simScenarios)]
		r := runSim(t, cfg, seed)
		if r.failure != "" {
			failed++
			t.Errorf("FAIL %s, seed %d: %s (replay: make soak SIM_SEED=%d)", cfg.name, seed, r.failure, seed)
		}
	}
	t.Logf("%d runs from seed %d, %d failed", n, base, failed)
}
