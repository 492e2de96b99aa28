//go:build xenckpt_dom0

package indom0

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
)

// TestPVRestore restores a PV guest on real Xen with the project: xl saves
// the running PV guest, checkpoint.Controller.Restore builds the new domain
// from xl's image (new machine frames, page tables localised and pinned,
// p2m, start_info, shared_info and vCPU state translated, grant table
// seeded, introduced to xenstored) and the guest's counter goes on at the
// tick after the last one. The restored domain is destroyed at the end so
// later tests start from a fresh guest.
func TestPVRestore(t *testing.T) {
	requireDom0(t)
	ctl, c, _ := controller(t)
	g := ensureGuest(t, "pv")
	g.freshTick(t)
	require.NoError(t, os.MkdirAll(imageDir, 0o755))
	img := filepath.Join(imageDir, "xl-save-for-xenckpt-restore-pv")
	defer os.Remove(img)
	mustXL(t, 3*time.Minute, "save", g.Name, img)
	require.False(t, g.exists(t.Context()), "step xl save: %s still exists", g.Name)
	defer destroyGuest(t, g)

	ticks := g.ticks()
	require.NotEmpty(t, ticks)
	last, m := ticks[len(ticks)-1], len(ticks)
	f, err := os.Open(img)
	require.NoError(t, err)
	start := time.Now()
	dom, err := ctl.Restore(t.Context(), f, nil)
	d := time.Since(start)
	f.Close()
	require.NoError(t, err, "step restore of xl's PV image")
	recordTiming(t, "xenckpt", "restore of xl image", "pv", d)
	t.Logf("restored %s as domain %d in %v", g.Name, dom, d)
	assert.Equal(t, uint32(dom), g.domid(t), "the guest's name resolves to the restored domain")

	first := g.waitTick(t, m, tickWait)
	assert.Equal(t, last+1, first, "first tick after the project's restore of xl's PV image")
	g.waitTick(t, g.mark(), tickWait)
	consecutive(t, "after the project's PV restore", g.ticksSince(m-1))
	info, err := c.DomainInfo(t.Context(), dom)
	require.NoError(t, err)
	assert.False(t, info.Paused() || info.Shutdown(), "restored PV guest paused or shut down: %+v", info)
}

// TestPVSaveRestore saves the running PV guest with the project and
// restores the image with the project (a non-live PV migration to this
// host through a file): the counter continues at last+1.
func TestPVSaveRestore(t *testing.T) {
	requireDom0(t)
	ctl, _, notes := controller(t)
	g := ensureGuest(t, "pv")
	dom := domctl.DomID(g.domid(t))
	g.freshTick(t)
	require.NoError(t, os.MkdirAll(imageDir, 0o755))
	img := filepath.Join(imageDir, "xenckpt-save-for-xenckpt-restore-pv")
	defer os.Remove(img)
	f, err := os.Create(img)
	require.NoError(t, err)
	_, err = ctl.Save(t.Context(), dom, f, &checkpoint.SaveOptions{Resume: checkpoint.ResumeOptions{Notes: notes}})
	require.NoError(t, f.Close())
	require.NoError(t, err, "step save of the PV guest")
	require.False(t, g.exists(t.Context()), "step save: %s still exists", g.Name)
	defer destroyGuest(t, g)

	ticks := g.ticks()
	last, m := ticks[len(ticks)-1], len(ticks)
	f, err = os.Open(img)
	require.NoError(t, err)
	newDom, err := ctl.Restore(t.Context(), f, nil)
	f.Close()
	require.NoError(t, err, "step restore of the project's PV image")
	assert.Equal(t, uint32(newDom), g.domid(t))
	first := g.waitTick(t, m, tickWait)
	assert.Equal(t, last+1, first, "first tick after project save + project restore of PV")
}

// TestPVMigrate migrates the PV guest to this host non-live (Debian's Xen
// has no log-dirty for PV) with the project's sender and receiver over an
// in-process connection: the receiver's restore builds the new PV domain
// with new machine frames and the counter stays consecutive.
func TestPVMigrate(t *testing.T) {
	requireDom0(t)
	ctl, _, notes := controller(t)
	g := ensureGuest(t, "pv")
	dom := domctl.DomID(g.domid(t))
	g.freshTick(t)
	m0 := g.mark()
	defer destroyGuest(t, g)

	m := migrateLocal(t, ctl, dom, &checkpoint.SaveOptions{Resume: checkpoint.ResumeOptions{Notes: notes}})
	res, newDom, d, err, recvErr := m.res, m.newDom, m.d, m.err, m.recvErr
	require.NoError(t, err, "step migrate (sender)")
	require.NoError(t, recvErr, "step migrate (receiver)")
	recordTiming(t, "xenckpt", "migrate (non-live)", "pv", d)
	t.Logf("migrated %d -> %d: %d pages, paused %v", dom, newDom, res.Pages, res.PauseTime)
	assert.NotEqual(t, dom, newDom)
	assert.Equal(t, uint32(newDom), g.domid(t), "the guest's name now resolves to the new domain")
	g.waitTick(t, g.mark(), tickWait)
	g.waitTick(t, g.mark(), tickWait)
	consecutive(t, "after PV migration", g.ticksSince(m0-1))
}
