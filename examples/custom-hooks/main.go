// Command custom-hooks plugs a toolstack's own steps into a checkpoint:
// quiesce storage before the guest is suspended, note the moment it is,
// and resume I/O after — by embedding checkpoint.NopHooks and overriding
// only the hooks it needs.
//
//	go run ./examples/custom-hooks
//	go run ./examples/custom-hooks -dom0 -domid 7
//
// An error from PreSuspend aborts the checkpoint before the guest is
// touched; run with -fail to see it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/examples/internal/setup"
	"github.com/xenckpt/xenckpt/xensim"
)

// storageHooks would flush and fence a disk backend around the suspend.
type storageHooks struct {
	checkpoint.NopHooks // PostRestore is not needed here
	fail                bool
	suspendedAt         time.Time
}

func (h *storageHooks) PreSuspend(ctx context.Context, dom domctl.DomID) error {
	if h.fail {
		return errors.New("storage backend refused to quiesce")
	}
	fmt.Printf("PreSuspend:  flushing domain %d's disk backend\n", dom)
	return nil
}

func (h *storageHooks) PostSuspend(ctx context.Context, dom domctl.DomID) error {
	h.suspendedAt = time.Now()
	fmt.Printf("PostSuspend: domain %d is suspended; disk I/O fenced\n", dom)
	return nil
}

func (h *storageHooks) PreResume(ctx context.Context, dom domctl.DomID) error {
	fmt.Printf("PreResume:   domain %d about to resume after %v; disk I/O unfenced\n", dom, time.Since(h.suspendedAt).Round(time.Microsecond))
	return nil
}

func main() {
	var f setup.Flags
	f.Register()
	fail := flag.Bool("fail", false, "make PreSuspend fail")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	hooks := &storageHooks{fail: *fail}
	h, err := setup.Open(ctx, f.Dom0, &checkpoint.Config{Hooks: hooks})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	dom, guest, err := h.Guest(ctx, &f, xensim.GuestConfig{Convention: xensim.ConventionSeed})
	if err != nil {
		log.Fatal(err)
	}
	res, err := h.Ctl.Checkpoint(ctx, dom, io.Discard, nil)
	if err != nil {
		fmt.Printf("checkpoint aborted: %v\n", err)
		if guest != nil {
			fmt.Printf("guest never suspended: %d suspends, state %v\n", guest.Suspends(), guest.State())
		}
		h.Close() // os.Exit skips the deferred Close
		os.Exit(1)
	}
	fmt.Printf("checkpoint done: %d pages, paused %v\n", res.Pages, res.PauseTime.Round(time.Microsecond))
}
