package xenstoretest_test

import (
	"context"
	"io/fs"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

type states struct {
	mu sync.Mutex
	m  map[uint32][2]bool // exists, shutdown
}

func (s *states) DomainState(dom uint32) (bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[dom]
	if !ok {
		return false, false
	}
	return st[0], st[1]
}

func (s *states) set(dom uint32, exists, shutdown bool) {
	s.mu.Lock()
	s.m[dom] = [2]bool{exists, shutdown}
	s.mu.Unlock()
}

func setup(t *testing.T, cfg *xenstoretest.Config) (*xenstoretest.Server, *xenstore.Client) {
	t.Helper()
	srv := xenstoretest.NewServer(cfg)
	t.Cleanup(func() { srv.Close() })
	c, err := srv.Client(0)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func client(t *testing.T, srv *xenstoretest.Server, dom uint32) *xenstore.Client {
	t.Helper()
	c, err := srv.Client(dom)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func event(t *testing.T, w *xenstore.Watch) xenstore.Event {
	t.Helper()
	select {
	case e := <-w.Events():
		return e
	case <-time.After(5 * time.Second):
		t.Fatalf("no event on %s", w.Path())
	}
	return xenstore.Event{}
}

// noEvent checks that w has nothing queued after a round trip on c, which
// orders every event the daemon sent before it.
func noEvent(t *testing.T, c *xenstore.Client, w *xenstore.Watch) {
	t.Helper()
	_, err := c.GetDomainPath(context.Background(), 0)
	require.NoError(t, err)
	select {
	case e := <-w.Events():
		t.Errorf("unexpected event %v", e)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestConnectRequiresIntroduction(t *testing.T) {
	srv, dom0 := setup(t, nil)
	_, err := srv.Connect(3)
	assert.ErrorIs(t, err, xenstoretest.ErrNotIntroduced)
	require.NoError(t, dom0.Introduce(context.Background(), 3, 1, 1))
	c, err := srv.Connect(3)
	require.NoError(t, err)
	c.Close()
}

func TestDomUPermissions(t *testing.T) {
	ctx := context.Background()
	srv, dom0 := setup(t, nil)
	require.NoError(t, dom0.Introduce(ctx, 5, 1, 1))
	require.NoError(t, dom0.Introduce(ctx, 6, 1, 1))
	d5 := client(t, srv, 5)
	d6 := client(t, srv, 6)

	require.NoError(t, dom0.Write(ctx, "/local/domain/5/name", []byte("guest")))
	_, err := d5.Read(ctx, "/local/domain/5/name")
	assert.ErrorIs(t, err, fs.ErrPermission, "dom0-owned node with n0")
	assert.ErrorIs(t, d5.Write(ctx, "/local/domain/5/x", nil), syscall.EACCES)

	require.NoError(t, dom0.SetPerms(ctx, "/local/domain/5", []xenstore.Perm{{Dom: 5, Access: xenstore.AccessNone}}))
	require.NoError(t, d5.Write(ctx, "data/x", []byte("1")), "owner writes below its home (relative)")
	perms, err := d5.GetPerms(ctx, "data/x")
	require.NoError(t, err)
	assert.Equal(t, []xenstore.Perm{{Dom: 5, Access: xenstore.AccessNone}}, perms, "created node owned by its creator")

	_, err = d6.Read(ctx, "/local/domain/5/data/x")
	assert.ErrorIs(t, err, syscall.EACCES)
	_, err = d6.Read(ctx, "/local/domain/5/data/missing")
	assert.ErrorIs(t, err, syscall.EACCES, "missing node under an unreadable parent")
	_, err = d5.Read(ctx, "data/missing")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	require.NoError(t, d5.SetPerms(ctx, "data/x", []xenstore.Perm{{Dom: 5, Access: xenstore.AccessNone}, {Dom: 6, Access: xenstore.AccessRead}}))
	v, err := d6.Read(ctx, "/local/domain/5/data/x")
	require.NoError(t, err)
	assert.Equal(t, []byte("1"), v)
	assert.ErrorIs(t, d6.Write(ctx, "/local/domain/5/data/x", nil), syscall.EACCES, "read-only grant")
	assert.ErrorIs(t, d5.SetPerms(ctx, "data/x", []xenstore.Perm{{Dom: 6, Access: xenstore.AccessNone}}), syscall.EPERM, "domU cannot give a node away")

	assert.ErrorIs(t, d5.Introduce(ctx, 9, 1, 1), syscall.EACCES, "domain ops are dom0-only")
	_, err = d5.Control(ctx, "check")
	assert.ErrorIs(t, err, syscall.EACCES)

	// Watches: dom6 does not hear of nodes it cannot read.
	require.NoError(t, dom0.Write(ctx, "/shared", nil))
	require.NoError(t, dom0.SetPerms(ctx, "/shared", []xenstore.Perm{{Dom: 0, Access: xenstore.AccessRead}}))
	w, err := d6.Watch(ctx, "/shared")
	require.NoError(t, err)
	defer w.Close()
	event(t, w)
	require.NoError(t, dom0.Write(ctx, "/shared/secret", nil))
	require.NoError(t, dom0.SetPerms(ctx, "/shared/secret", []xenstore.Perm{{Dom: 0, Access: xenstore.AccessNone}}))
	require.NoError(t, dom0.Write(ctx, "/shared/public", nil))
	assert.Equal(t, "/shared/secret", event(t, w).Path, "created readable, then hidden")
	assert.Equal(t, "/shared/public", event(t, w).Path)
	require.NoError(t, dom0.Write(ctx, "/shared/secret", []byte("x")))
	noEvent(t, d6, w)
}

func TestSetTarget(t *testing.T) {
	ctx := context.Background()
	srv, dom0 := setup(t, nil)
	require.NoError(t, dom0.Introduce(ctx, 5, 1, 1))
	require.NoError(t, dom0.Introduce(ctx, 8, 1, 1))
	require.NoError(t, dom0.Write(ctx, "/local/domain/5/dm", nil))
	require.NoError(t, dom0.SetPerms(ctx, "/local/domain/5/dm", []xenstore.Perm{{Dom: 5, Access: xenstore.AccessNone}}))
	stub := client(t, srv, 8)
	assert.ErrorIs(t, stub.Write(ctx, "/local/domain/5/dm/x", nil), syscall.EACCES)
	require.NoError(t, dom0.SetTarget(ctx, 8, 5))
	assert.NoError(t, stub.Write(ctx, "/local/domain/5/dm/x", nil), "a stub domain acts as its target")
}

func TestQuotas(t *testing.T) {
	ctx := context.Background()
	srv, dom0 := setup(t, &xenstoretest.Config{Quota: xenstoretest.Quota{
		MaxEntries: 3, MaxValueSize: 8, MaxWatches: 2, MaxTransactions: 1,
	}})
	require.NoError(t, dom0.Introduce(ctx, 5, 1, 1))
	require.NoError(t, dom0.Write(ctx, "/local/domain/5", nil))
	require.NoError(t, dom0.SetPerms(ctx, "/local/domain/5", []xenstore.Perm{{Dom: 5, Access: xenstore.AccessNone}}))
	d5 := client(t, srv, 5)
	// dom0's Write above made /local/domain/5 owned by 5: one entry.
	assert.ErrorIs(t, d5.Write(ctx, "a", make([]byte, 9)), syscall.ENOSPC, "value size")
	require.NoError(t, d5.Write(ctx, "a", make([]byte, 8)))
	require.NoError(t, d5.Write(ctx, "b", nil))
	assert.ErrorIs(t, d5.Write(ctx, "c", nil), syscall.ENOSPC, "entries")
	require.NoError(t, dom0.Write(ctx, "/local/domain/5/c", make([]byte, 100)), "dom0 is exempt")

	w1, err := d5.Watch(ctx, "a")
	require.NoError(t, err)
	defer w1.Close()
	w2, err := d5.Watch(ctx, "b")
	require.NoError(t, err)
	defer w2.Close()
	_, err = d5.Watch(ctx, "c")
	assert.ErrorIs(t, err, syscall.E2BIG, "watches")

	block := make(chan struct{})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- d5.Transaction(ctx, func(tx *xenstore.Tx) error {
			close(started)
			<-block
			return nil
		})
	}()
	<-started
	err = d5.Transaction(ctx, func(tx *xenstore.Tx) error { return nil })
	assert.ErrorIs(t, err, syscall.ENOSPC, "transactions")
	close(block)
	require.NoError(t, <-done)
}

func TestReleaseDomainLifecycle(t *testing.T) {
	ctx := context.Background()
	st := &states{m: map[uint32][2]bool{}}
	srv, dom0 := setup(t, &xenstoretest.Config{Domains: st})
	st.set(4, true, false)
	require.NoError(t, dom0.Introduce(ctx, 4, 1, 1))
	w, err := dom0.Watch(ctx, "@releaseDomain")
	require.NoError(t, err)
	defer w.Close()
	assert.Equal(t, "@releaseDomain", event(t, w).Path, "initial event")

	srv.DomainChanged()
	noEvent(t, dom0, w)

	st.set(4, true, true) // suspended
	srv.DomainChanged()
	assert.Equal(t, "@releaseDomain", event(t, w).Path, "running -> shut down")
	srv.DomainChanged()
	noEvent(t, dom0, w)

	// A cancelled suspend: the guest runs again, but only XS_RESUME
	// re-arms the event.
	st.set(4, true, false)
	srv.DomainChanged()
	st.set(4, true, true)
	srv.DomainChanged()
	noEvent(t, dom0, w)

	require.NoError(t, dom0.Resume(ctx, 4))
	srv.DomainChanged()
	assert.Equal(t, "@releaseDomain", event(t, w).Path, "fires again after XS_RESUME")

	d4 := client(t, srv, 4)
	st.set(4, false, false) // destroyed
	srv.DomainChanged()
	assert.Equal(t, "@releaseDomain", event(t, w).Path)
	in, err := dom0.IsDomainIntroduced(ctx, 4)
	require.NoError(t, err)
	assert.False(t, in, "a vanished domain is forgotten")
	_, err = d4.Read(ctx, "/tool")
	assert.ErrorIs(t, err, net.ErrClosed, "its connections are closed")
}

func TestServeAfterClose(t *testing.T) {
	srv := xenstoretest.NewServer(nil)
	require.NoError(t, srv.Close())
	l, err := net.Listen("unix", t.TempDir()+"/s")
	require.NoError(t, err)
	defer l.Close()
	assert.ErrorIs(t, srv.Serve(l), net.ErrClosed)
	_, err = srv.Connect(0)
	assert.ErrorIs(t, err, net.ErrClosed)
}

// TestDomainsMustExist: with Config.Domains, the server refuses what
// cxenstored under Xen refuses (seen in the lab's dom0): INTRODUCE of a
// domain that does not exist (EINVAL) and SET_PERMS naming such an owner
// (ENOENT); other entries may name any domain.
func TestDomainsMustExist(t *testing.T) {
	ctx := context.Background()
	st := &states{m: map[uint32][2]bool{}}
	_, dom0 := setup(t, &xenstoretest.Config{Domains: st})
	assert.ErrorIs(t, dom0.Introduce(ctx, 6, 1, 1), syscall.EINVAL)
	require.NoError(t, dom0.Write(ctx, "/p", nil))
	err := dom0.SetPerms(ctx, "/p", []xenstore.Perm{{Dom: 6, Access: xenstore.AccessNone}})
	assert.ErrorIs(t, err, syscall.ENOENT)
	require.NoError(t, dom0.SetPerms(ctx, "/p", []xenstore.Perm{{Dom: 0, Access: xenstore.AccessNone}, {Dom: 6, Access: xenstore.AccessRead}}))

	st.set(6, true, false)
	require.NoError(t, dom0.Introduce(ctx, 6, 1, 1))
	require.NoError(t, dom0.SetPerms(ctx, "/p", []xenstore.Perm{{Dom: 6, Access: xenstore.AccessNone}}))
}

// A permission entry naming a domain that does not exist, or a domain
// that went away since, grants nothing, also to a later domain with the
// same id; GET_PERMS still lists it (cxenstored 4.17's XS_PERM_IGNORE).
func TestPermsOfGoneDomainsGrantNothing(t *testing.T) {
	ctx := context.Background()
	readable := func(dom0 *xenstore.Client, p string, dom uint32) {
		t.Helper()
		perms := []xenstore.Perm{{Dom: 0, Access: xenstore.AccessNone}, {Dom: dom, Access: xenstore.AccessRead}}
		require.NoError(t, dom0.Write(ctx, p, []byte("v")))
		require.NoError(t, dom0.SetPerms(ctx, p, perms))
		got, err := dom0.GetPerms(ctx, p)
		require.NoError(t, err)
		assert.Equal(t, perms, got, "listed as set")
	}

	t.Run("released", func(t *testing.T) {
		srv, dom0 := setup(t, nil) // every domain exists
		require.NoError(t, dom0.Introduce(ctx, 5, 1, 1))
		readable(dom0, "/n", 5)
		require.NoError(t, dom0.Write(ctx, "/n/tx", nil))
		d5 := client(t, srv, 5)
		v, err := d5.Read(ctx, "/n")
		require.NoError(t, err)
		assert.Equal(t, []byte("v"), v, "granted while domain 5 lives")
		require.NoError(t, dom0.Write(ctx, "/n/tx/new", nil))
		// A transaction open across the release.
		var txErr error
		require.NoError(t, dom0.Transaction(ctx, func(tx *xenstore.Tx) error {
			if _, err := tx.Read(ctx, "/n"); err != nil {
				return err
			}
			txErr = dom0.Release(ctx, 5)
			return tx.Write(ctx, "/n/tx/new/fromtx", nil)
		}))
		require.NoError(t, txErr)

		require.NoError(t, dom0.Introduce(ctx, 5, 1, 1))
		d5 = client(t, srv, 5)
		_, err = d5.Read(ctx, "/n")
		assert.ErrorIs(t, err, syscall.EACCES, "the new domain 5 does not inherit the old one's entry")
		_, err = d5.Read(ctx, "/n/tx")
		assert.ErrorIs(t, err, syscall.EACCES, "nor on the child")
		_, err = d5.Read(ctx, "/n/tx/new/fromtx")
		assert.ErrorIs(t, err, syscall.EACCES, "nor on a node the transaction created")
		perms, err := dom0.GetPerms(ctx, "/n")
		require.NoError(t, err)
		assert.Len(t, perms, 2, "still listed")

		readable(dom0, "/n", 5)
		_, err = d5.Read(ctx, "/n")
		assert.NoError(t, err, "set again for the new domain: granted")
	})

	t.Run("never existed", func(t *testing.T) {
		st := &states{m: map[uint32][2]bool{}}
		srv, dom0 := setup(t, &xenstoretest.Config{Domains: st})
		readable(dom0, "/n", 6) // domain 6 does not exist yet
		require.NoError(t, dom0.Write(ctx, "/n/child", nil))
		st.set(6, true, false)
		require.NoError(t, dom0.Introduce(ctx, 6, 1, 1))
		d6 := client(t, srv, 6)
		_, err := d6.Read(ctx, "/n")
		assert.ErrorIs(t, err, syscall.EACCES)
		_, err = d6.Read(ctx, "/n/child")
		assert.ErrorIs(t, err, syscall.EACCES, "inherited, still ignored")
	})

	t.Run("destroyed", func(t *testing.T) {
		st := &states{m: map[uint32][2]bool{7: {true, false}, 8: {true, false}}}
		srv, dom0 := setup(t, &xenstoretest.Config{Domains: st})
		readable(dom0, "/n7", 7) // never introduced while it existed
		readable(dom0, "/n8", 8)
		st.set(7, false, false)
		srv.DomainChanged()
		st.set(7, true, false)
		require.NoError(t, dom0.Introduce(ctx, 7, 1, 1))
		require.NoError(t, dom0.Introduce(ctx, 8, 1, 1))
		_, err := client(t, srv, 7).Read(ctx, "/n7")
		assert.ErrorIs(t, err, syscall.EACCES, "domain 7 went away in between")
		_, err = client(t, srv, 8).Read(ctx, "/n8")
		assert.NoError(t, err, "domain 8 lived on")
	})
}

// The nodes a domain owns go with it (cxenstored's domain_tree_remove):
// on XS_RELEASE, and at DomainChanged for a domain that no longer
// exists, introduced or not; watchers hear of each removed subtree.
func TestGoneDomainsNodesRemoved(t *testing.T) {
	ctx := context.Background()
	st := &states{m: map[uint32][2]bool{5: {true, false}, 9: {true, false}}}
	srv, dom0 := setup(t, &xenstoretest.Config{Domains: st})
	require.NoError(t, dom0.Introduce(ctx, 5, 1, 1))
	own := func(p string, dom uint32) {
		t.Helper()
		require.NoError(t, dom0.Write(ctx, p+"/child", []byte("c")))
		require.NoError(t, dom0.SetPerms(ctx, p, []xenstore.Perm{{Dom: dom, Access: xenstore.AccessNone}}))
	}
	own("/d5/owned", 5)
	own("/d5/owned/deeper", 5)
	own("/d9", 9)
	require.NoError(t, dom0.Write(ctx, "/d5/kept", nil))
	w, err := dom0.Watch(ctx, "/d5")
	require.NoError(t, err)
	defer w.Close()
	event(t, w)

	require.NoError(t, dom0.Release(ctx, 5))
	assert.Equal(t, "/d5/owned", event(t, w).Path, "one event for the removed subtree")
	for _, p := range []string{"/d5/owned", "/d5/owned/child", "/d5/owned/deeper"} {
		_, err := dom0.Read(ctx, p)
		assert.ErrorIs(t, err, fs.ErrNotExist, "%s went with domain 5", p)
	}
	_, err = dom0.Read(ctx, "/d5/kept")
	assert.NoError(t, err, "dom0's node stays")

	_, err = dom0.Read(ctx, "/d9/child")
	require.NoError(t, err, "domain 9 still exists")
	srv.DomainChanged()
	_, err = dom0.Read(ctx, "/d9/child")
	require.NoError(t, err, "nothing changed for domain 9")
	st.set(9, false, false)
	srv.DomainChanged()
	_, err = dom0.Read(ctx, "/d9")
	assert.ErrorIs(t, err, fs.ErrNotExist, "domain 9, never introduced, went away: its nodes too")
}

// The permissions of @releaseDomain follow the domains as a node's do:
// an owner that does not exist is ENOENT, an entry naming a domain that
// does not exist grants nothing, and a domain that goes away is dropped
// from them (cxenstored's remove_domid_from_perm). GET_PERMS of a special
// path is EINVAL, as in cxenstored 4.17.
func TestSpecialPermsFollowDomains(t *testing.T) {
	ctx := context.Background()
	st := &states{m: map[uint32][2]bool{5: {true, false}, 7: {true, false}, 8: {true, false}}}
	srv, dom0 := setup(t, &xenstoretest.Config{Domains: st})
	for _, d := range []uint32{5, 7, 8} {
		require.NoError(t, dom0.Introduce(ctx, d, 1, 1))
	}
	_, err := dom0.GetPerms(ctx, "@releaseDomain")
	assert.ErrorIs(t, err, syscall.EINVAL)
	assert.ErrorIs(t, dom0.SetPerms(ctx, "@releaseDomain", []xenstore.Perm{{Dom: 6, Access: xenstore.AccessNone}}), syscall.ENOENT)
	require.NoError(t, dom0.SetPerms(ctx, "@releaseDomain", []xenstore.Perm{
		{Dom: 0, Access: xenstore.AccessNone}, {Dom: 5, Access: xenstore.AccessRead},
		{Dom: 6, Access: xenstore.AccessRead}, {Dom: 8, Access: xenstore.AccessRead},
	}))
	st.set(6, true, false)
	require.NoError(t, dom0.Introduce(ctx, 6, 1, 1))
	watch := func(dom uint32) *xenstore.Watch {
		w, err := client(t, srv, dom).Watch(ctx, "@releaseDomain")
		require.NoError(t, err)
		t.Cleanup(func() { w.Close() })
		event(t, w) // the initial event
		return w
	}
	w5, w6 := watch(5), watch(6)

	require.NoError(t, dom0.Release(ctx, 7))
	assert.Equal(t, "@releaseDomain", event(t, w5).Path, "domain 5 may read @releaseDomain")
	noEvent(t, dom0, w6) // domain 6 did not exist when it was named

	// Domain 8 goes away and comes back: its entry is gone with it.
	require.NoError(t, dom0.Release(ctx, 8))
	event(t, w5)
	require.NoError(t, dom0.Introduce(ctx, 8, 1, 1))
	w8 := watch(8)
	require.NoError(t, dom0.Release(ctx, 5))
	noEvent(t, dom0, w8)
}
