package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

func (a *app) xenstoredCmd() *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "xenstored --socket PATH",
		Short: "Run the embedded xenstored on a unix socket",
		Long: `Run the embedded xenstored (package xenstore/xenstoretest) as a standalone
daemon serving the real xenstore wire protocol on a unix socket, until
interrupted. Any xenstore client can use it: the C tools take the socket from
XENSTORED_PATH, e.g.

  xenckpt xenstored --socket /tmp/xs.sock &
  XENSTORED_PATH=/tmp/xs.sock xenstore-write /local/domain/1/name guest1

It is meant for tests of xenstore clients on machines without Xen.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if socket == "" {
				return usageErrorf("--socket is required")
			}
			return a.runXenstored(cmd.Context(), socket)
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "unix socket path to serve (removed on exit)")
	return cmd
}

// runXenstored serves until ctx is cancelled; a cancelled ctx is a clean
// exit for a daemon.
func (a *app) runXenstored(ctx context.Context, socket string) error {
	if fi, err := os.Lstat(socket); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return withCode(exitUsage, fmt.Errorf("%s exists and is not a socket", socket))
		}
		// A stale socket from a previous run: refuse if someone answers.
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return fmt.Errorf("a daemon already serves %s", socket)
		}
		if err := os.Remove(socket); err != nil {
			return fmt.Errorf("removing stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", socket, err)
	}
	if abs, err := filepath.Abs(socket); err == nil {
		socket = abs
	}
	srv := xenstoretest.NewServer(nil)
	a.log.Info("xenstored listening", "socket", socket)
	if !a.jsonOut {
		fmt.Fprintf(a.stderr, "xenckpt: xenstored serving %s (XENSTORED_PATH=%s)\n", socket, socket)
	} else {
		_ = a.writeJSON(struct {
			Socket string `json:"socket"`
		}{socket})
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		ln.Close()
		srv.Close()
		<-errc
		a.log.Info("xenstored stopped", "socket", socket)
		return nil
	case err := <-errc:
		srv.Close()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("serving %s: %w", socket, err)
	}
}
