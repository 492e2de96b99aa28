//go:build linux

package domctl_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/xensim"
)

// Pause a domain and read its state, on a simulated Xen 4.17 host. On a
// real dom0, domctl.Open(ctx) replaces the host and NewConn.
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
	fmt.Printf("domctl interface %#x\n", conn.InterfaceVersion())

	dom, err := conn.CreateDomain(ctx, domctl.CreateConfig{MaxVCPUs: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := conn.Pause(ctx, dom); err != nil {
		fmt.Println(err)
		return
	}
	info, err := conn.DomainInfo(ctx, dom)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("paused:", info.Paused())

	if err := conn.DestroyDomain(ctx, dom); err != nil {
		fmt.Println(err)
		return
	}
	_, err = conn.DomainInfo(ctx, dom)
	fmt.Println("gone:", errors.Is(err, domctl.ErrNoDomain))
	// Output:
	// domctl interface 0x15
	// paused: true
	// gone: true
}
