package keeper

// The wire protocol: one JSON object per line each way. The daemon sends
// a Request and reads the Reply with the same ID before it sends the next.

// Protocol is the version of this protocol, in every State: a daemon
// upgraded while an older keeper runs learns that it speaks another.
const Protocol = 1

// Request operations.
const (
	OpLease   = "lease"   // Deadline, StopTimeout: enforce at Deadline
	OpHold    = "hold"    // Group: its processes are about to start
	OpWatch   = "watch"   // Group, Pid, Start: a process-group leader of Group
	OpUnwatch = "unwatch" // Pid: that process exited
	OpRelease = "release" // Group: stopped; forget it and its processes
	OpState   = "state"   // reply with the State
	OpExit    = "exit"    // exit now; refused while a group is held
)

// Request is one line from the daemon.
type Request struct {
	ID uint64 `json:"id"`
	Op string `json:"op"`
	// Deadline is an absolute CLOCK_BOOTTIME instant in nanoseconds, the
	// clock BoottimeNow reads.
	Deadline int64 `json:"deadline,omitempty"`
	// StopTimeout is the grace, in nanoseconds, between SIGTERM and
	// SIGKILL when the lease lapses.
	StopTimeout int64  `json:"stop_timeout,omitempty"`
	Group       string `json:"group,omitempty"`
	Pid         int    `json:"pid,omitempty"`
	// Start is field 22 of /proc/PID/stat (clock ticks since boot): with
	// Pid it names one process, never a later one that reuses the pid.
	Start uint64 `json:"start,omitempty"`
}

// Reply answers the Request with the same ID. Error is empty on success;
// a request with an error changed nothing.
type Reply struct {
	ID    uint64 `json:"id"`
	Error string `json:"error,omitempty"`
	State *State `json:"state,omitempty"`
}

// State is the keeper's whole state, the reply to OpState: what a
// restarted daemon reads to take the keeper over.
type State struct {
	Protocol    int       `json:"protocol"`
	Node        string    `json:"node"`
	Pid         int       `json:"pid"`
	Now         int64     `json:"now"` // CLOCK_BOOTTIME ns when the reply was made
	Deadline    int64     `json:"deadline"`
	StopTimeout int64     `json:"stop_timeout"`
	Held        []string  `json:"held"`
	Watched     []Watched `json:"watched"`
	// Lapses counts the deadlines that passed with a group held; Last is
	// the most recent one.
	Lapses int    `json:"lapses"`
	Last   *Lapse `json:"last,omitempty"`
}

// Watched is a process-group leader the keeper signals at a lapse.
type Watched struct {
	Group string `json:"group"`
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// Lapse is what the keeper did when a deadline passed.
type Lapse struct {
	Deadline int64 `json:"deadline"` // the deadline that passed
	At       int64 `json:"at"`       // when the keeper acted on it
	// Termed got SIGTERM at At; Killed was still alive after the stop
	// timeout and got SIGKILL at KilledAt (0: not yet, or nothing left).
	Termed   []Signalled `json:"termed"`
	Killed   []Signalled `json:"killed"`
	KilledAt int64       `json:"killed_at,omitempty"`
	Done     bool        `json:"done"` // the SIGKILL round has run
}

// Signalled is one process, or process group, the keeper signalled.
type Signalled struct {
	Group string `json:"group"`
	Pid   int    `json:"pid"`
	// Whole is set when the signal went to the process group Pid leads.
	Whole bool `json:"whole"`
	// Why is "watched" (named by a watch) or "environ" (found by its
	// CLINIT_NODE and CLINIT_GROUP).
	Why string `json:"why"`
}
