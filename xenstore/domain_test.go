package xenstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

// TestDomainNodes: the toolstack's node skeleton is written in one
// transaction with libxl's permissions.
func TestDomainNodes(t *testing.T) {
	ctx := context.Background()
	srv := xenstoretest.NewServer(nil)
	defer srv.Close()
	c, err := srv.Client(0)
	require.NoError(t, err)
	defer c.Close()

	nodes := xenstore.DomainNodes("/local/domain/5", 5, "web1")
	require.NoError(t, c.Transaction(ctx, func(tx *xenstore.Tx) error { return tx.WriteNodes(ctx, nodes) }))
	for _, n := range nodes {
		v, err := c.Read(ctx, n.Path)
		require.NoError(t, err, n.Path)
		assert.Equal(t, n.Value, string(v), n.Path)
		p, err := c.GetPerms(ctx, n.Path)
		require.NoError(t, err, n.Path)
		assert.Equal(t, n.Perms, p, n.Path)
	}
	name, err := c.Read(ctx, "/local/domain/5/name")
	require.NoError(t, err)
	assert.Equal(t, "web1", string(name))
	p, err := c.GetPerms(ctx, "/local/domain/5/control/shutdown")
	require.NoError(t, err)
	assert.Equal(t, []xenstore.Perm{{Dom: 5, Access: xenstore.AccessNone}}, p, "the guest owns control/shutdown")
}
