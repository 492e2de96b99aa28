package xensim

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// These tests run domctl's real encoders and decoders against the
// simulator.

func newConn(t *testing.T, h *Host) *domctl.Conn {
	t.Helper()
	c, err := domctl.NewConn(h.Backend(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConnProbesInterfaceVersion(t *testing.T) {
	for _, v := range []Version{Xen417, Xen418, Xen419} {
		t.Run(v.String(), func(t *testing.T) {
			h := newTestHost(t, &Config{Version: v})
			c := newConn(t, h)
			assert.Equal(t, v.DomctlInterfaceVersion(), c.InterfaceVersion())
		})
	}
	h := newTestHost(t, &Config{Version: Xen419})
	_, err := domctl.NewConn(h.Backend(), &domctl.Config{InterfaceVersions: []uint32{0x15, 0x16}})
	require.ErrorIs(t, err, domctl.ErrInterfaceVersion)
}

func TestConnDomainInfoOfGoneDomain(t *testing.T) {
	for _, v := range []Version{Xen417, Xen418} {
		t.Run(v.String(), func(t *testing.T) {
			h := newTestHost(t, &Config{Version: v})
			c := newConn(t, h)
			ctx := testCtx(t)
			a, err := c.CreateDomain(ctx, domctl.CreateConfig{})
			require.NoError(t, err)
			_, err = c.CreateDomain(ctx, domctl.CreateConfig{})
			require.NoError(t, err)
			require.NoError(t, c.DestroyDomain(ctx, a))
			_, err = c.DomainInfo(ctx, a)
			require.Error(t, err)
			assert.True(t, errors.Is(err, domctl.ErrNoDomain) || errors.Is(err, syscall.ESRCH), "%v", err)
		})
	}
}

func TestConnCheckpointRoundTripLinux(t *testing.T) {
	h := newTestHost(t, &Config{PVFrames: PVFramesMachine})
	c := newConn(t, h)
	ctx := testCtx(t)
	g, err := h.CreateGuest(ctx, GuestConfig{Convention: ConventionLinux, Pages: 128, DirtyRate: 10000})
	require.NoError(t, err)
	dom := g.Domain()

	caps, err := c.Capabilities(ctx)
	require.NoError(t, err)
	assert.Contains(t, caps, "xen-3.0-x86_64")
	bits, err := c.AddressSize(ctx, dom)
	require.NoError(t, err)
	assert.Equal(t, 64, bits)
	maxGPFN, err := c.MaxGPFN(ctx, dom)
	require.NoError(t, err)
	assert.Equal(t, uint64(127), maxGPFN)
	// A PV guest's frames are machine frames, found through its p2m.
	last, err := h.Frame(dom, 127)
	require.NoError(t, err)
	types := make([]uint32, 2)
	require.NoError(t, c.PageFrameTypes(ctx, dom, []uint64{last, 500}, types))
	assert.Equal(t, []uint32{abi.XEN_DOMCTL_PFINFO_NOTAB, abi.XEN_DOMCTL_PFINFO_XTAB}, types)

	require.NoError(t, c.EnableLogDirty(ctx, dom))
	require.NoError(t, g.WaitCounter(ctx, g.Counter()+10))
	bitmap := make([]uint64, 2)
	st, err := c.PeekDirty(ctx, dom, bitmap)
	require.NoError(t, err)
	assert.NotZero(t, st.DirtyCount)
	assert.NotZero(t, bitmap[0]&1)

	requestSuspend(t, h, dom)
	st, err = c.CleanDirty(ctx, dom, bitmap, true)
	require.NoError(t, err)
	assert.Equal(t, uint64(128), st.Pages)
	require.NoError(t, c.DisableLogDirty(ctx, dom))

	info, err := c.DomainInfo(ctx, dom)
	require.NoError(t, err)
	assert.True(t, info.Suspended())
	vc, err := c.VCPUContext(ctx, dom, 0, 8)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), binary.LittleEndian.Uint64(vc.Raw[ctx64RaxOff:]))
	si, err := h.Frame(dom, startInfoPFN)
	require.NoError(t, err)
	assert.Equal(t, si, binary.LittleEndian.Uint64(vc.Raw[ctx64RdxOff:]), "edx holds start_info's machine frame")
	binary.LittleEndian.PutUint64(vc.Raw[ctx64RaxOff:], 1) // upstream cancel
	require.NoError(t, c.SetVCPUContext(ctx, dom, 0, vc))
	require.NoError(t, c.ResumeDomain(ctx, dom))
	require.NoError(t, g.WaitCounter(ctx, g.Counter()+2))
	assert.Equal(t, int64(1), g.LastSuspendReturn())
	assert.Equal(t, uint64(0), g.Reconnects())
}

func TestConnPVHParamsAndContext(t *testing.T) {
	h := newTestHost(t, nil)
	c := newConn(t, h)
	ctx := testCtx(t)
	g, err := h.CreateGuest(ctx, GuestConfig{Kind: PVH})
	require.NoError(t, err)
	info, err := c.DomainInfo(ctx, g.Domain())
	require.NoError(t, err)
	assert.True(t, info.HVM())
	cb, err := c.HVMParam(ctx, g.Domain(), abi.HVM_PARAM_CALLBACK_IRQ)
	require.NoError(t, err)
	assert.NotZero(t, cb, "PV drivers present")
	require.NoError(t, c.SetHVMParam(ctx, g.Domain(), abi.HVM_PARAM_VIRIDIAN, 7))
	v, err := c.HVMParam(ctx, g.Domain(), abi.HVM_PARAM_VIRIDIAN)
	require.NoError(t, err)
	assert.Equal(t, uint64(7), v)
	blob, err := c.HVMContext(ctx, g.Domain())
	require.NoError(t, err)
	require.NotNil(t, hvmCPURecord(blob, 0))
	require.NoError(t, c.SetHVMContext(ctx, g.Domain(), blob))
	tsc, err := c.TSCInfo(ctx, g.Domain())
	require.NoError(t, err)
	tsc.Incarnation = 3
	require.NoError(t, c.SetTSCInfo(ctx, g.Domain(), tsc))
	tsc2, err := c.TSCInfo(ctx, g.Domain())
	require.NoError(t, err)
	assert.Equal(t, tsc, tsc2)
	_, err = c.HVMParam(ctx, 0, abi.HVM_PARAM_CALLBACK_IRQ)
	require.ErrorIs(t, err, syscall.EINVAL, "dom0 is PV")
}

func TestConnRestoreTarget(t *testing.T) {
	h := newTestHost(t, nil)
	c := newConn(t, h)
	ctx := testCtx(t)
	dom, err := c.CreateDomain(ctx, domctl.CreateConfig{MaxMemKB: 64 * 4, AddressSize: 32, MaxVCPUs: 2})
	require.NoError(t, err)
	bits, err := c.AddressSize(ctx, dom)
	require.NoError(t, err)
	assert.Equal(t, 32, bits)
	gfns := make([]uint64, 64)
	for i := range gfns {
		gfns[i] = uint64(i)
	}
	require.NoError(t, c.PopulatePhysmap(ctx, dom, gfns))
	err = c.PopulatePhysmap(ctx, dom, []uint64{64})
	require.ErrorIs(t, err, syscall.EBUSY, "beyond max_mem")
	vc, err := c.VCPUContext(ctx, dom, 1, 4)
	require.NoError(t, err)
	assert.Len(t, vc.Raw, ctxSize32)
	require.NoError(t, c.SetVCPUContext(ctx, dom, 1, nil))
	info, err := c.DomainInfo(ctx, dom)
	require.NoError(t, err)
	assert.Equal(t, uint64(64), info.TotPages)
	assert.Equal(t, uint32(1), info.NrOnlineVCPUs, "vCPU1 reset")
	assert.True(t, info.Paused())
	require.NoError(t, c.Unpause(ctx, dom))
	assert.Equal(t, GuestNone, h.Guest(dom).State(), "no kernel in empty memory")
}

// The libxc suspend event channel dance through domctl.Evtchn: bind,
// consume the bind event, subscribe, notify, wait for the suspended
// notification; then a Linux-convention cancel through the accessors.
func TestConnSuspendEventChannelAndAccessors(t *testing.T) {
	h := newTestHost(t, &Config{PVFrames: PVFramesMachine})
	c := newConn(t, h)
	ctx := testCtx(t)
	g, err := h.CreateGuest(ctx, GuestConfig{Kind: PV32, Convention: ConventionLinux, SuspendEventChannel: true})
	require.NoError(t, err)
	dom := g.Domain()
	xs, err := h.Store(0)
	require.NoError(t, err)
	defer xs.Close()
	v, err := xs.Read(ctx, domPathOf(dom)+"/device/suspend/event-channel")
	require.NoError(t, err)
	var remote uint32
	for _, ch := range string(v) {
		remote = remote*10 + uint32(ch-'0')
	}
	ev, err := c.OpenEvtchn(ctx)
	require.NoError(t, err)
	defer ev.Close()
	local, err := ev.BindInterdomain(ctx, dom, remote)
	require.NoError(t, err)
	p, err := ev.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, local, p)
	require.NoError(t, ev.Unmask(p))
	require.NoError(t, c.SubscribeSuspend(ctx, dom, remote))
	require.NoError(t, ev.Notify(local))
	p, err = ev.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, local, p)
	require.NoError(t, ev.Unmask(p))
	info, err := c.DomainInfo(ctx, dom)
	require.NoError(t, err)
	require.True(t, info.Suspended())

	vc, err := c.VCPUContext(ctx, dom, 0, 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), vc.RAX())
	si, err := h.Frame(dom, startInfoPFN)
	require.NoError(t, err)
	assert.Equal(t, si, vc.RDX(), "edx holds start_info's machine frame")
	m, err := c.MapForeign(ctx, dom, domctl.ProtRead, []uint64{vc.RDX()})
	require.NoError(t, err)
	assert.Equal(t, "xen-3.0-x86_32p", string(m.Page(0)[:15]), "start_info.magic")
	require.NoError(t, m.Close())
	vc.SetRAX(1)
	require.NoError(t, c.SetVCPUContext(ctx, dom, 0, vc))
	require.NoError(t, c.ResumeDomain(ctx, dom))
	require.NoError(t, g.WaitCounter(ctx, g.Counter()+2))
	assert.Equal(t, int64(1), g.LastSuspendReturn())
	assert.Equal(t, uint64(0), g.Reconnects())
	assert.Zero(t, c.OpenMappings())

	// A second suspend through the same channel.
	require.NoError(t, ev.Notify(local))
	p, err = ev.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, local, p)
	assert.Equal(t, uint64(2), g.Suspends())
}
