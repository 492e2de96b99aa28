// Command checkpoint-cancel takes a checkpoint of a running guest: suspend
// it, copy its memory and state into an image, then cancel the suspend so
// the guest carries on in the same domain as if nothing happened.
//
//	go run ./examples/checkpoint-cancel                 # on a simulated host
//	go run ./examples/checkpoint-cancel -dom0 -domid 7  # on a real dom0, as root
//
// The cancel is written in the guest's own convention: the seed protocol
// (its suspend hypercall returns 0) or upstream Linux (returns 1). The
// Controller negotiates it from what the guest advertises; for a Linux guest
// pass the kernel with -kernel so its XEN_ELFNOTE_SUSPEND_CANCEL note is
// known.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/examples/internal/setup"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xensim"
)

func main() {
	var f setup.Flags
	f.Register()
	out := flag.String("o", os.DevNull, "image file to write")
	kernel := flag.String("kernel", "", "the guest's kernel image (to read its ELF notes)")
	flag.Parse()

	// Ctrl-C cancels ctx; the Controller then resumes the guest.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	h, err := setup.Open(ctx, f.Dom0, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	// On the simulator: a 64-bit PV guest speaking the seed protocol.
	dom, guest, err := h.Guest(ctx, &f, xensim.GuestConfig{Convention: xensim.ConventionSeed, Pages: 2048})
	if err != nil {
		log.Fatal(err)
	}

	var opts checkpoint.SaveOptions
	if *kernel != "" {
		k, err := os.Open(*kernel)
		if err != nil {
			log.Fatal(err)
		}
		fi, _ := k.Stat()
		if opts.Resume.Notes, err = magic.ReadNotes(ctx, k, fi.Size(), nil); err != nil {
			log.Fatal(err)
		}
		k.Close()
	}

	img, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	var before uint64
	if guest != nil {
		before = guest.Counter()
	}
	res, err := h.Ctl.Checkpoint(ctx, dom, img, &opts)
	if err != nil {
		// Whatever failed, the guest was not left suspended.
		log.Fatalf("checkpoint: %v", err)
	}
	fmt.Printf("checkpointed domain %d: %d pages, guest paused %v, cancelled with the %s convention\n",
		dom, res.Pages, res.PauseTime.Round(1000), res.Convention)
	if guest != nil {
		// The simulated guest proves it continued: its counter keeps growing
		// and its suspend hypercall returned the seed protocol's cancel value.
		if err := setup.WaitRunning(ctx, guest, before+10); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("guest saw %d from its suspend hypercall and keeps running (counter %d -> %d)\n",
			guest.LastSuspendReturn(), before, guest.Counter())
	}
}
