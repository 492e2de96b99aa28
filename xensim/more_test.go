package xensim

import (
	"encoding/binary"
	"net"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/magic"
)

func TestRemoteShutdownAndVIRQ(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	c := newHC(t, h)
	dev, err := h.Backend().OpenEvtchn()
	require.NoError(t, err)
	defer dev.Close()
	var virq abi.IoctlEvtchnBindVirq
	virq.Virq = abi.VIRQ_DOM_EXC
	port, err := dev.Ioctl(abi.IOCTL_EVTCHN_BIND_VIRQ, abi.Bytes(&virq))
	require.NoError(t, err)
	virq.Virq = 99
	_, err = dev.Ioctl(abi.IOCTL_EVTCHN_BIND_VIRQ, abi.Bytes(&virq))
	require.ErrorIs(t, err, syscall.EINVAL)

	g, err := h.CreateGuest(ctx, GuestConfig{Kind: PVH})
	require.NoError(t, err)
	raw, err := c.vcpuCtx(g.Domain(), 0, ctxSize64)
	require.NoError(t, err)
	binary.LittleEndian.PutUint64(raw[ctx64RaxOff:], 42)
	require.NoError(t, c.setVCPUCtx(g.Domain(), 0, raw))

	// SCHEDOP_remote_shutdown, as libxl does for HVM guests without PV
	// drivers: the guest is stopped where it is; registers are untouched.
	arg := c.buf(int(unsafe.Sizeof(abi.SchedRemoteShutdown{})))
	rs := abi.View[abi.SchedRemoteShutdown](arg)
	rs.DomainID, rs.Reason = uint16(g.Domain()), abi.SHUTDOWN_suspend
	_, err = h.Backend().Hypercall(abi.HYPERVISOR_sched_op, [5]uint64{abi.SCHEDOP_remote_shutdown, uint64(addrOf(arg))})
	require.NoError(t, err)
	assert.Equal(t, uint32(port), readPort(t, ctx, dev), "VIRQ_DOM_EXC")
	info, err := c.info(g.Domain())
	require.NoError(t, err)
	assert.NotZero(t, info.Flags&abi.XEN_DOMINF_shutdown)
	raw, err = c.vcpuCtx(g.Domain(), 0, ctxSize64)
	require.NoError(t, err)
	assert.Equal(t, uint64(42), binary.LittleEndian.Uint64(raw[ctx64RaxOff:]))
	assert.Equal(t, GuestRunning, g.State(), "the kernel never made a suspend call")
	n := g.Counter()
	require.NoError(t, c.simple(abi.XEN_DOMCTL_resumedomain, g.Domain()))
	require.NoError(t, g.WaitCounter(ctx, n+2))
	assert.Equal(t, uint64(0), g.Suspends())

	// The VIRQ port is masked until written back; destroy fires it again.
	unmask(t, dev, uint32(port))
	require.NoError(t, c.simple(abi.XEN_DOMCTL_destroydomain, g.Domain()))
	assert.Equal(t, uint32(port), readPort(t, ctx, dev))
	require.NoError(t, g.WaitState(ctx, GuestExited))
}

func TestXenVersionAndCapabilities(t *testing.T) {
	h := newTestHost(t, &Config{Version: Xen419})
	v, err := h.Backend().Hypercall(abi.HYPERVISOR_xen_version, [5]uint64{abi.XENVER_version})
	require.NoError(t, err)
	assert.Equal(t, uint64(4<<16|19), v)
	c := newHC(t, h)
	b := c.buf(abi.XEN_CAPABILITIES_INFO_LEN)
	_, err = h.Backend().Hypercall(abi.HYPERVISOR_xen_version, [5]uint64{abi.XENVER_capabilities, uint64(addrOf(b))})
	require.NoError(t, err)
	assert.Equal(t, Capabilities, string(b[:len(Capabilities)]))
	assert.Zero(t, b[len(Capabilities)])
	_, err = h.Backend().Hypercall(abi.HYPERVISOR_xen_version, [5]uint64{abi.XENVER_capabilities, uint64(addrOf(b)) + PageSize - 8})
	require.ErrorIs(t, err, syscall.EFAULT, "buffer overrun")
	_, err = h.Backend().Hypercall(abi.HYPERVISOR_xen_version, [5]uint64{77})
	require.ErrorIs(t, err, syscall.ENOSYS)
}

func TestAllocUnboundAndBuffers(t *testing.T) {
	h := newTestHost(t, nil)
	c := newHC(t, h)
	d, err := c.create(false, 1)
	require.NoError(t, err)
	b := c.buf(int(unsafe.Sizeof(abi.EvtchnAllocUnbound{})))
	a := abi.View[abi.EvtchnAllocUnbound](b)
	a.Dom, a.RemoteDom = uint16(d), 0
	_, err = h.Backend().Hypercall(abi.HYPERVISOR_event_channel_op, [5]uint64{abi.EVTCHNOP_alloc_unbound, uint64(addrOf(b))})
	require.NoError(t, err)
	assert.NotZero(t, a.Port)
	a.Dom = 999
	_, err = h.Backend().Hypercall(abi.HYPERVISOR_event_channel_op, [5]uint64{abi.EVTCHNOP_alloc_unbound, uint64(addrOf(b))})
	require.ErrorIs(t, err, syscall.ESRCH)

	require.ErrorIs(t, h.Backend().FreeBuffer(make([]byte, 10)), syscall.EINVAL, "not a hypercall buffer")
	_, err = h.Backend().AllocBuffer(0)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = h.Backend().MapForeign(d, domctl.ProtRead, []uint64{1}, make([]int32, 2))
	require.ErrorIs(t, err, syscall.EINVAL, "errs length")
	_, err = h.Backend().MapForeign(77, domctl.ProtRead, []uint64{1}, make([]int32, 1))
	require.ErrorIs(t, err, syscall.ESRCH)
}

// Many guests suspended, scanned and resumed concurrently, for -race.
func TestConcurrentCheckpoints(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for i := range 4 {
		conv := []Convention{ConventionSeed, ConventionLinux}[i%2]
		g, err := h.CreateGuest(ctx, GuestConfig{Convention: conv, Pages: 256, DirtyRate: 50000, SuspendEventChannel: i%2 == 1})
		require.NoError(t, err)
		wg.Go(func() {
			c := newHC(t, h)
			dom := g.Domain()
			_, _, err := c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0, 0)
			assert.NoError(t, err)
			gfns := make([]uint64, 256) // the guest's machine frames
			for j := range gfns {
				f, err := h.Frame(dom, uint64(j))
				if !assert.NoError(t, err) {
					return
				}
				gfns[j] = f
			}
			errs := make([]int32, len(gfns))
			dst := make([]byte, len(gfns)*PageSize)
			for round := range stressRounds {
				_, _, err := c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_CLEAN, 0, 256)
				assert.NoError(t, err)
				mem, err := h.Backend().MapForeign(dom, domctl.ProtRead, gfns, errs)
				if !assert.NoError(t, err) {
					return
				}
				copy(dst, mem)
				assert.NoError(t, h.Backend().UnmapForeign(mem))
				requestSuspend(t, h, dom)
				if conv == ConventionLinux {
					raw, err := c.vcpuCtx(dom, 0, ctxSize64)
					assert.NoError(t, err)
					binary.LittleEndian.PutUint64(raw[ctx64RaxOff:], 1)
					assert.NoError(t, c.setVCPUCtx(dom, 0, raw))
				}
				assert.NoError(t, c.simple(abi.XEN_DOMCTL_resumedomain, dom))
				xs, err := h.Store(0)
				if assert.NoError(t, err) {
					assert.NoError(t, xs.Resume(ctx, uint32(dom)))
					xs.Close()
				}
				assert.NoError(t, g.WaitCounter(ctx, g.Counter()))
				assert.Equal(t, uint64(round+1), g.Suspends())
			}
			assert.Equal(t, uint64(0), g.Reconnects())
		})
	}
	wg.Wait()
}

func TestCloseWithRunningGuestsAndMappings(t *testing.T) {
	h, err := NewHost(nil)
	require.NoError(t, err)
	ctx := testCtx(t)
	g, err := h.CreateGuest(ctx, GuestConfig{DirtyRate: 1000})
	require.NoError(t, err)
	_, err = h.Backend().MapForeign(g.Domain(), domctl.ProtRead, []uint64{0}, make([]int32, 1))
	require.NoError(t, err)
	require.NoError(t, h.Close())
	require.NoError(t, h.Close())
	assert.Equal(t, GuestExited, g.State())
	assert.Equal(t, uint64(0), g.Counter())
	_, err = h.Backend().Hypercall(abi.HYPERVISOR_domctl, [5]uint64{})
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = h.CreateGuest(ctx, GuestConfig{})
	require.ErrorIs(t, err, ErrClosed)
}

func TestSeedKernelAdvertisesInMagic(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	for _, tc := range []struct {
		cfg  GuestConfig
		want string
	}{
		{GuestConfig{Convention: ConventionSeed}, "xen-3.0-x86_64 sc"},
		{GuestConfig{Convention: ConventionSeed, Kind: PV32}, "xen-3.0-x86_32p sc"},
		{GuestConfig{Convention: ConventionLinux}, "xen-3.0-x86_64"},
		{GuestConfig{Convention: ConventionLegacy, Kind: PV32}, "xen-3.0-x86_32p"},
	} {
		g, err := h.CreateGuest(ctx, tc.cfg)
		require.NoError(t, err)
		si, err := h.Frame(g.Domain(), startInfoPFN)
		require.NoError(t, err)
		m, err := h.Backend().MapForeign(g.Domain(), domctl.ProtRead, []uint64{si}, make([]int32, 1))
		require.NoError(t, err)
		mg, err := magic.Parse(m[:magic.MagicSize])
		require.NoError(t, err)
		assert.Equal(t, tc.want, mg.String())
		assert.Equal(t, tc.cfg.Convention == ConventionSeed, mg.SuspendCancel)
		require.NoError(t, h.Backend().UnmapForeign(m))
	}
}

func TestSharedInfoFrameIsMappable(t *testing.T) {
	h := newTestHost(t, nil)
	c := newConn(t, h)
	ctx := testCtx(t)
	g, err := h.CreateGuest(ctx, GuestConfig{Pages: 16})
	require.NoError(t, err)
	info, err := c.DomainInfo(ctx, g.Domain())
	require.NoError(t, err)
	f3, err := h.Frame(g.Domain(), 3)
	require.NoError(t, err)
	m, err := c.MapForeign(ctx, g.Domain(), domctl.ProtReadWrite, []uint64{info.SharedInfoFrame, f3, info.SharedInfoFrame + 1})
	require.NoError(t, err)
	require.NoError(t, m.Err(0))
	require.NoError(t, m.Err(1))
	require.ErrorIs(t, m.Err(2), syscall.EINVAL)
	copy(m.Page(0), "shared")
	require.NoError(t, m.Close())
	m, err = c.MapForeign(ctx, g.Domain(), domctl.ProtRead, []uint64{info.SharedInfoFrame})
	require.NoError(t, err)
	assert.Equal(t, "shared", string(m.Page(0)[:6]))
	require.NoError(t, m.Close())
	types := make([]uint32, 1)
	require.NoError(t, c.PageFrameTypes(ctx, g.Domain(), []uint64{info.SharedInfoFrame}, types))
	assert.Equal(t, uint32(abi.XEN_DOMCTL_PFINFO_XTAB), types[0], "not a guest frame")
}

// stressRounds is how many checkpoints each guest of
// TestConcurrentCheckpoints takes.
var stressRounds = 5

// TestMaxVCPUsAllocatesVCPUs: as in Xen 4.17, a domain made by
// XEN_DOMCTL_createdomain has no vCPUs until XEN_DOMCTL_max_vcpus (with the
// same count) allocates them; loading vCPU or HVM context before fails with
// EINVAL, as hvm_load_cpu_ctxt does.
func TestMaxVCPUsAllocatesVCPUs(t *testing.T) {
	h := newTestHost(t, nil)
	c := newHC(t, h)
	for _, hvm := range []bool{false, true} {
		dom, err := c.createNoVCPUs(hvm, 2)
		require.NoError(t, err)
		if hvm {
			require.ErrorIs(t, c.setHVMContext(dom, make([]byte, 64)), syscall.EINVAL)
		} else {
			require.ErrorIs(t, c.setVCPUCtx(dom, 0, make([]byte, ctxSize64)), syscall.EINVAL)
		}
		_, err = c.domctl(abi.XEN_DOMCTL_max_vcpus, dom, func(dc *abi.Domctl) {
			abi.DomctlPayload[abi.DomctlMaxVCPUs](dc).Max = 3
		})
		require.ErrorIs(t, err, syscall.EINVAL, "max_vcpus must match createdomain")
		_, err = c.domctl(abi.XEN_DOMCTL_max_vcpus, dom, func(dc *abi.Domctl) {
			abi.DomctlPayload[abi.DomctlMaxVCPUs](dc).Max = 2
		})
		require.NoError(t, err)
		if !hvm {
			require.NoError(t, c.setVCPUCtx(dom, 0, make([]byte, ctxSize64)))
		}
		require.NoError(t, c.simple(abi.XEN_DOMCTL_destroydomain, dom))
	}
}
