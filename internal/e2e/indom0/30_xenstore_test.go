//go:build xenckpt_dom0

package indom0

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore"
)

// TestXenstore drives the project's xenstore client against the xenstored
// that runs this Xen, over its unix socket and over /dev/xen/xenbus (the
// kernel's ring to the daemon), and checks a real guest's nodes.
func TestXenstore(t *testing.T) {
	requireDom0(t)
	dials := []struct {
		name string
		dial func(context.Context) (*xenstore.Client, error)
	}{
		{"dial", func(ctx context.Context) (*xenstore.Client, error) { return xenstore.Dial(ctx, nil) }},
		{"socket", func(ctx context.Context) (*xenstore.Client, error) {
			return xenstore.DialSocket(ctx, xenstore.DefaultSocket, nil)
		}},
		{"xenbus", func(ctx context.Context) (*xenstore.Client, error) { return xenstore.DialXenbus(ctx, nil) }},
	}
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			c, err := d.dial(ctx)
			require.NoError(t, err, "step dial")
			defer c.Close()
			xenstoreBasics(ctx, t, c, "/lab-xenstore-"+d.name)
		})
	}
	t.Run("guest", func(t *testing.T) {
		g := ensureGuest(t, "pvh")
		dom := g.domid(t)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		c, err := xenstore.Dial(ctx, nil)
		require.NoError(t, err)
		defer c.Close()
		p, err := c.GetDomainPath(ctx, dom)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("/local/domain/%d", dom), p)
		name, err := c.Read(ctx, p+"/name")
		require.NoError(t, err)
		assert.Equal(t, g.Name, string(name))
		in, err := c.IsDomainIntroduced(ctx, dom)
		require.NoError(t, err)
		assert.True(t, in, "guest %d not introduced", dom)
		// The guest's console ring and port are where xenconsoled found them.
		port, err := c.Read(ctx, p+"/console/port")
		require.NoError(t, err)
		_, err = strconv.Atoi(string(port))
		assert.NoError(t, err, "console/port %q", port)
		// control/ is where a toolstack asks the guest to suspend; log what
		// a real Linux guest advertises there (feature-suspend and so on).
		kids, err := c.List(ctx, p+"/control")
		assert.NoError(t, err)
		for _, k := range kids {
			v, err := c.Read(ctx, p+"/control/"+k)
			t.Logf("%s/control/%s = %q (%v)", p, k, v, err)
		}
		assert.NotEmpty(t, kids, "control/ of a running guest")
	})
}

func xenstoreBasics(ctx context.Context, t *testing.T, c *xenstore.Client, base string) {
	name, err := c.Read(ctx, "/local/domain/0/name")
	require.NoError(t, err, "step read dom0 name")
	assert.Equal(t, "Domain-0", string(name))

	p0, err := c.GetDomainPath(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, "/local/domain/0", p0)

	_, err = c.Read(ctx, base+"/missing")
	assert.True(t, errors.Is(err, fs.ErrNotExist), "read of a missing node: %v", err)

	w, err := c.Watch(ctx, base)
	require.NoError(t, err, "step watch")
	defer w.Close()
	next := func() xenstore.Event {
		select {
		case ev, ok := <-w.Events():
			require.True(t, ok, "watch closed: %v", w.Err())
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no watch event within 20s")
		}
		return xenstore.Event{}
	}
	assert.Equal(t, base, next().Path, "initial watch event")

	require.NoError(t, c.Write(ctx, base+"/a", []byte("one")), "step write")
	assert.Equal(t, base+"/a", next().Path)
	got, err := c.Read(ctx, base+"/a")
	require.NoError(t, err)
	assert.Equal(t, "one", string(got))

	err = c.Transaction(ctx, func(tx *xenstore.Tx) error {
		if err := tx.Write(ctx, base+"/b", []byte("two")); err != nil {
			return err
		}
		return tx.Write(ctx, base+"/c", []byte("three"))
	})
	require.NoError(t, err, "step transaction")
	kids, err := c.List(ctx, base)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"a", "b", "c"}, kids)

	perms, err := c.GetPerms(ctx, base+"/a")
	require.NoError(t, err)
	require.NotEmpty(t, perms)
	assert.Equal(t, uint32(0), perms[0].Dom, "owner of a node dom0 wrote")

	require.NoError(t, c.Remove(ctx, base), "step remove")
	_, err = c.Read(ctx, base+"/a")
	assert.True(t, errors.Is(err, fs.ErrNotExist), "read after remove: %v", err)
}
