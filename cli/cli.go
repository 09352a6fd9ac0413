// Package cli is clinit's command line (SPEC 2) as a library: flag
// parsing, path precedence, and the exit statuses, with stdout and stderr
// injected so it runs in tests without a process.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/client"
	"github.com/clinit/clinit/client/fast"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/daemon"
	"github.com/clinit/clinit/node"
)

// Exit statuses (SPEC 2).
const (
	ExitOK       = 0
	ExitFail     = 1 // unknown group, invalid cltab, any other failure
	ExitUsage    = 2
	ExitNoDaemon = 3
)

// Built-in defaults of the paths (SPEC 2).
const (
	DefaultCltab    = fast.DefaultCltab
	DefaultSocket   = fast.DefaultSocket
	DefaultClstat   = "/var/run/clinit/clstat"
	DefaultHastat   = "/var/run/clinit/hastat"
	DefaultHactl    = "/var/lib/clinit/hactl"
	DefaultStateDir = "/var/lib/clinit"
)

// requestTimeout bounds every request but -k, which waits for the groups
// to stop.
const requestTimeout = fast.Timeout

type options struct {
	daemon, verbose, kill, help, check, json, status, debug bool
	ha, keygen, insecure, watch, version                    bool

	cltab, socket, clstat, hastat, hactl, stateDir, log, node string
	bind, advertise, keyfile, metrics                         string
	raftBind                                                  string
	join, prefer                                              []string
	flags                                                     *pflag.FlagSet
	// cluster commands given (clusterCommands), by flag
	cluster map[string]*bool
}

// clusterCommands are the cluster commands: each a mode of its own, its
// arguments counted, sent to the daemon as an api.ClusterRequest.
var clusterCommands = []struct {
	flag, op, args, help string
	min, max             int
}{
	{"move", api.OpMove, "GROUP NODE", "move HA group GROUP to NODE now; it stays there until --clear", 2, 2},
	{"ban", api.OpBan, "GROUP NODE", "keep HA group GROUP off NODE until --clear (it moves off now)", 2, 2},
	{"clear", api.OpClear, "GROUP [NODE]", "forget GROUP's move and bans (those of NODE)", 1, 2},
	{"standby", api.OpStandby, "NODE", "NODE keeps running and holds no HA group: its groups move off", 1, 1},
	{"online", api.OpOnline, "NODE", "NODE may hold HA groups again (after --standby or --forget)", 1, 1},
	{"maintenance", api.OpMaintenance, "on|off", "maintenance mode: HA starts, stops and moves nothing", 1, 1},
	{"cleanup", api.OpCleanup, "GROUP [NODE]", "forget GROUP's failures and rule-outs (those on NODE)", 1, 2},
	{"forget", api.OpForget, "NODE", "NODE is dead and will not come back: its HA groups move at once", 1, 1},
}

// clusterCommand is the cluster command asked for, if any.
func (o *options) clusterCommand() (flag string, ok bool) {
	for _, cc := range clusterCommands {
		if *o.cluster[cc.flag] {
			return cc.flag, true
		}
	}
	return "", false
}

// showHastat is the value of a bare --hastat (or --hastat=-): print the
// cluster view to stdout.
const showHastat = "-"

func newFlags(o *options, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("clinit", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.BoolVarP(&o.daemon, "daemon", "d", false, "run the daemon in the foreground")
	fs.StringVarP(&o.cltab, "cltab", "c", DefaultCltab, "the cltab file")
	fs.StringVarP(&o.socket, "socket", "s", DefaultSocket, "the daemon's socket (cltab setting socket)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print the status lines after the action")
	fs.BoolVarP(&o.kill, "kill", "k", false, "stop every group gracefully; the daemon exits")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	fs.BoolVar(&o.check, "check", false, "validate the cltab and the hactl and exit 0 (valid) or 1")
	fs.BoolVar(&o.status, "status", false, "print the status lines only (no reread)")
	fs.BoolVar(&o.json, "json", false, "print the status as JSON, with every entry (implies --status without an action)")
	fs.StringVar(&o.clstat, "clstat", DefaultClstat, "the status file (cltab setting clstat)")
	fs.StringVar(&o.hastat, "hastat", DefaultHastat, "alone: print the cluster view; =PATH: the cluster status file (cltab setting hastat)")
	fs.Lookup("hastat").NoOptDefVal = showHastat
	fs.StringVar(&o.hactl, "hactl", DefaultHactl, "the HA control file (cltab setting hactl)")
	fs.StringVar(&o.stateDir, "state-dir", DefaultStateDir, "where the daemon keeps state across restarts (cltab setting statedir)")
	fs.StringVar(&o.log, "log", "", "also log to this file (cltab setting log)")
	fs.StringVar(&o.node, "node", "", "this node's name (default: the host name)")
	fs.BoolVar(&o.debug, "debug", false, "log at debug level")
	fs.BoolVar(&o.ha, "ha", false, "GROUP LEVEL: keep GROUP at LEVEL on one node of the cluster (edits the hactl)")
	fs.StringSliceVar(&o.prefer, "prefer", nil, "with --ha: the preferred nodes, in order (empty clears them)")
	o.cluster = map[string]*bool{}
	for _, cc := range clusterCommands {
		o.cluster[cc.flag] = fs.Bool(cc.flag, false, cc.args+": "+cc.help)
	}
	fs.StringVar(&o.bind, "bind", "", "cluster: HOST:PORT to listen on for gossip (default port 7946)")
	fs.StringVar(&o.advertise, "advertise", "", "cluster: HOST:PORT the other nodes reach this one at")
	fs.StringVar(&o.raftBind, "raft-bind", "", "cluster: HOST:PORT of this voter's raft port (default: --bind's host, its port + 1)")
	fs.StringSliceVar(&o.join, "join", nil, "cluster: HOST:PORT,... of nodes to join (retried until one answers)")
	fs.StringVar(&o.keyfile, "keyfile", "", "cluster: file holding the gossip encryption key (see --keygen)")
	fs.BoolVar(&o.insecure, "insecure", false, "cluster: allow a non-loopback --bind without a key")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics and a status page on [HOST:]PORT (a bare port binds 127.0.0.1)")
	fs.BoolVar(&o.keygen, "keygen", false, "[PATH]: print a new gossip encryption key, or write it to a new file PATH, mode 0600, and exit")
	fs.BoolVar(&o.watch, "watch", false, "[NODE]: print every change in the cluster (or of NODE: states, members, HA decisions, respawns, throttles, fencing, lease lapses) as a JSON line, until the daemon stops")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	o.flags = fs
	return fs
}

const synopsis = `usage:
  clinit -d [-c CLTAB] [-s SOCKET] [flags]   run the daemon, in the foreground
  clinit [-c CLTAB] [-s SOCKET] [-v] GROUP LEVEL
                                             tell GROUP to go to LEVEL
  clinit [-c CLTAB] [-s SOCKET] [-v] LEVEL   GROUP is this node's name
  clinit [-c CLTAB] [-s SOCKET] [-v]         reread the cltab
  clinit [-c CLTAB] [-s SOCKET] -k           stop every group; the daemon exits
  clinit --check [-c CLTAB] [--hactl PATH]   validate the cltab and the hactl
  clinit --status [--json]                   print the status
  clinit --hastat [--json]                   print the cluster view
  clinit --ha GROUP LEVEL [--prefer N1,N2]   keep GROUP at LEVEL on one node
  clinit --move GROUP NODE | --ban GROUP NODE | --clear GROUP [NODE]
  clinit --standby NODE | --online NODE | --forget NODE
  clinit --maintenance on|off | --cleanup GROUP [NODE]
                                             cluster commands (see clinit(8))
  clinit --keygen [PATH]                     print a new cluster key, or write it to PATH (mode 0600)
  clinit --watch [NODE]                      stream every change as JSON lines
  clinit --version
  clinit -h

exit status: 0 done, 1 failed (unknown group, invalid cltab), 2 usage, 3 no daemon

flags:
`

// Run runs clinit with args (without the program name) and returns the
// exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := newFlags(&o, stderr)
	fs.Usage = func() {}
	if err := fs.Parse(hastatPath(args)); err != nil {
		fmt.Fprintf(stderr, "clinit: %v\n%s", err, "run clinit -h for help\n")
		return ExitUsage
	}
	if o.help {
		fmt.Fprint(stdout, synopsis+fs.FlagUsages())
		return ExitOK
	}
	rest := fs.Args()
	showHA := o.hastat == showHastat
	if showHA {
		o.hastat = DefaultHastat
	}
	modes := 0
	for _, b := range []bool{o.daemon, o.kill, o.check, o.keygen, showHA, o.ha, o.watch, o.version} {
		if b {
			modes++
		}
	}
	for _, b := range o.cluster {
		if *b {
			modes++
		}
	}
	if flag, ok := o.clusterCommand(); ok && modes == 1 {
		return runClusterCommand(&o, flag, rest, stdout, stderr)
	}
	switch {
	case modes > 1:
		return usage(stderr, "-d, -k, --check, --keygen, --hastat, --ha, --watch, --version and the cluster commands exclude each other")
	case o.ha && len(rest) != 2:
		return usage(stderr, "--ha wants GROUP LEVEL")
	case o.watch && len(rest) > 1:
		return usage(stderr, "--watch takes at most one NODE")
	case o.keygen && len(rest) > 1:
		return usage(stderr, "--keygen takes at most one PATH")
	case modes == 1 && !o.ha && !o.watch && !o.keygen && len(rest) > 0:
		return usage(stderr, fmt.Sprintf("unexpected argument %q", rest[0]))
	case len(rest) > 2:
		return usage(stderr, fmt.Sprintf("too many arguments: %q", rest))
	case o.flags.Lookup("prefer").Changed && !o.ha:
		return usage(stderr, "--prefer goes with --ha")
	}
	switch {
	case o.check:
		return check(&o, stdout, stderr)
	case o.daemon:
		return runDaemon(&o, stderr)
	case o.keygen && len(rest) == 1:
		if err := cluster.WriteKey(rest[0]); err != nil {
			fmt.Fprintf(stderr, "clinit: %v\n", err)
			return ExitFail
		}
		fmt.Fprintf(stdout, "new cluster key in %s (mode 0600)\n", rest[0])
		return ExitOK
	case o.keygen:
		fmt.Fprintln(stdout, cluster.Keygen())
		return ExitOK
	case showHA:
		return runHastat(&o, stdout, stderr)
	case o.watch:
		return runWatch(&o, rest, stdout, stderr)
	case o.version:
		fmt.Fprintln(stdout, "clinit", Version())
		return ExitOK
	}
	return runClient(&o, rest, stdout, stderr)
}

// hastatPath lets `--hastat PATH` set the path like every other path
// flag, while a bare --hastat prints the view: the next argument is the
// path when the daemon is being run, or when it looks like one (has a /).
func hastatPath(args []string) []string {
	daemon := false
	for _, a := range args {
		if a == "--" {
			break
		}
		daemon = daemon || a == "-d" || a == "--daemon"
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			return append(out, args[i:]...)
		}
		if args[i] == "--hastat" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") &&
			(daemon || strings.Contains(args[i+1], "/")) {
			out = append(out, "--hastat="+args[i+1])
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func usage(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "clinit: %s\nrun clinit -h for help\n", msg)
	return ExitUsage
}

// path resolves a path: the flag if given, then the cltab setting, then
// the default (SPEC 1).
func (o *options) path(flag, setting string, t *cltab.Tab) string {
	f := o.flags.Lookup(flag)
	if f.Changed || t == nil {
		return f.Value.String()
	}
	if v, ok := t.Setting(setting); ok {
		return v
	}
	return f.Value.String()
}

func runDaemon(o *options, stderr io.Writer) int {
	t, err := cltab.Load(o.cltab)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, cltab.ErrInvalid) {
			fmt.Fprintf(stderr, "clinit: %s is invalid: not starting\n", o.cltab)
		}
		return ExitFail
	}
	name := o.node
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			fmt.Fprintf(stderr, "clinit: cannot tell this node's name (use --node): %v\n", err)
			return ExitFail
		}
	}
	log, err := daemon.NewLogger(o.path("log", "log", t), o.debug)
	if err != nil {
		fmt.Fprintf(stderr, "clinit: log file: %v\n", err)
		return ExitFail
	}
	defer log.Sync()
	var key []byte
	if o.keyfile != "" {
		if key, err = cluster.LoadKey(o.keyfile); err != nil {
			fmt.Fprintf(stderr, "clinit: %v\n", err)
			return ExitFail
		}
	}
	cfg := node.Config{
		Engine: daemon.Config{
			CltabPath: o.cltab,
			Tab:       t,
			Clstat:    o.path("clstat", "clstat", t),
			StateDir:  o.path("state-dir", "statedir", t),
			Node:      name,
			Log:       log.Logger,
		},
		Socket:    o.path("socket", "socket", t),
		ReopenLog: log.Reopen,
		Hactl:     o.path("hactl", "hactl", t),
		Hastat:    o.path("hastat", "hastat", t),
		Metrics:   node.MetricsAddr(o.metrics),
		Version:   Version(),
		Cluster: cluster.Config{
			Bind:      o.bind,
			Advertise: o.advertise,
			RaftBind:  o.raftBind,
			Join:      o.join,
			Key:       key,
			Insecure:  o.insecure,
		},
	}
	if err := node.Run(cfg); err != nil {
		fmt.Fprintf(stderr, "clinit: %v\n", err)
		return ExitFail
	}
	return ExitOK
}

// client finds the daemon's socket. The cltab may be invalid (that is
// what a reread reports), so only its socket setting is looked for.
func (o *options) client() *client.Client {
	socket := o.socket
	if !o.flags.Lookup("socket").Changed {
		if v, ok := fast.ScanSetting(o.cltab, "socket"); ok {
			socket = v
		}
	}
	return client.New(socket)
}

func runHastat(o *options, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	h, err := o.client().Hastat(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(h)
		return ExitOK
	}
	fmt.Fprint(stdout, h.Explained())
	return ExitOK
}

// runWatch prints the daemon's events, one JSON object a line, until the
// daemon stops (status 0).
func runWatch(o *options, rest []string, stdout, stderr io.Writer) int {
	node := ""
	if len(rest) == 1 {
		node = rest[0]
		if msg := cltab.BadName("node", node); msg != "" {
			return usage(stderr, msg)
		}
	}
	enc := json.NewEncoder(stdout)
	err := o.client().Watch(context.Background(), node, func(ev api.Event) error { return enc.Encode(ev) })
	if err != nil {
		return fail(stderr, err)
	}
	return ExitOK
}

// version is set at link time by make build (git describe).
var version string

// Version is the version clinit was built from: what make build stamped
// in, else the module version and VCS revision Go recorded.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := strings.Trim(bi.Main.Version, "()")
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			v += " " + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			v += "+dirty"
		}
	}
	return v
}

func runClient(o *options, rest []string, stdout, stderr io.Writer) int {
	// GROUP and LEVEL (and preferred nodes) are names (SPEC 1): a bad one
	// is a usage error, found before asking the daemon.
	for _, name := range append(append([]string{}, rest...), o.prefer...) {
		if msg := cltab.BadName("", name); msg != "" {
			return usage(stderr, msg)
		}
	}
	c := o.client()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()

	var msg string
	var err error
	switch {
	case o.kill:
		msg, err = c.Shutdown(context.Background())
	case o.ha:
		var prefer []string
		if o.flags.Lookup("prefer").Changed {
			prefer = append([]string{}, o.prefer...)
		}
		var m api.Message
		m, err = c.HA(ctx, rest[0], rest[1], prefer)
		msg = m.Message
		for _, w := range m.Warnings {
			fmt.Fprintln(stderr, "clinit: warning: "+w)
		}
	case len(rest) == 2:
		msg, err = c.Tell(ctx, rest[0], rest[1])
	case len(rest) == 1:
		msg, err = c.Tell(ctx, "", rest[0])
	case o.status || o.json:
		// status only
	default:
		msg, err = c.Reread(ctx)
	}
	if err != nil {
		return fail(stderr, err)
	}
	if msg != "" {
		fmt.Fprintln(stdout, msg)
	}
	if o.kill || !(o.verbose || o.status || o.json) {
		return ExitOK
	}
	st, err := c.Status(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	printStatus(stdout, st, o.json, o.status)
	return ExitOK
}

// runClusterCommand sends one cluster command (--move, --ban, ...) and
// prints what the cluster did.
func runClusterCommand(o *options, flag string, rest []string, stdout, stderr io.Writer) int {
	for _, cc := range clusterCommands {
		if cc.flag != flag {
			continue
		}
		if len(rest) < cc.min || len(rest) > cc.max {
			return usage(stderr, "--"+flag+" wants "+cc.args)
		}
		req := api.ClusterRequest{Op: cc.op}
		switch flag {
		case "maintenance":
			switch rest[0] {
			case "on", "off":
				req.On = rest[0] == "on"
			default:
				return usage(stderr, "--maintenance wants on or off, not "+strconv.Quote(rest[0]))
			}
		case "standby", "online", "forget":
			req.Node = rest[0]
		default:
			req.Group = rest[0]
			if len(rest) == 2 {
				req.Node = rest[1]
			}
		}
		for _, name := range []string{req.Group, req.Node} {
			if msg := cltab.BadName("", name); name != "" && msg != "" {
				return usage(stderr, msg)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		msg, err := o.client().Cluster(ctx, req)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintln(stdout, msg)
		return ExitOK
	}
	return usage(stderr, "unknown cluster command --"+flag)
}

// printStatus prints the status as JSON, or as clstat lines: exactly
// those of the file after an action (-v, SPEC 4), and with why after a
// FAILED group's for --status.
func printStatus(w io.Writer, st api.Status, asJSON, explain bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return
	}
	if explain {
		fmt.Fprint(w, st.Explained())
		return
	}
	fmt.Fprint(w, st.Clstat())
}

func fail(stderr io.Writer, err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) && len(ae.Lines) > 0 {
		for _, l := range ae.Lines {
			fmt.Fprintln(stderr, l)
		}
		fmt.Fprintln(stderr, "clinit: "+ae.Msg)
		return ExitFail
	}
	fmt.Fprintln(stderr, "clinit: "+err.Error())
	if errors.Is(err, client.ErrNoDaemon) {
		return ExitNoDaemon
	}
	return ExitFail
}
