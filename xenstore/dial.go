package xenstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
)

// DefaultSocket is libxenstore's socket when neither XENSTORED_PATH nor
// XENSTORED_RUNDIR is set.
const DefaultSocket = "/var/run/xenstored/socket"

// XenbusDevice is the kernel's xenstore device, used when no socket works
// (in a domU, or a dom0 whose xenstored runs in a stub domain).
const XenbusDevice = "/dev/xen/xenbus"

// SocketPath returns the socket libxenstore would use: $XENSTORED_PATH,
// else $XENSTORED_RUNDIR/socket, else DefaultSocket.
func SocketPath() string {
	if p := os.Getenv("XENSTORED_PATH"); p != "" {
		return p
	}
	if d := os.Getenv("XENSTORED_RUNDIR"); d != "" {
		return filepath.Join(d, "socket")
	}
	return DefaultSocket
}

// Dial connects as libxenstore's xs_open does: the unix socket named by
// SocketPath, and if that fails, XenbusDevice. The error wraps
// ErrNoDaemon and both causes.
func Dial(ctx context.Context, cfg *Config) (*Client, error) {
	path := SocketPath()
	c, serr := DialSocket(ctx, path, cfg)
	if serr == nil {
		return c, nil
	}
	c, xerr := DialXenbus(ctx, cfg)
	if xerr == nil {
		return c, nil
	}
	return nil, newOpError(OpDial, "", fmt.Errorf("%w: %w; %w", ErrNoDaemon, serr, xerr))
}

// DialSocket connects to xenstored's unix socket at path. While the
// daemon's listen backlog is full (EAGAIN) it retries until ctx is done.
func DialSocket(ctx context.Context, path string, cfg *Config) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, newOpError(OpDial, path, err)
	}
	// connect(2) on a unix socket does not block; it fails with EAGAIN
	// while the daemon's listen backlog is full, so retry that until ctx
	// is done.
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		conn, err := dialUnix(path)
		if err == nil {
			return NewClient(conn, cfg), nil
		}
		if !errors.Is(err, syscall.EAGAIN) {
			return nil, newOpError(OpDial, path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, newOpError(OpDial, path, fmt.Errorf("%w (last: %w)", ctx.Err(), err))
		case <-t.C:
		}
	}
}

// DialXenbus opens XenbusDevice. The kernel device accepts whole frames
// and queues replies; ctx only bounds the open. Through the device,
// requests go one at a time (Linux 6.1's device mixes up requests in
// flight together on one open file), request payloads are limited to
// 4080 bytes, WATCH and UNWATCH are
// answered by the kernel, and a WATCH the daemon refuses fails with the
// daemon's errno, the connection staying usable.
func DialXenbus(ctx context.Context, cfg *Config) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, newOpError(OpDial, XenbusDevice, err)
	}
	f, err := os.OpenFile(XenbusDevice, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w (is this a Xen domain with xenfs/xenbus loaded?)", err)
		}
		return nil, newOpError(OpDial, XenbusDevice, err)
	}
	return NewClient(xenbusConn{f}, cfg), nil
}

// kernelConn is a connection through an operating system kernel's
// xenstore device rather than to the daemon itself.
type kernelConn interface {
	// maxPayload is the largest request payload it accepts.
	maxPayload() int
}

// xenbusConn is Linux's /dev/xen/xenbus. The kernel buffers each request
// in one 4096-byte buffer, header included, so payloads are 16 bytes
// shorter than on a socket. It takes a frame written in one write(2)
// whole or rejects it whole with an errno, leaving the stream usable:
// WATCH and UNWATCH it answers itself, and a WATCH the daemon refuses
// fails the write(2) instead of getting an XS_ERROR reply.
type xenbusConn struct{ *os.File }

func (xenbusConn) maxPayload() int { return wire.PayloadMax - wire.HeaderSize }
