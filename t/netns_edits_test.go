package t

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/t/netbed"
)

// editRounds: simultaneous `clinit --ha` edits, one on each of two hosts.
const editRounds = 20

// editCltab: two HA groups, e1 and e2, with an entry at each level l0 to
// l19, so that every round can set each to a level of its own.
func editCltab() string {
	var levels []string
	for r := 0; r < editRounds; r++ {
		levels = append(levels, fmt.Sprintf("l%d", r))
	}
	lv := strings.Join(levels, ",") + ","
	return netnsCltab + fmt.Sprintf("e1:e1x:%s:once:true\ne2:e2x:%s:once:true\n", lv, lv)
}

// edit is one `clinit --ha` command's outcome.
type edit struct {
	host, group, level string
	out, errOut        string
	code               int
	err                error
}

// hactlLevels is the level of each group in h's copy of the hactl.
func hactlLevels(t *testing.T, h *netbed.Host) map[string]string {
	t.Helper()
	data, err := os.ReadFile(h.Path("hactl"))
	if err != nil {
		return nil
	}
	ha, err := cltab.ParseHactl(h.Path("hactl"), data)
	if err != nil {
		t.Fatalf("%s's hactl: %v", h.Name, err)
	}
	m := map[string]string{}
	for _, g := range ha.Groups {
		m[g.Group] = g.Level
	}
	return m
}

// Two hosts edit the hactl with `clinit --ha` at the same moment, 20
// rounds: h1 sets e1 to lR, h2 sets e2 to lR. Each command either exits
// 0, and its edit is then in the committed hactl (every host's copy), or
// exits non-zero saying it was refused; never 0 with its edit lost.
func TestNetnsSimultaneousEdits(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netnsWith(t, n, editCltab())
	_, from := placeWeb(t, b)

	committed, refused := 0, 0
	for r := 0; r < editRounds; r++ {
		level := fmt.Sprintf("l%d", r)
		eds := []*edit{{host: "h1", group: "e1", level: level}, {host: "h2", group: "e2", level: level}}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, e := range eds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				e.out, e.errOut, e.code, e.err = b.Host(e.host).Clinit("--ha", e.group, e.level)
			}()
		}
		close(start)
		wg.Wait()
		var want []*edit
		var line []string
		for _, e := range eds {
			switch {
			case e.err != nil:
				t.Fatalf("round %d: %s: clinit --ha %s %s: %v", r, e.host, e.group, e.level, e.err)
			case e.code == 0:
				committed++
				want = append(want, e)
				line = append(line, fmt.Sprintf("%s committed (%s)", e.host, strings.TrimSpace(e.out)))
			case strings.Contains(e.errOut, "refused"):
				refused++
				line = append(line, fmt.Sprintf("%s refused (status %d: %s)", e.host, e.code, strings.TrimSpace(e.errOut)))
				// Not lost either: the refused text is kept aside.
				h := b.Host(e.host)
				aside, err := os.ReadFile(h.Path("hactl.rejected"))
				if ha, perr := cltab.ParseHactl(h.Path("hactl.rejected"), aside); err != nil || perr != nil || ha.Group(e.group) == nil || ha.Group(e.group).Level != e.level {
					t.Errorf("round %d: %s's refused edit (%s %s) is not kept in hactl.rejected: %v %v", r, e.host, e.group, e.level, err, perr)
				}
			default:
				t.Errorf("round %d: %s: clinit --ha %s %s: status %d without saying it was refused: %s %s", r, e.host, e.group, e.level, e.code, e.out, e.errOut)
			}
		}
		t.Logf("round %d: %s", r, strings.Join(line, "; "))
		if len(want) == 0 {
			t.Errorf("round %d: neither edit committed: one of two edits of the same base must be", r)
		}
		// What exited 0 is committed: every copy has it, before long.
		have := func() bool {
			for _, h := range b.Hosts {
				lv := hactlLevels(t, h)
				for _, e := range want {
					if lv[e.group] != e.level {
						return false
					}
				}
			}
			return true
		}
		if !poll(10*time.Second, have) {
			for _, h := range b.Hosts {
				t.Logf("%s's hactl: %v", h.Name, hactlLevels(t, h))
			}
			t.Fatalf("round %d: an edit that exited 0 is not in the committed hactl", r)
		}
	}
	t.Logf("%d rounds of two simultaneous edits: %d committed, %d refused, none lost", editRounds, committed, refused)
	verdict(t, b, from, nil, failoverBound(n))
}

// Two hosts edit their cltab on disk at the same moment, 20 rounds: h1
// adds the line x1:rR, h2 the line x2:rR, each to its copy of the
// committed cltab, written in place of it (a new file renamed over the
// old, as editors and config managers do). Each edit ends either in the
// committed cltab (every host's copy), or refused and kept aside in its
// host's cltab.rejected, with the log saying so: never lost.
func TestNetnsSimultaneousCltabEdits(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	_, from := placeWeb(t, b)
	committed, refused := 0, 0
	for r := 0; r < editRounds; r++ {
		eds := map[string]string{"h1": fmt.Sprintf("x1:r%d:l0:off:true", r), "h2": fmt.Sprintf("x2:r%d:l0:off:true", r)}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for host, line := range eds {
			h := b.Host(host)
			old, err := os.ReadFile(h.Path("cltab"))
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				tmp := h.Path("cltab.edit")
				if err := os.WriteFile(tmp, append(old, line+"\n"...), 0o644); err != nil {
					t.Error(err)
					return
				}
				if err := os.Rename(tmp, h.Path("cltab")); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		// Settled: every copy the same, and each edit in it or kept aside.
		var fate map[string]string
		settled := func() bool {
			first, err := os.ReadFile(b.Hosts[0].Path("cltab"))
			if err != nil {
				return false
			}
			for _, h := range b.Hosts[1:] {
				if data, err := os.ReadFile(h.Path("cltab")); err != nil || string(data) != string(first) {
					return false
				}
			}
			fate = map[string]string{}
			for host, line := range eds {
				aside, _ := os.ReadFile(b.Host(host).Path("cltab.rejected"))
				switch {
				case strings.Contains(string(first), "\n"+line+"\n"):
					fate[host] = "committed"
				case strings.Contains(string(aside), "\n"+line+"\n"):
					fate[host] = "refused"
				default:
					return false
				}
			}
			return true
		}
		if !poll(20*time.Second, settled) {
			for _, h := range b.Hosts {
				data, _ := os.ReadFile(h.Path("cltab"))
				aside, _ := os.ReadFile(h.Path("cltab.rejected"))
				t.Logf("%s's cltab ends %q; cltab.rejected ends %q", h.Name, tail(string(data), 80), tail(string(aside), 80))
			}
			t.Fatalf("round %d: an edit is neither in the committed cltab nor kept aside (%v)", r, eds)
		}
		for host, f := range fate {
			if f == "committed" {
				committed++
			} else {
				refused++
				if !strings.Contains(b.Host(host).Log(), "rejected") {
					t.Errorf("round %d: %s's edit was kept aside without a word in its log", r, host)
				}
			}
		}
		if fate["h1"] == "refused" && fate["h2"] == "refused" {
			t.Errorf("round %d: both edits refused: one of two edits of the same base must commit", r)
		}
		t.Logf("round %d: h1 %s, h2 %s", r, fate["h1"], fate["h2"])
	}
	t.Logf("%d rounds of two simultaneous cltab edits: %d committed, %d refused, none lost", editRounds, committed, refused)
	verdict(t, b, from, nil, failoverBound(n))
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
