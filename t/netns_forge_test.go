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
// joins memberlist with the key under a name of its own, and sends every
// member, again and again, a status in the victim's name saying that it
// runs nothing, is leaving, and has ruled itself out of web (cluster's
// status message: kind 's', then the JSON of cluster/view.go's
// nodeStatus, field names as on the wire).
const forgerEnv = "CLT_FORGER"

// forgerArgs travel in forgerEnv as JSON.
type forgerArgs struct {
	Key     string // key file
	Bind    string // address to bind (a host's), on Port
	Port    int
	Join    []string
	Victim  string        // the member whose name the forged status bears
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
	mc.Name = "intruder"
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
		if i%2 == 1 {
			// The other lie: it has stopped web.
			s.Leaving, s.Bad = false, nil
			s.Groups = []forgedGroup{{Group: "web", Level: "stop", State: "DONE"}}
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

// forge runs the forger in host in's namespace for d, in victim's name.
func forge(t *testing.T, b *netbed.Bed, in, victim *netbed.Host, d time.Duration) (members, sent int) {
	t.Helper()
	var seeds []string
	for _, h := range b.Hosts {
		seeds = append(seeds, fmt.Sprintf("%s:%d", h.Addr, netbed.Port))
	}
	args, _ := json.Marshal(forgerArgs{Key: b.Key, Bind: in.Addr, Port: netbed.Port + 10, Join: seeds,
		Victim: victim.Name, For: d, Version: uint64(time.Now().UnixNano()) * 4})
	ctx, cancel := context.WithTimeout(context.Background(), d+hang)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", in.NS, os.Args[0])
	cmd.Env = append(os.Environ(), forgerEnv+"="+string(args))
	out, err := cmd.CombinedOutput()
	t.Logf("%s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("the forger in %s: %v", in.Name, err)
	}
	f := strings.Fields(string(out[strings.LastIndex(string(out), "forger: members"):]))
	members, _ = strconv.Atoi(f[2])
	sent, _ = strconv.Atoi(f[4])
	return members, sent
}

// A key holder joins and forges web's owner's status for 10 s: it runs
// nothing, it is leaving, it ruled itself out of web; or it stopped web.
// Statuses inform, only the log decides: web stays where it runs, never
// runs twice, and never stops.
func TestNetnsForgedStatus(t *testing.T) {
	t.Parallel()
	const n = 3
	b := netns(t, n)
	owner, from := placeWeb(t, b)
	in := without2(b.Hosts, owner)[0]

	forged := time.Now()
	b.Note("forge", owner.Name)
	members, sent := forge(t, b, in, owner, 10*time.Second)
	t.Logf("forger in %s's namespace: %d statuses in %s's name sent to %d members over %v", in.Name, sent, owner.Name, members, time.Since(forged).Round(time.Millisecond))
	if members < n || sent == 0 {
		t.Fatalf("the forger reached %d members and sent %d statuses: it tested nothing", members, sent)
	}
	for _, h := range b.Hosts {
		t.Logf("%s's hastat after the forgery: %v", h.Name, h.Hastat())
	}
	time.Sleep(lifecycle)
	if on := runningOn(t, b); len(on) != 1 || on[0] != owner.Name {
		t.Errorf("after the forgery web services run on %v, want only %s", on, owner.Name)
	}
	if r := verdict(t, b, from, nil, 0); r.Moves != 0 || len(r.Runs) != 1 {
		t.Errorf("the forgery moved web: %d moves, %d starts", r.Moves, len(r.Runs))
	}
}
