//go:build xenckpt_dom0

package indom0

import (
	"context"
	"io"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest/conformance"
)

// TestXenstoreConformance runs the project's xenstore conformance suite,
// which CI runs against the embedded server and against Debian's
// cxenstored and oxenstored under an LD_PRELOAD shim, against the
// xenstored of this real dom0: over its unix socket (Clients from
// DialSocket, the client's direct path) and over /dev/xen/xenbus (the
// dom0 kernel's device, which answers WATCH and UNWATCH itself). The lab
// runs the C daemon, Debian's /usr/lib/xen-4.17/bin/xenstored.
func TestXenstoreConformance(t *testing.T) {
	requireDom0(t)
	t.Run("socket", func(t *testing.T) {
		conformance.Run(t, conformance.Target{
			Kind:    conformance.CXenstored,
			RealXen: true,
			Dial: func(t testing.TB) io.ReadWriteCloser {
				c, err := net.Dial("unix", xenstore.DefaultSocket)
				require.NoError(t, err)
				return c
			},
			Client: func(t testing.TB, cfg *xenstore.Config) *xenstore.Client {
				c, err := xenstore.DialSocket(context.Background(), xenstore.DefaultSocket, cfg)
				require.NoError(t, err)
				t.Cleanup(func() { c.Close() })
				return c
			},
		})
	})
	t.Run("xenbus", func(t *testing.T) {
		conformance.Run(t, conformance.Target{
			Kind:    conformance.CXenstored,
			RealXen: true,
			Xenbus:  true,
			Dial: func(t testing.TB) io.ReadWriteCloser {
				f, err := os.OpenFile(xenstore.XenbusDevice, os.O_RDWR, 0)
				require.NoError(t, err)
				return f
			},
			Client: func(t testing.TB, cfg *xenstore.Config) *xenstore.Client {
				c, err := xenstore.DialXenbus(context.Background(), cfg)
				require.NoError(t, err)
				t.Cleanup(func() { c.Close() })
				return c
			},
		})
	})
}
