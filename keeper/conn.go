package keeper

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// maxLine bounds one request line.
const maxLine = 64 << 10

// replyTimeout bounds writing one reply: a daemon that stops reading
// loses its connection (the keeper goes on enforcing).
const replyTimeout = 5 * time.Second

// call is one request on its way to the loop; the loop answers on reply.
type call struct {
	conn  uint64 // which connection it came on
	req   Request
	reply chan Reply
	sent  chan struct{} // closed once the reply is written (or failed)
}

// serveConn reads requests off c, one line each, hands each to the loop
// on calls and writes the loop's reply back. It is the only goroutine
// that reads or writes c; the loop only closes it. It tells the loop on
// gone when c ends.
func serveConn(id uint64, c net.Conn, calls chan<- call, gone chan<- uint64, done <-chan struct{}) {
	defer func() {
		c.Close()
		select {
		case gone <- id:
		case <-done:
		}
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), maxLine)
	enc := json.NewEncoder(c)
	write := func(r Reply) bool {
		c.SetWriteDeadline(time.Now().Add(replyTimeout))
		return enc.Encode(r) == nil
	}
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		req, err := decodeRequest(line)
		if err != nil {
			if !write(Reply{ID: req.ID, Error: err.Error()}) {
				return
			}
			continue
		}
		cl := call{conn: id, req: req, reply: make(chan Reply, 1), sent: make(chan struct{})}
		select {
		case calls <- cl:
		case <-done:
			return
		}
		var r Reply
		select {
		case r = <-cl.reply:
		case <-done:
			return
		}
		ok := write(r)
		close(cl.sent)
		if !ok {
			return
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		write(Reply{Error: fmt.Sprintf("request line longer than %d bytes: closing the connection", maxLine)})
	}
}

// decodeRequest parses and validates one line. On an error the returned
// request carries the line's id when it could be read, so that the
// client can match the error to its request.
func decodeRequest(line []byte) (Request, error) {
	var req Request
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		var id struct {
			ID uint64 `json:"id"`
		}
		json.Unmarshal(line, &id)
		return Request{ID: id.ID}, fmt.Errorf("bad request %.80q: %v", line, err)
	}
	if d.More() {
		return Request{ID: req.ID}, fmt.Errorf("bad request %.80q: more than one JSON value on the line", line)
	}
	if err := validate(&req); err != nil {
		return Request{ID: req.ID}, err
	}
	return req, nil
}
