package xenstore_test

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/internal/xsdaemon"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest/conformance"
)

// daemonTargets runs the suite on d twice over: with Clients made by
// DialSocket (the direct path) and with Clients on plain net.Conns (the
// reader goroutine only).
func daemonTargets(t *testing.T, kind conformance.Kind, d *xsdaemon.Daemon) {
	dial := func(t testing.TB) io.ReadWriteCloser { return d.Dial(t) }
	t.Run("socket", func(t *testing.T) {
		conformance.Run(t, conformance.Target{Kind: kind, Dial: dial, Client: func(t testing.TB, cfg *xenstore.Config) *xenstore.Client {
			c, err := xenstore.DialSocket(context.Background(), d.Socket, cfg)
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			return c
		}})
	})
	t.Run("netconn", func(t *testing.T) {
		conformance.Run(t, conformance.Target{Kind: kind, Dial: dial})
	})
}

func TestIntegrationConformanceCXenstored(t *testing.T) {
	daemonTargets(t, conformance.CXenstored, xsdaemon.StartCXenstored(t))
}

func TestIntegrationConformanceOXenstored(t *testing.T) {
	daemonTargets(t, conformance.OXenstored, xsdaemon.StartOXenstored(t))
}
