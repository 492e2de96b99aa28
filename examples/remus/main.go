// Command remus replicates a running guest to a backup host, Remus style:
// every interval the primary is suspended just long enough to copy the pages
// it dirtied, then resumed (its suspend cancelled). The backup applies only
// complete checkpoints; when the primary's stream stops mid-way it fails
// over to the last complete one.
//
//	go run ./examples/remus                       # simulated primary and backup
//	go run ./examples/remus -dom0 -domid 7 -to HOST:PORT
//	    # the backup dom0 runs: xenckpt receive --remus --listen :PORT
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/examples/internal/setup"
	"github.com/xenckpt/xenckpt/xensim"
)

func main() {
	var f setup.Flags
	f.Register()
	to := flag.String("to", "", "with -dom0: the backup's HOST:PORT")
	epochs := flag.Int("epochs", 10, "checkpoints before the primary is 'lost'")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	primary, err := setup.Open(ctx, f.Dom0, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer primary.Close()
	dom, _, err := primary.Guest(ctx, &f, xensim.GuestConfig{Convention: xensim.ConventionSeed, Pages: 2048, DirtyRate: 500})
	if err != nil {
		log.Fatal(err)
	}

	addr := *to
	var backup *setup.Receiver
	if !f.Dom0 {
		// The backup: a second simulated host listening on loopback.
		backup, err = setup.StartReceiver(ctx, func(ctx context.Context, c *checkpoint.Controller, conn net.Conn) (domctl.DomID, error) {
			return c.RemusBackup(ctx, conn, nil)
		})
		if err != nil {
			log.Fatal(err)
		}
		defer backup.Close()
		addr = backup.Addr
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	// Simulate losing the primary: after some epochs its link goes away
	// without an orderly END, as when the primary host dies.
	rctx, lose := context.WithCancel(ctx)
	n := 0
	res, err := primary.Ctl.Remus(rctx, dom, conn, &checkpoint.RemusOptions{
		Interval: 20 * time.Millisecond,
		Save: checkpoint.SaveOptions{Progress: func(p checkpoint.Progress) {
			if p.Phase == checkpoint.PhaseResumed {
				n++
				fmt.Printf("  epoch %d: primary paused %v\n", n, p.PauseTime.Round(time.Microsecond))
				if n == *epochs {
					lose()
				}
			}
		}},
	})
	conn.Close()
	lose()
	fmt.Printf("primary sent %d checkpoints, longest pause %v (stopped: %v); the primary itself kept running\n",
		res.Checkpoints, res.MaxPause.Round(time.Microsecond), err)
	if backup != nil {
		d, err := backup.Wait()
		if err != nil {
			log.Fatalf("backup: %v", err)
		}
		g := backup.Host.Sim.Guest(d)
		c := g.Counter()
		if err := setup.WaitRunning(ctx, g, c+10); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("backup failed over: domain %d runs the guest from its last checkpoint (counter %d -> %d)\n", d, c, g.Counter())
	}
}
