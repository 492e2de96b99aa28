package domctl_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// BenchmarkDomainInfo measures one encode, hypercall and decode round trip
// through the Conn (the recorder answers at once, so this is Conn's own
// cost: buffer pool, marshalling, error mapping).
func BenchmarkDomainInfo(b *testing.B) {
	c, r := newConn(b, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		abi.DomctlPayload[abi.DomctlGetDomainInfo](d).Domain = d.Domain
		return 0, nil
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.DomainInfo(ctx, 3); err != nil {
			b.Fatal(err)
		}
		r.mu.Lock()
		r.calls = r.calls[:0]
		r.mu.Unlock()
	}
}

// BenchmarkCleanDirty measures a log-dirty CLEAN by bitmap size: buffer
// allocation and the copy back of the bitmap.
func BenchmarkCleanDirty(b *testing.B) {
	for _, pages := range []int{1 << 10, 1 << 15, 1 << 20} {
		b.Run(fmt.Sprintf("pages=%d", pages), func(b *testing.B) {
			c, r := newConn(b, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
				if op != abi.HYPERVISOR_domctl {
					return 0, syscall.ENOSYS
				}
				return 0, nil
			})
			bitmap := make([]uint64, pages/64)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(bitmap) * 8))
			for b.Loop() {
				if _, err := c.CleanDirty(ctx, 3, bitmap, false); err != nil {
					b.Fatal(err)
				}
				r.mu.Lock()
				r.calls = r.calls[:0]
				r.mu.Unlock()
			}
		})
	}
}
