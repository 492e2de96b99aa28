// Command live-migration moves a running guest between two hosts over TCP:
// memory is copied while the guest runs (log-dirty precopy rounds), then
// the guest is suspended for the last dirty pages only.
//
//	go run ./examples/live-migration          # two simulated hosts, loopback TCP
//	go run ./examples/live-migration -dom0 -domid 7 -to HOST:PORT
//	    # on the sending dom0; the receiver runs: xenckpt receive --listen :PORT
//
// The source is destroyed only after the receiver reports a complete
// domain; a cut link or a receiver failure resumes the source instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/examples/internal/setup"
	"github.com/xenckpt/xenckpt/xensim"
)

func main() {
	var f setup.Flags
	f.Register()
	to := flag.String("to", "", "with -dom0: the receiver's HOST:PORT")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	src, err := setup.Open(ctx, f.Dom0, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	// A 64-bit PV guest that keeps writing memory, so precopy has dirty
	// pages to chase. It speaks the seed protocol, which both hosts read
	// from its start_info.magic[].
	dom, guest, err := src.Guest(ctx, &f, xensim.GuestConfig{Convention: xensim.ConventionSeed, Pages: 4096, DirtyRate: 2000})
	if err != nil {
		log.Fatal(err)
	}

	addr := *to
	var dst *setup.Receiver
	if !f.Dom0 {
		// The receiving host: a second simulated host listening on loopback.
		dst, err = setup.StartReceiver(ctx, func(ctx context.Context, c *checkpoint.Controller, conn net.Conn) (domctl.DomID, error) {
			return c.Receive(ctx, conn, nil)
		})
		if err != nil {
			log.Fatal(err)
		}
		defer dst.Close()
		addr = dst.Addr
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	var before uint64
	if guest != nil {
		before = guest.Counter()
	}
	res, err := src.Ctl.Migrate(ctx, dom, conn, &checkpoint.SaveOptions{
		Live: true,
		// Policy is data: stop precopy when the rest fits a 5 ms pause.
		MaxDowntime: 5e6,
		Progress: func(p checkpoint.Progress) {
			if p.Phase == checkpoint.PhasePrecopy {
				fmt.Printf("  precopy round %d: %d pages sent, guest dirties %.0f pages/s\n", p.Round, p.Pages, p.DirtyRate)
			}
		},
	})
	conn.Close()
	if err != nil {
		log.Fatalf("migrate: %v (the source keeps running)", err)
	}
	fmt.Printf("migrated domain %d to %s: %d rounds, %d pages, downtime %v\n", dom, addr, res.Rounds, res.Pages, res.PauseTime.Round(1000))
	if dst != nil {
		newDom, err := dst.Wait()
		if err != nil {
			log.Fatalf("receive: %v", err)
		}
		g := dst.Host.Sim.Guest(newDom)
		if err := setup.WaitRunning(ctx, g, before+10); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("domain %d on the receiving host runs the same guest: counter %d before, %d now\n", newDom, before, g.Counter())
	}
}
