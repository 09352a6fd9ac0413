// Package keeper owns the lease keeper: a small process, separate from
// the daemon, that stops this node's HA process groups when the daemon's
// lease deadline passes, even if the daemon is frozen (SIGSTOP), dead
// (SIGKILL) or stuck (HA.md, I3). Like containerd-shim or conmon, it
// outlives the daemon that started it, and a restarted daemon takes it
// over. The package holds both ends: the keeper (Main, Serve), run as
// `clinit --keeper DIR --node NAME`, and the daemon's client (Dial,
// Ensure, Client). It imports nothing of the daemon or the cluster, so
// the keeper starts fast and stays small.
//
// # Protocol
//
// Newline-delimited JSON on DIR/keeper.s (mode 0600; DIR must be ours
// and writable by nobody else; peers must be root or our uid, checked
// with SO_PEERCRED). One daemon connection at a time: the first request
// for a change on another connection (a restarted daemon's) makes that
// one the daemon's and closes the old one. A connection that only asks
// for the state (an operator's tool; a restarted daemon before it takes
// over) replaces nothing. The daemon
//   - sends lease (deadline, stop timeout) before anything else and at
//     every renewal; the deadline is an absolute CLOCK_BOOTTIME instant
//     in nanoseconds (BoottimeNow), the same instant for every process
//     on the machine with no clock transfer, time suspended included.
//     The keeper takes whatever deadline it is given, later or earlier;
//   - sends hold G, and has its answer, before it starts G's first
//     process; hold is refused without a lease or once it has ended;
//   - sends watch (G, pid, start time) for each process-group leader it
//     starts, unwatch when one exits, release G once G has stopped;
//   - reads state after a restart to take the keeper over: the deadline,
//     the held groups, the watched processes, and what the last lapse did;
//   - stops its HA groups itself when Client.Done closes: the keeper
//     exited, another connection replaced this one, or a request went
//     unanswered past its context's deadline.
//
// A bad request gets an error reply naming what is wrong and changes
// nothing.
//
// # What the keeper guarantees, and its bound
//
// At the deadline D, if a group is held, the keeper sends SIGTERM to
// every watched process group whose leader is still the process watched
// (a pidfd opened at the watch, checked against the start time, names
// it: a reused pid is never signalled), then to every process whose
// environment has CLINIT_NODE=<node> and CLINIT_GROUP=<a held group>
// (this finds a process started after hold whose watch never came,
// because the daemon died in between). Whatever of those still runs
// after the stop timeout F gets SIGKILL, and so, if no new lease has
// come meanwhile, does every process of a held group a new scan finds
// then (one that started in the grace). The held groups stay held; the
// lapse is recorded in the state. A process watched after D is stopped
// at once, in a lapse of its own.
//
// The deadline is armed on a timerfd on CLOCK_BOOTTIME with an absolute
// expiry, read through the runtime's poller: it fires late only by
// scheduling delay (the lapse log line says how late: 0.04-0.2 ms in the
// tests here), never by drift or time suspended. Nothing the loop does at a lapse can block:
// log lines are dropped when stderr's reader (often the daemon) stops
// reading, replies are written by each connection's own goroutine, and
// SIGPIPE is ignored, so a dead daemon's closed pipe does not kill the
// keeper: its log goes on in DIR/keeper.log (1 MiB, then keeper.log.1). So, with S the time to scan /proc (logged at each
// lapse; 2-4 ms for the 100 processes of a busy test machine, about
// 20 µs a process) and δ the scheduling delay (plus, at worst, one scan
// the loop is in the middle of when the alarm fires):
//
//	watched groups get SIGTERM by D + δ, the others by D + δ + S;
//	what is left gets SIGKILL by D + 2δ + F, a straggler by D + 2δ + F + S;
//
// and a SIGKILLed process is gone when the kernel delivers the signal:
// the F + a few ms of HA.md's lease argument. When the keeper
// itself is told to go (SIGTERM, SIGINT) while it holds a group, it runs
// the lapse first, at once, and exits after its SIGKILL round. As root it
// sets its oom_score_adj to -1000.
//
// Without a daemon connection the keeper goes on enforcing; once it
// holds nothing and no daemon has been connected for the idle period
// (--idle, 10 s by default), it exits and removes its socket.
//
// # What it cannot do
//
//   - A whole-machine freeze (a paused VM): the keeper is frozen too, and
//     on resume the processes may run briefly before it acts. Use stomith
//     or a hardware watchdog.
//   - A process that leaves its process group and clears or replaces its
//     environment (setsid, then exec with a clean environment) is found
//     by neither the watch nor the scan.
//   - A process group whose watched leader has been reaped is signalled
//     through the members the scan finds, not as a group.
//   - A keeper killed with SIGKILL, or frozen, enforces nothing: the
//     daemon learns it from Client.Done and must stop the groups itself.
//   - A process in uninterruptible sleep (D state) dies only when the
//     kernel lets it, SIGKILL or not.
//   - Starved of CPU, the keeper runs late by that much: it has no
//     real-time priority.
package keeper
