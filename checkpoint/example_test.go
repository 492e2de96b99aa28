package checkpoint_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xensim"
)

// exampleHost starts a simulated host and a Controller on it.
func exampleHost() (*xensim.Host, *checkpoint.Controller, func()) {
	host, err := xensim.NewHost(nil)
	if err != nil {
		panic(err)
	}
	hv, err := domctl.NewConn(host.Backend(), nil)
	if err != nil {
		panic(err)
	}
	xs, err := host.Store(0)
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "xenckpt-example")
	if err != nil {
		panic(err)
	}
	c := checkpoint.New(hv, xs, &checkpoint.Config{LockDir: dir})
	return host, c, func() {
		xs.Close()
		hv.Close()
		host.Close()
		os.RemoveAll(dir)
	}
}

// A checkpoint of a seed-protocol guest: the guest advertises "sc" in its
// magic[], sees 0 from its suspend hypercall and simply continues.
func ExampleController_Checkpoint() {
	ctx := context.Background()
	host, c, done := exampleHost()
	defer done()
	g, err := host.CreateGuest(ctx, xensim.GuestConfig{Convention: xensim.ConventionSeed, Pages: 64})
	if err != nil {
		panic(err)
	}
	var img bytes.Buffer
	res, err := c.Checkpoint(ctx, g.Domain(), &img, nil)
	if err != nil {
		panic(err)
	}
	n := g.Counter()
	if err := g.WaitCounter(ctx, n); err != nil {
		panic(err)
	}
	fmt.Println("pages:", res.Pages)
	fmt.Println("seed convention:", res.Convention == magic.ConventionSeed)
	fmt.Println("guest saw:", g.LastSuspendReturn())
	fmt.Println("still counting:", g.Counter() > n)
	// Output:
	// pages: 64
	// seed convention: true
	// guest saw: 0
	// still counting: true
}

// A live migration between two simulated hosts over an in-memory
// connection. The Linux-convention guest is identified by its kernel's
// ELF note, as a toolstack reading the kernel image would.
func ExampleController_Migrate() {
	ctx := context.Background()
	srcHost, src, done1 := exampleHost()
	defer done1()
	dstHost, dst, done2 := exampleHost()
	defer done2()
	g, err := srcHost.CreateGuest(ctx, xensim.GuestConfig{Convention: xensim.ConventionLinux, Pages: 128})
	if err != nil {
		panic(err)
	}
	id := g.ID()
	linux := checkpoint.ResumeOptions{Notes: &magic.Notes{SuspendCancel: 1}}
	a, b := net.Pipe()
	got := make(chan domctl.DomID, 1)
	go func() {
		defer b.Close()
		dom, err := dst.Receive(ctx, b, &checkpoint.RestoreOptions{Resume: linux})
		if err != nil {
			panic(err)
		}
		got <- dom
	}()
	if _, err := src.Migrate(ctx, g.Domain(), a, &checkpoint.SaveOptions{Live: true, Resume: linux}); err != nil {
		panic(err)
	}
	a.Close()
	moved := dstHost.Guest(<-got)
	if err := moved.WaitConnected(ctx); err != nil {
		panic(err)
	}
	fmt.Println("same kernel:", moved.ID() == id)
	fmt.Println("source domains left:", len(srcHost.Domains())-1)
	fmt.Println("guest saw:", moved.LastSuspendReturn())
	// Output:
	// same kernel: true
	// source domains left: 0
	// guest saw: 0
}

// Save a guest to an image, which destroys it, then restore the image into
// a new domain: the same kernel continues with its counter.
func ExampleController_Save() {
	ctx := context.Background()
	host, c, done := exampleHost()
	defer done()
	g, err := host.CreateGuest(ctx, xensim.GuestConfig{Convention: xensim.ConventionSeed, Pages: 64})
	if err != nil {
		panic(err)
	}
	id := g.ID()
	var img bytes.Buffer
	if _, err := c.Save(ctx, g.Domain(), &img, nil); err != nil {
		panic(err)
	}
	saved := len(host.Domains()) - 1
	dom, err := c.Restore(ctx, &img, nil)
	if err != nil {
		panic(err)
	}
	r := host.Guest(dom)
	if err := r.WaitConnected(ctx); err != nil {
		panic(err)
	}
	fmt.Println("domains after save:", saved)
	fmt.Println("same kernel:", r.ID() == id)
	fmt.Println("seed guest sees a restore:", r.LastSuspendReturn() > 0)
	// Output:
	// domains after save: 0
	// same kernel: true
	// seed guest sees a restore: true
}
