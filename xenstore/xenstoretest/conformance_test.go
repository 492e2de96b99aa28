package xenstoretest_test

import (
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest/conformance"
)

func TestConformanceInMemory(t *testing.T) {
	srv := xenstoretest.NewServer(nil)
	t.Cleanup(func() { srv.Close() })
	conformance.Run(t, conformance.Target{
		Kind: conformance.Embedded,
		Dial: func(t testing.TB) io.ReadWriteCloser {
			c, err := srv.Connect(0)
			require.NoError(t, err)
			return c
		},
	})
}

func TestConformanceUnixSocket(t *testing.T) {
	srv := xenstoretest.NewServer(nil)
	sock := filepath.Join(t.TempDir(), "socket")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		require.ErrorIs(t, <-done, net.ErrClosed)
	})
	conformance.Run(t, conformance.Target{
		Kind: conformance.Embedded,
		Dial: func(t testing.TB) io.ReadWriteCloser {
			c, err := net.Dial("unix", sock)
			require.NoError(t, err)
			return c
		},
	})
}
