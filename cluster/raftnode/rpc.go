package raftnode

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cluster/store"
)

// The RPCs of the raft port. A connection carries requests and replies
// as lines of JSON, in turn: edits forwarded to the leader, lease
// renewals, and reads of the committed state by nodes that do not vote.
const (
	rpcPropose    = "propose"
	rpcProposeAll = "propose-all"
	rpcRenew      = "renew"
	rpcState      = "state"
)

// maxRPCLine bounds one request or reply: a state with the largest
// cltab the parser accepts fits many times over.
const maxRPCLine = 16 << 20

type rpcRequest struct {
	Op string `json:"op"`
	// Seq numbers a renewal pipelined behind others (renew.go): its
	// answer carries it back, and may come before an earlier one's.
	Seq     uint64         `json:"seq,omitempty"`
	Node    string         `json:"node,omitempty"`
	Command *store.Command `json:"command,omitempty"`
	// propose-all: commands applied in one pipelined round (a node's
	// reports after it stopped hundreds of groups at once).
	Commands []store.Command `json:"commands,omitempty"`
}

// rpcResult is one command's outcome in a propose-all reply.
type rpcResult struct {
	Version uint64 `json:"version,omitempty"`
	Refused string `json:"refused,omitempty"` // the state machine's refusal
	Error   string `json:"error,omitempty"`   // not committed
}

type rpcReply struct {
	Seq     uint64          `json:"seq,omitempty"` // the request's
	Error   string          `json:"error,omitempty"`
	Leader  string          `json:"leader,omitempty"`  // not the leader: where it is, if known
	Version uint64          `json:"version,omitempty"` // propose: the commit's index
	Refused string          `json:"refused,omitempty"` // propose: the state machine's refusal
	Grant   *Grant          `json:"grant,omitempty"`
	State   json.RawMessage `json:"state,omitempty"`
	Results []rpcResult     `json:"results,omitempty"` // propose-all, one per command
}

// stateCache is the committed state as the state RPC sends it, encoded
// once per index: when an edit moves a file's version, every node that
// does not vote asks for the state at once (97 of them at 100 nodes),
// and encoding it for each, under the state machine's lock, held up
// the leader's applies and renewals until nodes were taken for dead.
type stateCache struct {
	mu    sync.Mutex
	index uint64
	b     []byte
}

// encoded returns f's state in JSON, encoded again only when it moved.
func (c *stateCache) encoded(f *fsm) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var index uint64
	f.read(func(s *store.State) { index = s.Index })
	if c.b != nil && c.index == index {
		return c.b, nil
	}
	st, _ := f.watch() // a copy: encoded outside the state machine's lock
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	c.index, c.b = st.Index, b
	return b, nil
}

// ErrNotLeader is a reply from a voter that does not lead.
var ErrNotLeader = errors.New("not the raft leader")

// maxPipelined bounds the numbered renewals of one connection answered
// at once; more wait, unread, for one of them to be answered.
const maxPipelined = 16

// serveRPC answers one connection's requests until it closes. Requests
// are answered in turn, but for numbered renewals: a renewal waits for
// the next leadership check, and those pipelined behind it would each
// wait for one more; answered at once, they share a check.
func (n *Node) serveRPC(c net.Conn) {
	defer c.Close()
	var (
		wmu      sync.Mutex
		werr     error
		inFlight = make(chan struct{}, maxPipelined)
		wg       sync.WaitGroup
	)
	defer wg.Wait()
	enc := json.NewEncoder(c)
	write := func(rep rpcReply) error {
		wmu.Lock()
		defer wmu.Unlock()
		if werr != nil {
			return werr
		}
		if rep.State != nil && rep.Error == "" { // only a state is in it
			// The state is JSON already (stateCache): written as it is,
			// not checked and copied again by the encoder.
			_, werr = c.Write(slices.Concat([]byte(`{"state":`), rep.State, []byte("}\n")))
		} else {
			werr = enc.Encode(rep)
		}
		return werr
	}
	answer := func(req rpcRequest) rpcReply {
		rep := n.handle(req)
		if rep.Error == ErrNotLeader.Error() {
			_, rep.Leader = n.Leader()
		}
		rep.Seq = req.Seq
		return rep
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), maxRPCLine)
	for sc.Scan() {
		var req rpcRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			if write(rpcReply{Error: "bad request: " + err.Error()}) != nil {
				return
			}
			continue
		}
		if req.Op == rpcRenew && req.Seq != 0 {
			inFlight <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				write(answer(req))
				<-inFlight
			}()
			continue
		}
		if write(answer(req)) != nil {
			return
		}
	}
	if err := sc.Err(); err != nil {
		log := n.log.Warn
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
			log = n.log.Debug // a client that gave up a call (abort in dial.go)
		}
		log("raft RPC connection", zap.String("remote", c.RemoteAddr().String()), zap.Error(err))
	}
}

func (n *Node) handle(req rpcRequest) rpcReply {
	switch req.Op {
	case rpcPropose:
		if req.Command == nil {
			return rpcReply{Error: "propose without a command"}
		}
		if !n.IsLeader() {
			return rpcReply{Error: ErrNotLeader.Error()}
		}
		r, err := n.apply(*req.Command)
		if err != nil {
			return rpcReply{Error: err.Error()}
		}
		rep := rpcReply{Version: r.Version}
		if r.Err != nil {
			rep.Refused = r.Err.Error()
		}
		return rep
	case rpcProposeAll:
		if len(req.Commands) == 0 {
			return rpcReply{Error: "propose-all without commands"}
		}
		if !n.IsLeader() {
			return rpcReply{Error: ErrNotLeader.Error()}
		}
		res, errs := n.proposeAll(req.Commands)
		if res == nil {
			return rpcReply{Error: ErrNotLeader.Error()}
		}
		rep := rpcReply{Results: make([]rpcResult, len(res))}
		for i, r := range res {
			rep.Results[i].Version = r.Version
			switch {
			case errs[i] != nil:
				rep.Results[i].Error = errs[i].Error()
			case r.Err != nil:
				rep.Results[i].Refused = r.Err.Error()
			}
		}
		return rep
	case rpcRenew:
		if req.Node == "" {
			return rpcReply{Error: "renew without a node"}
		}
		g, err := n.grant.renew(req.Node, time.Now())
		if err != nil {
			return rpcReply{Error: err.Error()}
		}
		return rpcReply{Grant: &g}
	case rpcState:
		if !n.IsLeader() {
			return rpcReply{Error: ErrNotLeader.Error()}
		}
		b, err := n.state.encoded(n.fsm)
		if err != nil {
			return rpcReply{Error: err.Error()}
		}
		return rpcReply{State: b}
	}
	return rpcReply{Error: fmt.Sprintf("unknown request %q", req.Op)}
}

// Client calls the leader's RPCs from any node. It keeps one connection,
// follows a voter's word on where the leader is, and otherwise tries
// the addresses its targets function gives, in turn.
type Client struct {
	d       *Dialer
	targets func() []string

	mu   sync.Mutex // one call at a time on the connection
	conn net.Conn
	rd   *bufio.Reader
	addr string // the connection's, or the leader named last
	next int    // the next target to try
}

// NewClient returns a client that looks for the leader among targets
// (the voters' raft addresses, from memberlist).
func NewClient(d *Dialer, targets func() []string) *Client {
	return &Client{d: d, targets: targets}
}

// Close drops the connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop()
}

func (c *Client) drop() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.rd = nil, nil
	}
}

// abandon drops a connection after an error: the request or reply on it
// may be cut short.
func (c *Client) abandon() {
	if c.conn != nil {
		abort(c.conn)
		c.conn, c.rd = nil, nil
	}
}

// callTimeout bounds one attempt when the context has no deadline.
const callTimeout = 5 * time.Second

// call sends req to the leader and returns its reply, retrying on
// another voter while the context allows.
func (c *Client) call(ctx context.Context, req rpcRequest) (rpcReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := json.Marshal(req)
	if err != nil {
		return rpcReply{}, err
	}
	b = append(b, '\n')
	var last error
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last != nil {
				return rpcReply{}, fmt.Errorf("%w (last: %v)", err, last)
			}
			return rpcReply{}, err
		}
		if attempt > 0 {
			// Back off a little between rounds: an election is under way.
			select {
			case <-time.After(min(time.Duration(attempt)*20*time.Millisecond, 200*time.Millisecond)):
			case <-ctx.Done():
				continue
			}
		}
		if c.conn == nil {
			addr := c.addr
			if addr == "" {
				t := c.targets()
				if len(t) == 0 {
					last = errors.New("no voter known")
					continue
				}
				addr = t[c.next%len(t)]
				c.next++
			}
			// A dial may not outlast the call: a renewal must move on
			// from a voter cut off (SYNs unanswered) within its own
			// timeout, to the next voter.
			timeout := callTimeout
			if d, ok := ctx.Deadline(); ok {
				timeout = min(timeout, max(time.Until(d), time.Millisecond))
			}
			conn, err := c.d.dial(addr, connRPC, timeout)
			if err != nil {
				last, c.addr = err, ""
				continue
			}
			c.conn, c.rd, c.addr = conn, bufio.NewReaderSize(conn, 64<<10), addr
		}
		deadline := time.Now().Add(callTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.conn.SetDeadline(deadline)
		rep, err := c.roundTrip(b)
		if err != nil {
			last, c.addr = err, ""
			c.abandon()
			continue
		}
		if rep.Error == ErrNotLeader.Error() {
			last = fmt.Errorf("%s: %s", c.addr, rep.Error)
			c.drop()
			c.addr = rep.Leader // "" when it knows none: try the next target
			continue
		}
		if rep.Error != "" {
			return rep, fmt.Errorf("%s: %s", c.addr, rep.Error)
		}
		return rep, nil
	}
}

func (c *Client) roundTrip(b []byte) (rpcReply, error) {
	if _, err := c.conn.Write(b); err != nil {
		return rpcReply{}, err
	}
	line, err := c.rd.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// A state larger than the buffer: copy what was read before
		// reading the rest of the line, which reuses the buffer.
		line = append([]byte(nil), line...)
		rest, err2 := c.rd.ReadBytes('\n')
		line, err = append(line, rest...), err2
	}
	if err != nil {
		return rpcReply{}, err
	}
	var rep rpcReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return rpcReply{}, fmt.Errorf("bad reply: %w", err)
	}
	return rep, nil
}

// Propose commits a command through the leader.
func (c *Client) Propose(ctx context.Context, cmd store.Command) (store.Result, error) {
	rep, err := c.call(ctx, rpcRequest{Op: rpcPropose, Command: &cmd})
	if err != nil {
		return store.Result{}, err
	}
	r := store.Result{Version: rep.Version}
	if rep.Refused != "" {
		r.Err = errors.New(rep.Refused)
	}
	return r, nil
}

// ProposeAll commits commands through the leader in one round trip, and
// returns each one's result (Err set for a refused or uncommitted one).
func (c *Client) ProposeAll(ctx context.Context, cmds []store.Command) ([]store.Result, error) {
	rep, err := c.call(ctx, rpcRequest{Op: rpcProposeAll, Commands: cmds})
	if err != nil {
		return nil, err
	}
	if len(rep.Results) != len(cmds) {
		return nil, fmt.Errorf("%d results for %d commands", len(rep.Results), len(cmds))
	}
	out := make([]store.Result, len(cmds))
	for i, r := range rep.Results {
		out[i].Version = r.Version
		switch {
		case r.Refused != "":
			out[i].Err = errors.New(r.Refused)
		case r.Error != "":
			out[i].Err = errors.New(r.Error)
		}
	}
	return out, nil
}

// Renew asks the leader for a lease (lease.go).
func (c *Client) Renew(ctx context.Context, node string) (Grant, error) {
	rep, err := c.call(ctx, rpcRequest{Op: rpcRenew, Node: node})
	if err != nil {
		return Grant{}, err
	}
	if rep.Grant == nil {
		return Grant{}, errors.New("renewal answered without a grant")
	}
	return *rep.Grant, nil
}

// State reads the leader's committed state.
func (c *Client) State(ctx context.Context) (*store.State, error) {
	rep, err := c.call(ctx, rpcRequest{Op: rpcState})
	if err != nil {
		return nil, err
	}
	return store.Unmarshal(rep.State)
}
