// Package client is the Go client of the daemon's local socket protocol
// (package api). It turns transport failures into sentences that tell the
// operator what to check.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/client/fast"
)

// ErrNoDaemon is matched by the error of any call that could not reach a
// daemon on the socket.
var ErrNoDaemon = errors.New("no clinit daemon")

// Client talks to one daemon socket. Each request has a connection of
// its own (conn.go), and talks only to a daemon of root or of the
// client's own user (peer.go).
type Client struct {
	Socket string
	// TrustUID, when not negative, is one more user whose daemon this
	// client talks to (a test bed running each node as a user of its
	// own). New sets it to -1.
	TrustUID int
}

// New returns a client of the daemon listening on socket.
func New(socket string) *Client {
	return &Client{Socket: socket, TrustUID: -1}
}

// APIError is an error the daemon answered with.
type APIError struct {
	Code  int      // HTTP status
	Msg   string   // the daemon's message
	Lines []string // one problem per line, when there are several
}

func (e *APIError) Error() string {
	if len(e.Lines) > 0 {
		return strings.Join(e.Lines, "\n")
	}
	return e.Msg
}

// Tell asks the daemon to move group to level; an empty group means the
// node's own group. It returns the daemon's one-line answer.
func (c *Client) Tell(ctx context.Context, group, level string) (string, error) {
	var m api.Message
	err := c.do(ctx, http.MethodPost, api.PathTell, api.TellRequest{Group: group, Level: level}, &m)
	return m.Message, err
}

// Reread asks the daemon to reread its cltab.
func (c *Client) Reread(ctx context.Context) (string, error) {
	var m api.Message
	err := c.do(ctx, http.MethodPost, api.PathReread, nil, &m)
	return m.Message, err
}

// Status returns the daemon's groups.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	err := c.do(ctx, http.MethodGet, api.PathStatus, nil, &st)
	return st, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWith(ctx, nil, method, path, in, out)
}

// doWith is do, with onConn (when not nil) given the connection once the
// daemon's credentials passed.
func (c *Client) doWith(ctx context.Context, onConn func(net.Conn), method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://clinit"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set(api.VersionHeader, api.Version)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.roundTrip(ctx, req, onConn)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the daemon's answer on %s: %w", c.Socket, err)
	}
	if resp.StatusCode/100 != 2 {
		return apiError(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("bad answer from the daemon on %s: %w", c.Socket, err)
	}
	return nil
}

// apiError is the error a daemon answered with (the body data of resp),
// or, when the body says nothing, the status.
func apiError(resp *http.Response, data []byte) error {
	var ae api.Error
	if json.Unmarshal(data, &ae) != nil || ae.Error == "" {
		ae.Error = fmt.Sprintf("daemon answered %s", resp.Status)
	}
	return &APIError{Code: resp.StatusCode, Msg: ae.Error, Lines: ae.Lines}
}

// transportError says what to check when the daemon cannot be reached.
func (c *Client) transportError(err error) error {
	switch {
	case errors.Is(err, ErrUntrusted):
		return err
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("%w: cannot connect to %s: permission denied (the socket is root's: run as root)", ErrNoDaemon, c.Socket)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("the clinit daemon on %s did not answer in time: %w", c.Socket, err)
	}
	return noDaemon(c.Socket)
}

// noDaemon is the error of a socket no daemon answers on; it matches
// ErrNoDaemon, and says what the fast tell says.
type noDaemon string

func (s noDaemon) Error() string        { return fast.NoDaemon(string(s)) }
func (s noDaemon) Is(target error) bool { return target == ErrNoDaemon }

// Hastat returns the cluster view as the daemon sees it.
func (c *Client) Hastat(ctx context.Context) (api.Hastat, error) {
	var h api.Hastat
	err := c.do(ctx, http.MethodGet, api.PathHastat, nil, &h)
	return h, err
}

// HA sets group's line of the hactl, replicated to every node. A nil
// prefer keeps the preferred nodes the line has.
func (c *Client) HA(ctx context.Context, group, level string, prefer []string) (api.Message, error) {
	var m api.Message
	err := c.do(ctx, http.MethodPost, api.PathHA, api.HARequest{Group: group, Level: level, Prefer: prefer}, &m)
	return m, err
}

// Cluster sends a cluster command (--move, --ban, ...) and returns what
// the cluster did.
func (c *Client) Cluster(ctx context.Context, req api.ClusterRequest) (string, error) {
	var m api.Message
	err := c.do(ctx, http.MethodPost, api.PathCluster, req, &m)
	return m.Message, err
}

// Watch streams the daemon's events (only those of node, unless empty) to
// f until the daemon ends the stream (it stops: Watch returns nil), ctx
// ends, or f returns an error.
func (c *Client) Watch(ctx context.Context, node string, f func(api.Event) error) error {
	path := api.PathWatch
	if node != "" {
		path += "?node=" + url.QueryEscape(node)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://clinit"+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set(api.VersionHeader, api.Version)
	resp, err := c.roundTrip(ctx, req, nil)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return apiError(resp, data)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev api.Event
		err := dec.Decode(&ev)
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading events from %s: %w", c.Socket, err)
		}
		if err := f(ev); err != nil {
			return err
		}
	}
}
