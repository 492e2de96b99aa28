package xensim_test

import (
	"context"
	"fmt"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/xensim"
)

// A checkpoint's suspend-and-cancel round trip on a simulated host: ask a
// seed-convention guest to suspend through xenstore, wait for
// @releaseDomain, then resume it with its suspend return value left at 0
// (the seed protocol's "cancelled").
func Example() {
	ctx := context.Background()
	host, err := xensim.NewHost(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Close()
	conn, err := domctl.NewConn(host.Backend(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	g, err := host.CreateGuest(ctx, xensim.GuestConfig{Name: "demo", Convention: xensim.ConventionSeed})
	if err != nil {
		fmt.Println(err)
		return
	}
	dom := g.Domain()

	xs, err := host.Store(0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer xs.Close()
	w, err := xs.Watch(ctx, "@releaseDomain")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	<-w.Events() // the initial event
	path, err := xs.GetDomainPath(ctx, uint32(dom))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := xs.Write(ctx, path+"/control/shutdown", []byte("suspend")); err != nil {
		fmt.Println(err)
		return
	}
	var info domctl.DomainInfo
	for !info.Suspended() {
		<-w.Events()
		if info, err = conn.DomainInfo(ctx, dom); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println("suspended:", info.Suspended(), "guest:", g.State())

	if err := conn.ResumeDomain(ctx, dom); err != nil {
		fmt.Println(err)
		return
	}
	if err := xs.Resume(ctx, uint32(dom)); err != nil {
		fmt.Println(err)
		return
	}
	if err := g.WaitCounter(ctx, g.Counter()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("guest:", g.State(), "returned:", g.LastSuspendReturn(), "reconnects:", g.Reconnects())
	// Output:
	// suspended: true guest: suspended
	// guest: running returned: 0 reconnects: 0
}
