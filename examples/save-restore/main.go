// Command save-restore saves a guest to a file, which destroys it only
// once the image is complete and synced, then restores it from that file
// into a new domain.
//
//	go run ./examples/save-restore                        # simulated host
//	go run ./examples/save-restore -dom0 -domid 7 -o img  # real dom0, as root
//
// If the save fails at any point (disk full, Ctrl-C), the suspend is
// cancelled and the guest keeps running; a failed restore destroys the
// half-built domain.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/examples/internal/setup"
	"github.com/xenckpt/xenckpt/xensim"
)

func main() {
	var f setup.Flags
	f.Register()
	out := flag.String("o", "", "image file (default: a temporary file)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	h, err := setup.Open(ctx, f.Dom0, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	// A PVH guest with the upstream Linux convention: after a restore its
	// suspend hypercall returns 0, "you are in a new domain", which is
	// what a restore leaves without any help. (A PVH guest has no
	// start_info.magic[] to announce the seed protocol; for one that uses
	// it anyway, pass RestoreOptions.Resume.Convention = magic.ConventionSeed.)
	dom, guest, err := h.Guest(ctx, &f, xensim.GuestConfig{Kind: xensim.PVH, Convention: xensim.ConventionLinux, Pages: 2048})
	if err != nil {
		log.Fatal(err)
	}

	path := *out
	if path == "" {
		dir, err := os.MkdirTemp("", "save-restore-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "guest.img")
	}
	img, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	// An *os.File has Sync: Save syncs the image before destroying the guest.
	res, err := h.Ctl.Save(ctx, dom, img, nil)
	if cerr := img.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Fatalf("save: %v (the guest is still running)", err)
	}
	var saved uint64
	if guest != nil {
		saved = guest.Counter()
	}
	fmt.Printf("saved domain %d to %s: %d pages, paused %v; domain destroyed\n", dom, path, res.Pages, res.PauseTime.Round(1000))

	in, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	newDom, err := h.Ctl.Restore(ctx, in, &checkpoint.RestoreOptions{})
	if err != nil {
		log.Fatalf("restore: %v", err)
	}
	fmt.Printf("restored as domain %d\n", newDom)
	if h.Sim != nil {
		// The guest's memory came back: its counter continues from the save.
		g := h.Sim.Guest(newDom)
		if err := setup.WaitRunning(ctx, g, saved+10); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("restored guest counts on: %d at save, %d now\n", saved, g.Counter())
	}
}
