package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
)

// roundTrip sends req on a connection of its own and reads the answer's
// head; the body reads from the connection, and closing it closes the
// connection. The daemon is told to close it after the answer.
//
// It is http.Transport's job done without the Transport: for one request
// on a local socket, the Transport's connection pool and its reader and
// writer goroutines are all start-up cost in the command-line client,
// which the CLI's `clinit GROUP LEVEL` pays before its request is sent.
//
// The request is cancelled by closing the connection when ctx ends, which
// also ends a body being read (a --watch stream).
func (c *Client) roundTrip(ctx context.Context, req *http.Request, onConn func(net.Conn)) (*http.Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return nil, err
	}
	if err := checkPeer(conn, c.Socket, c.TrustUID); err != nil {
		conn.Close()
		return nil, err
	}
	if onConn != nil {
		onConn(conn)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, err
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return fail(err)
	}
	resp.Body = &connBody{ReadCloser: resp.Body, conn: conn, stop: stop}
	return resp, nil
}

// connBody is an answer's body: closing it closes the connection.
type connBody struct {
	io.ReadCloser
	conn net.Conn
	stop func() bool
}

func (b *connBody) Close() error {
	b.stop()
	b.ReadCloser.Close()
	return b.conn.Close()
}
