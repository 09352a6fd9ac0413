package keeper

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
)

// Flag is the hidden flag of the clinit binary that runs the keeper.
const Flag = "--keeper"

// DefaultIdle is how long a keeper that holds nothing waits for a
// daemon before it exits.
const DefaultIdle = 10 * time.Second

// Wanted reports whether args (without the program name) ask for the
// keeper: they start with --keeper.
func Wanted(args []string) bool {
	return len(args) > 0 && (args[0] == Flag || strings.HasPrefix(args[0], Flag+"="))
}

// Main runs the keeper: args are `--keeper DIR --node NAME [--idle DUR]`.
// It logs to stderr and returns the exit status: 0 when it exits as
// asked or idle, 1 when it cannot start, 2 on a usage error.
func Main(args []string, stderr io.Writer) int {
	fs := pflag.NewFlagSet("clinit --keeper", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("keeper", "", "the keeper's directory (its socket is DIR/"+SocketName+")")
	node := fs.String("node", "", "the node whose HA groups it stops")
	idle := fs.Duration("idle", DefaultIdle, "exit after this long with nothing held and no daemon connected")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "clinit --keeper: unexpected argument %q\n", fs.Arg(0))
		return 2
	case *dir == "":
		fmt.Fprintln(stderr, "clinit --keeper: DIR missing")
		return 2
	case *node == "":
		fmt.Fprintln(stderr, "clinit --keeper: --node missing")
		return 2
	case *idle <= 0:
		fmt.Fprintf(stderr, "clinit --keeper: --idle %s must be positive\n", *idle)
		return 2
	}
	if err := checkName(*node); err != nil {
		fmt.Fprintf(stderr, "clinit --keeper: --node %v\n", err)
		return 2
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "clinit --keeper: %v\n", err)
		return 1
	}
	if err := Serve(abs, *node, *idle, stderr); err != nil {
		fmt.Fprintf(stderr, "clinit --keeper: %v\n", err)
		return 1
	}
	return 0
}

// Serve runs a keeper for node on dir/keeper.s until it is asked to
// exit, is signalled, or has been idle for idle.
func Serve(dir, node string, idle time.Duration, stderr io.Writer) error {
	// stderr is often a pipe to the daemon: when the daemon dies, a log
	// line must fail, not kill the keeper with SIGPIPE. A hangup of the
	// daemon's terminal is no reason to go either.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	// Spare the keeper from the OOM killer, as conmon does; only root
	// may, so a failure is ignored.
	os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)

	log := newLogger(stderr, filepath.Join(dir, LogName), node)
	defer log.close(time.Second)
	ln, lock, err := listen(dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	defer ln.Close()
	k, err := newKeeper(node, log)
	if err != nil {
		return err
	}
	k.dir = dir
	defer k.lease.close()
	defer k.kill.close()
	log.Info("start", zap.String("socket", filepath.Join(dir, SocketName)), zap.Duration("idle", idle))
	// Out of the daemon's working directory, so as not to keep it busy.
	os.Chdir("/")
	l := newLoop(k, ln, idle)
	l.run(sigs)
	l.closeAll()
	return nil
}
