package t

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/t/netbed"
)

// The forger: a member that holds the cluster key (an insider, or a
// stolen key) and lies. It is this test binary started again inside a
// host's namespace (TestMain runs forgerMain when forgerEnv is set): it
// joins memberlist with the key under the name it is given (one of its
// own, or the victim's), and sends every
// member, again and again, a status in the victim's name saying that it
// runs nothing, is leaving, and has ruled itself out of web, or that it
// stopped web; and one in another member's name (the claimer's) saying
// that it runs web (cluster's
// status message: kind 's', then the JSON of cluster/view.go's
// nodeStatus, field names as on the wire).
const forgerEnv = "CLT_FORGER"

// forgerArgs travel in forgerEnv as JSON.
type forgerArgs struct {
	Key     string // key file
	Name    string // its member name
	Bind    string // address to bind (a host's), on Port
	Port    int
	Join    []string
	Victim  string        // the member whose name the forged status bears
	Claimer string        // the member said to run web
	For     time.Duration // how long to keep sending
	Version uint64        // the first forged status version
}

// forgedStatus is the wire form of a status (cluster/view.go nodeStatus).
type forgedStatus struct {
	Node    string           `json:"n"`
	Version uint64           `json:"v"`
	CPUs    int              `json:"c"`
	Load    float64          `json:"l"`
	Groups  []forgedGroup    `json:"g,omitempty"`
	Leaving bool             `json:"x,omitempty"`
	Bad     map[string]int64 `json:"b,omitempty"`
}

type forgedGroup struct {
	Group string `json:"g"`
	Level string `json:"l"`
	State string `json:"s"`
}

// forgerMain is the forger process; it prints what it did and exits 0,
// or 1 if it could not join.
func forgerMain() {
	var a forgerArgs
	if err := json.Unmarshal([]byte(os.Getenv(forgerEnv)), &a); err != nil {
		fmt.Fprintln(os.Stderr, "forger:", err)
		os.Exit(1)
	}
	key, err := cluster.LoadKey(a.Key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "forger:", err)
		os.Exit(1)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = a.Name
	mc.BindAddr, mc.BindPort, mc.AdvertisePort = a.Bind, a.Port, a.Port
	mc.SecretKey = key
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.LogOutput = io.Discard
	ml, err := memberlist.Create(mc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "forger:", err)
		os.Exit(1)
	}
	if _, err := ml.Join(a.Join); err != nil {
		fmt.Fprintln(os.Stderr, "forger: join:", err)
		os.Exit(1)
	}
	sent, members := 0, 0
	v := a.Version
	end := time.Now().Add(a.For)
	for i := 0; time.Now().Before(end); i++ {
		v++
		s := forgedStatus{Node: a.Victim, Version: v, CPUs: 1, Leaving: true,
			Bad: map[string]int64{"web": time.Now().Add(time.Hour).UnixMilli()}}
		switch i % 3 {
		case 1: // the victim has stopped web
			s.Leaving, s.Bad = false, nil
			s.Groups = []forgedGroup{{Group: "web", Level: "stop", State: "DONE"}}
		case 2: // the claimer runs web
			s = forgedStatus{Node: a.Claimer, Version: v, CPUs: 1,
				Groups: []forgedGroup{{Group: "web", Level: "start", State: "DONE"}}}
		}
		body, _ := json.Marshal(s)
		msg := append([]byte{'s'}, body...)
		members = 0
		for _, m := range ml.Members() {
			if m.Name == mc.Name {
				continue
			}
			members++
			if ml.SendReliable(m, msg) == nil {
				sent++
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("forger: members %d sent %d last version %d\n", members, sent, v)
	ml.Leave(time.Second)
	ml.Shutdown()
	os.Exit(0)
}

// forge runs the forger, named name, in host in's namespace for d: it
// lies in victim's name, and says claimer runs web.
// It runs on a goroutine of its own: it reports, rather than fails.
func forge(t *testing.T, b *netbed.Bed, name string, in, victim, claimer *netbed.Host, d time.Duration) (members, sent int, err error) {
	var seeds []string
	for _, h := range b.Hosts {
		seeds = append(seeds, fmt.Sprintf("%s:%d", h.Addr, netbed.Port))
	}
	args, _ := json.Marshal(forgerArgs{Key: b.Key, Name: name, Bind: in.Addr, Port: netbed.Port + 10, Join: seeds,
		Victim: victim.Name, Claimer: claimer.Name, For: d, Version: uint64(time.Now().UnixNano()) * 4})
	ctx, cancel := context.WithTimeout(context.Background(), d+hang)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", in.NS, os.Args[0])
	cmd.Env = append(os.Environ(), forgerEnv+"="+string(args))
	out, err := cmd.CombinedOutput()
	t.Logf("%s", strings.TrimSpace(string(out)))
	if err != nil {
		return 0, 0, fmt.Errorf("the forger in %s: %v", in.Name, err)
	}
	i := strings.LastIndex(string(out), "forger: members")
	if i < 0 {
		return 0, 0, fmt.Errorf("the forger in %s said nothing of what it did", in.Name)
	}
	f := strings.Fields(string(out[i:]))
	members, _ = strconv.Atoi(f[2])
	sent, _ = strconv.Atoi(f[4])
	return members, sent, nil
}

// A key holder forges statuses, 8 s as a member of its own and then 8 s
// joined under web's owner's very name: the owner runs nothing, is
// leaving, ruled itself out of web; or it stopped web; and another host
// runs web. Statuses inform, only the log decides: web stays where it
// runs, never runs twice, and never stops.
func TestNetnsForgedStatus(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	owner, from := placeWeb(t, b)
	others := without2(b.Hosts, owner)
	in, claimer := others[0], others[1]

	for _, name := range []string{"intruder", owner.Name} {
		forged := time.Now()
		b.Note("forge", owner.Name)
		type result struct {
			members, sent int
			err           error
		}
		done := make(chan result)
		go func() {
			m, s, err := forge(t, b, name, in, owner, claimer, 8*time.Second)
			done <- result{m, s, err}
		}()
		// What the hosts' views say meanwhile: a lie may show there,
		// but must move nothing.
		samples, wrong := 0, 0
		var res result
	sampling:
		for {
			select {
			case res = <-done:
				break sampling
			case <-time.After(100 * time.Millisecond):
			}
			for _, h := range b.Hosts {
				samples++
				if g, _ := h.Hastat().Group("web"); g.Node != owner.Name {
					wrong++
				}
			}
		}
		t.Logf("forger %q in %s's namespace: %d statuses in %s's name (and %s's, running web) sent to %d members over %v; hastat showed web elsewhere than %s in %d of %d samples",
			name, in.Name, res.sent, owner.Name, claimer.Name, res.members, time.Since(forged).Round(time.Millisecond), owner.Name, wrong, samples)
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.members < n-1 || res.sent == 0 {
			t.Fatalf("the forger reached %d members and sent %d statuses: it tested nothing", res.members, res.sent)
		}
		runsOn(t, b, owner.Name, fmt.Sprintf("forger %q", name))
	}
	time.Sleep(lifecycle)
	runsOn(t, b, owner.Name, "the forgery")
	if r := verdict(t, b, from, nil, 0); r.Moves != 0 || len(r.Runs) != 1 {
		t.Errorf("the forgery moved web: %d moves, %d starts", r.Moves, len(r.Runs))
	}
}
