// Command xenckpt checkpoints, saves, restores, migrates and replicates Xen
// guest domains, on a real dom0 or on an in-process simulated Xen host
// (--sim). Run "xenckpt demo" for the whole story on the simulator, and
// "xenckpt help" for every command. docs/cli.md documents the commands, the
// exit codes and the JSON output.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The first Ctrl-C (or SIGTERM) cancels ctx: the operation in flight
	// stops and resumes the guest. A second signal kills the process, as
	// the default handler does, once stop has been called.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
