package checkpoint

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xensim"
	"github.com/xenckpt/xenckpt/xenstore"
)

// TestConsoleNodes: written for a guest, the console nodes carry the ring
// xenconsoled needs and libxl's permissions: the guest reads port and
// ring-ref but cannot change them; it owns the directory and backend-id.
func TestConsoleNodes(t *testing.T) {
	h, err := xensim.NewHost(nil)
	require.NoError(t, err)
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, err := h.CreateGuest(ctx, xensim.GuestConfig{Pages: 16})
	require.NoError(t, err)
	dom := uint32(g.Domain())
	xs, err := h.Store(0)
	require.NoError(t, err)
	defer xs.Close()
	gxs, err := h.Store(dom)
	require.NoError(t, err)
	defer gxs.Close()
	p, err := xs.GetDomainPath(ctx, dom)
	require.NoError(t, err)

	nodes := consoleNodes(p, dom, consoleRing{frame: 0x1234, port: 7})
	require.NoError(t, xs.Transaction(ctx, func(tx *xenstore.Tx) error { return tx.WriteNodes(ctx, nodes) }))
	want := map[string]string{
		"ring-ref": "4660", "port": "7", "type": "xenconsoled", "output": "pty",
		"limit": "1048576", "tty": "", "backend-id": "0",
	}
	for k, v := range want {
		got, err := gxs.Read(ctx, p+"/console/"+k)
		require.NoError(t, err, k)
		assert.Equal(t, v, string(got), k)
	}
	for _, k := range []string{"ring-ref", "port", "type"} {
		err := gxs.Write(ctx, p+"/console/"+k, []byte("1"))
		assert.True(t, errors.Is(err, fs.ErrPermission), "guest writing console/%s: %v", k, err)
	}
	require.NoError(t, gxs.Write(ctx, p+"/console/backend-id", []byte("0")), "the guest owns backend-id")
}
