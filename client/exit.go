package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"golang.org/x/sys/unix"

	"github.com/clinit/clinit/api"
)

// Shutdown asks the daemon to stop every group and exit. The daemon
// answers once everything has stopped; Shutdown returns once the daemon
// process has exited too, so that its socket, its state directory and its
// status file are free when it returns: the peer credentials of the
// connection name the process, and a pidfd opened on it at once (while
// it is surely the daemon) says when it ends.
func (c *Client) Shutdown(ctx context.Context) (string, error) {
	var daemon *exitWatch
	var m api.Message
	err := c.doWith(ctx, func(conn net.Conn) {
		if daemon == nil {
			daemon = watchPeer(conn)
		}
	}, http.MethodPost, api.PathShutdown, nil, &m)
	if daemon != nil {
		defer daemon.close()
		if err == nil {
			if werr := daemon.wait(ctx); werr != nil {
				err = fmt.Errorf("the clinit daemon on %s stopped every group but has not exited: %w", c.Socket, werr)
			}
		}
	}
	return m.Message, err
}

// exitWatch is a pidfd of a process, readable once the process has ended.
type exitWatch struct{ pidfd int }

// watchPeer opens a pidfd on the process at the other end of a UNIX
// socket connection; nil when that is not possible (an old kernel, a
// peer in another PID namespace): then Shutdown returns with the answer.
func watchPeer(conn net.Conn) *exitWatch {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	pid := 0
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	if pid <= 0 {
		return nil
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil
	}
	return &exitWatch{pidfd: fd}
}

// wait returns once the process has exited, or when ctx ends.
func (w *exitWatch) wait(ctx context.Context) error {
	// A pipe to wake the poll when ctx ends.
	r, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	defer wr.Close()
	stop := context.AfterFunc(ctx, func() { wr.Write([]byte{0}) })
	defer stop()
	fds := []unix.PollFd{{Fd: int32(w.pidfd), Events: unix.POLLIN}, {Fd: int32(r.Fd()), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return err
		case fds[0].Revents != 0:
			return nil
		case fds[1].Revents != 0:
			return ctx.Err()
		}
	}
}

func (w *exitWatch) close() { unix.Close(w.pidfd) }
