package xenstoretest_test

import (
	"context"
	"fmt"

	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

// guest is a one-domain hypervisor model for the example.
type guest struct{ shutdown bool }

func (g *guest) DomainState(dom uint32) (exists, shutdown bool) {
	return dom == 5, g.shutdown
}

// A toolstack waits for @releaseDomain to learn that a guest suspended;
// after a cancelled suspend it must send XS_RESUME, or the next suspend
// never fires the event.
func ExampleServer_DomainChanged() {
	ctx := context.Background()
	g := &guest{}
	srv := xenstoretest.NewServer(&xenstoretest.Config{Domains: g})
	defer srv.Close()
	c, _ := srv.Client(0)
	defer c.Close()
	_ = c.Introduce(ctx, 5, 0x1000, 3)

	w, _ := c.Watch(ctx, "@releaseDomain")
	defer w.Close()
	<-w.Events() // initial event

	g.shutdown = true // the guest suspended
	srv.DomainChanged()
	fmt.Println((<-w.Events()).Path)

	g.shutdown = false // the suspend was cancelled
	_ = c.Resume(ctx, 5)
	g.shutdown = true // and the guest suspends again
	srv.DomainChanged()
	fmt.Println((<-w.Events()).Path)
	// Output:
	// @releaseDomain
	// @releaseDomain
}
