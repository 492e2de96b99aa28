package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// linkFlags configure the connection of migrate, receive and replicate.
type linkFlags struct {
	ssh       string
	remoteCmd string
	ioTimeout time.Duration
	rateMiB   float64
}

func (l *linkFlags) register(cmd *cobra.Command, sender bool) {
	f := cmd.Flags()
	if sender {
		f.StringVar(&l.ssh, "ssh", "ssh", `command that reaches HOST when HOST has no :PORT ("" runs the receive command locally, like xl migrate -s "")`)
		f.StringVar(&l.remoteCmd, "receive-command", "xenckpt receive", "the command run on HOST through --ssh")
		f.Float64Var(&l.rateMiB, "rate-limit", 0, "send at most this many MiB/s (0: unlimited)")
	}
	f.DurationVar(&l.ioTimeout, "io-timeout", 60*time.Second, "fail when the link moves no data for this long (0: never)")
}

// link is one migration connection: TCP, or the stdin/stdout of a
// command (ssh) or of this process.
type link struct {
	io.Reader
	io.Writer
	closeFn func() error
}

func (l *link) Close() error {
	if l.closeFn == nil {
		return nil
	}
	return l.closeFn()
}

// dialPeer connects to HOST: "host:port" over TCP, anything else through
// the ssh command running the receiver there.
func (a *app) dialPeer(ctx context.Context, peer string, lf *linkFlags) (io.ReadWriteCloser, error) {
	if _, port, err := net.SplitHostPort(peer); err == nil && port != "" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", peer)
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", peer, err)
		}
		a.log.Info("connected", "peer", peer)
		return newTimedConn(c, lf.ioTimeout, lf.rateMiB), nil
	}
	var argv []string
	if lf.ssh != "" {
		argv = append(strings.Fields(lf.ssh), peer, lf.remoteCmd)
	} else {
		argv = []string{"sh", "-c", lf.remoteCmd}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// Our ends of the pipes are *os.File with deadlines, so --io-timeout
	// holds for this link as for TCP: a stalled ssh cannot keep the
	// command (and a suspended guest) waiting for ever.
	p, err := newPipePair()
	if err != nil {
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.childIn, p.childOut, a.stderr
	grace := 10 * time.Second
	if lf.ioTimeout > 0 && lf.ioTimeout < grace {
		grace = lf.ioTimeout
	}
	// Once the receiver is gone, do not wait for whatever it left holding
	// its stderr.
	cmd.WaitDelay = grace
	err = cmd.Start()
	p.childIn.Close()
	p.childOut.Close()
	if err != nil {
		p.r.Close()
		p.w.Close()
		return nil, fmt.Errorf("starting %s: %w", strings.Join(argv, " "), err)
	}
	a.log.Info("started receiver", "command", strings.Join(argv, " "))
	p.closeFn = func() error {
		p.w.Close() // the receiver sees the end of its input
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(grace):
			// A receiver that does not end with its input is stuck.
			_ = cmd.Process.Kill()
			err = <-done
		}
		p.r.Close()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil // the receiver reported its failure on the link already, or was stuck
		}
		return err
	}
	return newTimedConn(p, lf.ioTimeout, lf.rateMiB), nil
}

// pipePair is the link to a receive command: we read its stdout (r) and
// write its stdin (w).
type pipePair struct {
	r, w              *os.File
	childIn, childOut *os.File
	closeFn           func() error
}

func newPipePair() (*pipePair, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	return &pipePair{r: outR, w: inW, childIn: inR, childOut: outW}, nil
}

func (p *pipePair) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipePair) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipePair) Close() error                { return p.closeFn() }

func (p *pipePair) SetReadDeadline(t time.Time) error  { return p.r.SetReadDeadline(t) }
func (p *pipePair) SetWriteDeadline(t time.Time) error { return p.w.SetWriteDeadline(t) }
func (p *pipePair) SetDeadline(t time.Time) error {
	return errors.Join(p.r.SetDeadline(t), p.w.SetDeadline(t))
}

// deadlineConn is a link with read and write deadlines: a TCP connection
// or a pipePair.
type deadlineConn interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// timedConn is a link (TCP, or the pipes of a receive command) that fails
// a read or write that moves no data for idle (so a cut link is noticed in
// seconds, not after TCP's retransmission timeout) and paces writes to a
// rate. SetDeadline from its user (the library's ctx binding) overrides
// the idle deadlines for good.
type timedConn struct {
	deadlineConn
	idle time.Duration
	rate *rateLimiter

	mu     sync.Mutex
	forced bool
}

func newTimedConn(c deadlineConn, idle time.Duration, rateMiB float64) *timedConn {
	return &timedConn{deadlineConn: c, idle: idle, rate: newRateLimiter(rateMiB)}
}

func (c *timedConn) arm(set func(time.Time) error) {
	if c.idle <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.forced {
		_ = set(time.Now().Add(c.idle))
	}
}

func (c *timedConn) Read(p []byte) (int, error) {
	c.arm(c.deadlineConn.SetReadDeadline)
	return c.deadlineConn.Read(p)
}

func (c *timedConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p
		if c.rate != nil && len(chunk) > 64<<10 {
			chunk = chunk[:64<<10]
		}
		c.rate.wait(len(chunk))
		c.arm(c.deadlineConn.SetWriteDeadline)
		m, err := c.deadlineConn.Write(chunk)
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

func (c *timedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.forced = true
	c.mu.Unlock()
	return c.deadlineConn.SetDeadline(t)
}

// rateLimiter paces bytes to a rate; nil means unlimited.
type rateLimiter struct {
	mu    sync.Mutex
	bps   float64
	start time.Time
	sent  float64
}

func newRateLimiter(mib float64) *rateLimiter {
	if mib <= 0 {
		return nil
	}
	return &rateLimiter{bps: mib * (1 << 20), start: time.Now()}
}

func (r *rateLimiter) wait(n int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.sent += float64(n)
	due := r.start.Add(time.Duration(r.sent / r.bps * float64(time.Second)))
	r.mu.Unlock()
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// acceptPeer listens on addr and accepts one connection.
func (a *app) acceptPeer(ctx context.Context, addr string, lf *linkFlags) (io.ReadWriteCloser, string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listening on %s: %w", addr, err)
	}
	defer ln.Close()
	a.log.Info("listening", "addr", ln.Addr().String())
	if !a.jsonOut {
		fmt.Fprintf(a.stderr, "xenckpt: waiting for a migration on %s\n", ln.Addr())
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	c, err := ln.Accept()
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		return nil, "", fmt.Errorf("accepting on %s: %w", addr, err)
	}
	a.log.Info("accepted", "peer", c.RemoteAddr().String())
	return newTimedConn(c, lf.ioTimeout, 0), c.RemoteAddr().String(), nil
}

// stdioLink is the link of "receive" without --listen: the stream arrives
// on stdin and replies go to stdout, as with xl migrate-receive under ssh.
func (a *app) stdioLink() io.ReadWriteCloser {
	return &link{Reader: a.stdin, Writer: a.stdout}
}
