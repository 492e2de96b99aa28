package xensim

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime/debug"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

func TestShutdownStateMachinePV64(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	c := newHC(t, h)
	xs, err := h.Store(0)
	require.NoError(t, err)
	defer xs.Close()
	w, err := xs.Watch(ctx, "@releaseDomain")
	require.NoError(t, err)
	defer w.Close()
	<-w.Events() // initial event

	g, err := h.CreateGuest(ctx, GuestConfig{})
	require.NoError(t, err)
	dom := g.Domain()
	info, err := c.info(dom)
	require.NoError(t, err)
	assert.Zero(t, info.Flags&abi.XEN_DOMINF_shutdown)
	assert.NotZero(t, info.Flags&abi.XEN_DOMINF_running)
	assert.Equal(t, uint64(1024), info.TotPages)

	// Garbage in rax before the suspend: the hypercall must leave 0.
	raw, err := c.vcpuCtx(dom, 0, ctxSize64)
	require.NoError(t, err)
	binary.LittleEndian.PutUint64(raw[ctx64RaxOff:], 77)
	require.NoError(t, c.setVCPUCtx(dom, 0, raw))

	requestSuspend(t, h, dom)
	info, err = c.info(dom)
	require.NoError(t, err)
	assert.NotZero(t, info.Flags&abi.XEN_DOMINF_shutdown)
	assert.Equal(t, uint32(abi.SHUTDOWN_suspend), info.Flags>>abi.XEN_DOMINF_shutdownshift&abi.XEN_DOMINF_shutdownmask)
	assert.Zero(t, info.Flags&abi.XEN_DOMINF_paused, "suspend is not a toolstack pause")
	select {
	case <-w.Events():
	case <-ctx.Done():
		t.Fatal("no @releaseDomain after the suspend")
	}
	raw, err = c.vcpuCtx(dom, 0, ctxSize64)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), binary.LittleEndian.Uint64(raw[ctx64RaxOff:]), "rax")
	assert.Equal(t, uint64(startInfoPFN), binary.LittleEndian.Uint64(raw[ctx64RdxOff:]), "rdx = start_info frame")
	// The acknowledgement is Linux's "".
	v, err := xs.Read(ctx, domPathOf(dom)+"/control/shutdown")
	require.NoError(t, err)
	assert.Empty(t, v)

	require.ErrorIs(t, c.simple(abi.XEN_DOMCTL_resumedomain, 0), syscall.EINVAL, "resume self")
	require.ErrorIs(t, c.simple(abi.XEN_DOMCTL_resumedomain, 999), syscall.ESRCH)
	require.NoError(t, c.simple(abi.XEN_DOMCTL_resumedomain, dom))
	info, err = c.info(dom)
	require.NoError(t, err)
	assert.Zero(t, info.Flags&abi.XEN_DOMINF_shutdown)
	require.NoError(t, g.WaitCounter(ctx, g.Counter()+2))
}

func TestShutdownPV32UsesEaxEdx(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	c := newHC(t, h)
	g, err := h.CreateGuest(ctx, GuestConfig{Kind: PV32, Convention: ConventionLinux})
	require.NoError(t, err)
	dc, err := c.domctl(abi.XEN_DOMCTL_get_address_size, g.Domain(), nil)
	require.NoError(t, err)
	assert.Equal(t, uint32(32), abi.DomctlPayload[abi.DomctlAddressSize](dc).Size)
	requestSuspend(t, h, g.Domain())
	raw, err := c.vcpuCtx(g.Domain(), 0, ctxSize32)
	require.NoError(t, err)
	assert.Equal(t, uint32(startInfoPFN), binary.LittleEndian.Uint32(raw[ctx32EdxOff:]))
	// Linux: cancel is eax = 1.
	binary.LittleEndian.PutUint32(raw[ctx32EaxOff:], 1)
	require.NoError(t, c.setVCPUCtx(g.Domain(), 0, raw))
	require.NoError(t, c.simple(abi.XEN_DOMCTL_resumedomain, g.Domain()))
	require.NoError(t, g.WaitCounter(ctx, g.Counter()+2))
	assert.Equal(t, int64(1), g.LastSuspendReturn())
	assert.Equal(t, uint64(0), g.Reconnects())
}

func TestConventions(t *testing.T) {
	cases := []struct {
		conv       Convention
		rax        uint64
		reconnects uint64
	}{
		{ConventionSeed, 0, 0},
		{ConventionSeed, 1, 1},
		{ConventionLinux, 1, 0},
		{ConventionLinux, 0, 1},
		{ConventionLegacy, 0, 1},
		{ConventionLegacy, 1, 1},
	}
	h := newTestHost(t, nil)
	c := newHC(t, h)
	for _, tc := range cases {
		t.Run(tc.conv.String(), func(t *testing.T) {
			ctx := testCtx(t)
			g, err := h.CreateGuest(ctx, GuestConfig{Convention: tc.conv})
			require.NoError(t, err)
			requestSuspend(t, h, g.Domain())
			raw, err := c.vcpuCtx(g.Domain(), 0, ctxSize64)
			require.NoError(t, err)
			binary.LittleEndian.PutUint64(raw[ctx64RaxOff:], tc.rax)
			require.NoError(t, c.setVCPUCtx(g.Domain(), 0, raw))
			require.NoError(t, c.simple(abi.XEN_DOMCTL_resumedomain, g.Domain()))
			require.NoError(t, g.WaitCounter(ctx, g.Counter()+2))
			assert.Equal(t, int64(tc.rax), g.LastSuspendReturn())
			assert.Equal(t, tc.reconnects, g.Reconnects())
			require.NoError(t, g.WaitConnected(ctx))
			// It can be suspended again (the toolstack's XS_RESUME re-arms
			// @releaseDomain; the simulator's own wait polls getdomaininfo).
			xs, err := h.Store(0)
			require.NoError(t, err)
			defer xs.Close()
			require.NoError(t, xs.Resume(ctx, uint32(g.Domain())))
			requestSuspend(t, h, g.Domain())
			assert.Equal(t, uint64(2), g.Suspends())
			require.NoError(t, c.simple(abi.XEN_DOMCTL_destroydomain, g.Domain()))
		})
	}
}

func TestPVHReturnValueInHVMContext(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	c := newHC(t, h)
	g, err := h.CreateGuest(ctx, GuestConfig{Kind: PVH, Convention: ConventionLinux})
	require.NoError(t, err)
	requestSuspend(t, h, g.Domain())
	blob, err := c.hvmContext(g.Domain())
	require.NoError(t, err)
	cpu := hvmCPURecord(blob, 0)
	require.NotNil(t, cpu)
	assert.Equal(t, uint64(0), binary.LittleEndian.Uint64(cpu[hvmCPURaxOff:]))
	binary.LittleEndian.PutUint64(cpu[hvmCPURaxOff:], 1)
	require.NoError(t, c.setHVMContext(g.Domain(), blob))
	require.ErrorIs(t, c.setHVMContext(g.Domain(), blob[:10]), syscall.EINVAL)
	require.NoError(t, c.simple(abi.XEN_DOMCTL_resumedomain, g.Domain()))
	require.NoError(t, g.WaitCounter(ctx, g.Counter()+2))
	assert.Equal(t, int64(1), g.LastSuspendReturn())
	assert.Equal(t, uint64(0), g.Reconnects())
	// A PV domain has no HVM context.
	_, err = c.hvmContext(0)
	require.ErrorIs(t, err, syscall.EINVAL)
}

func TestGetDomainInfoVersions(t *testing.T) {
	h := newTestHost(t, nil)
	c := newHC(t, h)
	d1, err := c.create(false, 1)
	require.NoError(t, err)
	d2, err := c.create(false, 1)
	require.NoError(t, err)
	require.NoError(t, c.simple(abi.XEN_DOMCTL_destroydomain, d1))
	dc, err := c.domctl(abi.XEN_DOMCTL_getdomaininfo, d1, nil)
	require.NoError(t, err, "4.17 returns the next domain")
	assert.Equal(t, uint16(d2), dc.Domain)
	assert.Equal(t, uint16(d2), abi.DomctlPayload[abi.DomctlGetDomainInfo](dc).Domain)
	_, err = c.info(d2 + 100)
	require.ErrorIs(t, err, syscall.ESRCH)
	info, err := c.info(d2)
	require.NoError(t, err)
	assert.NotZero(t, info.Flags&abi.XEN_DOMINF_paused, "new domains are paused")

	h18 := newTestHost(t, &Config{Version: Xen418})
	c18 := newHC(t, h18)
	_, err = c18.info(5)
	require.ErrorIs(t, err, syscall.ESRCH, "4.18 fails for a missing domain")
	// A 4.17 caller talking to 4.18 gets EACCES.
	c18.ver = 0x15
	_, err = c18.info(0)
	require.ErrorIs(t, err, syscall.EACCES)
	c.ver = 0x17
	_, err = c.info(0)
	require.ErrorIs(t, err, syscall.EACCES)
}

func TestErrors(t *testing.T) {
	h := newTestHost(t, nil)
	c := newHC(t, h)
	_, err := h.Backend().Hypercall(99, [5]uint64{})
	require.ErrorIs(t, err, syscall.ENOSYS)
	require.ErrorIs(t, c.simple(0xfff, 0), syscall.ENOSYS)
	_, err = h.Backend().Hypercall(abi.HYPERVISOR_domctl, [5]uint64{0x1000})
	require.ErrorIs(t, err, syscall.EFAULT, "address outside any hypercall buffer")
	require.ErrorIs(t, c.simple(abi.XEN_DOMCTL_pausedomain, 0), syscall.EINVAL)
	require.ErrorIs(t, c.simple(abi.XEN_DOMCTL_pausedomain, 42), syscall.ESRCH)
	require.ErrorIs(t, c.simple(abi.XEN_DOMCTL_destroydomain, 0), syscall.EINVAL)
	d, err := c.create(false, 1)
	require.NoError(t, err)
	require.NoError(t, c.simple(abi.XEN_DOMCTL_unpausedomain, d))
	require.ErrorIs(t, c.simple(abi.XEN_DOMCTL_unpausedomain, d), syscall.EINVAL, "not paused")
	require.NoError(t, c.simple(abi.XEN_DOMCTL_pausedomain, d))
	require.NoError(t, c.simple(abi.XEN_DOMCTL_pausedomain, d))
	require.NoError(t, c.simple(abi.XEN_DOMCTL_unpausedomain, d))
	info, err := c.info(d)
	require.NoError(t, err)
	assert.NotZero(t, info.Flags&abi.XEN_DOMINF_paused, "pause count is 1")
	_, _, err = c.shadow(d, abi.XEN_DOMCTL_SHADOW_OP_CLEAN, 0, 64)
	require.ErrorIs(t, err, syscall.EINVAL, "log-dirty not enabled")
	_, err = c.vcpuCtx(d, 5, ctxSize64)
	require.ErrorIs(t, err, syscall.EINVAL, "no such vCPU")
}

func TestPauseStopsGuest(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	c := newHC(t, h)
	g, err := h.CreateGuest(ctx, GuestConfig{DirtyRate: 5000})
	require.NoError(t, err)
	require.NoError(t, g.WaitCounter(ctx, 2))
	require.NoError(t, c.simple(abi.XEN_DOMCTL_pausedomain, g.Domain()))
	n := g.Counter()
	time.Sleep(10 * time.Millisecond)
	assert.Equal(t, n, g.Counter())
	require.NoError(t, c.simple(abi.XEN_DOMCTL_unpausedomain, g.Domain()))
	require.NoError(t, g.WaitCounter(ctx, n+2))
}

func TestLogDirty(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	c := newHC(t, h)
	g, err := h.CreateGuest(ctx, GuestConfig{Pages: 256, DirtyRate: 20000})
	require.NoError(t, err)
	dom := g.Domain()
	_, _, err = c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0, 0)
	require.NoError(t, err)
	_, _, err = c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0, 0)
	require.ErrorIs(t, err, syscall.EINVAL, "already enabled")
	require.NoError(t, g.WaitCounter(ctx, g.Counter()+20))
	require.NoError(t, c.simple(abi.XEN_DOMCTL_pausedomain, dom))

	peek, bm, err := c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_PEEK, 0, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, uint64(256), peek.Pages, "pages capped at the p2m size")
	assert.NotZero(t, bm[0]&1, "header page (counter) is dirty")
	assert.Greater(t, peek.Stats.DirtyCount, uint32(10))
	clean, bm2, err := c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_CLEAN, 0, 256)
	require.NoError(t, err)
	assert.Equal(t, peek.Stats.DirtyCount, clean.Stats.DirtyCount, "PEEK does not clear")
	assert.Equal(t, bm[:32], bm2)
	clean, bm2, err = c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_CLEAN, 0, 256)
	require.NoError(t, err)
	assert.Zero(t, clean.Stats.DirtyCount, "CLEAN cleared")
	assert.Equal(t, make([]byte, 32), bm2)

	// A writable foreign mapping: dirty at map time, and again with FINAL.
	errs := make([]int32, 2)
	mem, err := h.Backend().MapForeign(dom, domctl.ProtReadWrite, []uint64{100, 101}, errs)
	require.NoError(t, err)
	_, bm2, err = c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_CLEAN, 0, 256)
	require.NoError(t, err)
	assert.Equal(t, byte(0x30), bm2[12], "pfn 100,101 dirty after writable map")
	_, bm2, err = c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_CLEAN, abi.XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL, 256)
	require.NoError(t, err)
	assert.Equal(t, byte(0x30), bm2[12], "FINAL includes pages still mapped writable")
	require.NoError(t, h.Backend().UnmapForeign(mem))
	_, _, err = c.shadow(dom, abi.XEN_DOMCTL_SHADOW_OP_OFF, 0, 0)
	require.NoError(t, err)
	require.NoError(t, c.simple(abi.XEN_DOMCTL_unpausedomain, dom))
}

func TestMapForeignAliasesGuestMemory(t *testing.T) {
	h := newTestHost(t, nil)
	c := newHC(t, h)
	b := h.Backend()
	d, err := c.create(false, 1)
	require.NoError(t, err)
	n, err := c.populate(d, []uint64{10, 11, 12, 20})
	require.NoError(t, err)
	assert.Equal(t, uint64(4), n)
	mg, err := b.Hypercall(abi.HYPERVISOR_memory_op, [5]uint64{abi.XENMEM_maximum_gpfn, uint64(addrOfDom(t, c, d))})
	require.NoError(t, err)
	assert.Equal(t, uint64(20), mg)

	gfns := []uint64{10, 11, 15, 12, 20}
	errs := make([]int32, len(gfns))
	mem, err := b.MapForeign(d, domctl.ProtReadWrite, gfns, errs)
	require.NoError(t, err)
	assert.Equal(t, []int32{0, 0, -int32(syscall.EINVAL), 0, 0}, errs)
	copy(mem[4*PageSize:], "hello")
	ro, err := b.MapForeign(d, domctl.ProtRead, []uint64{20}, make([]int32, 1))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(ro[:5]), "mappings alias the same frame")
	require.NoError(t, b.UnmapForeign(ro))
	require.ErrorIs(t, b.UnmapForeign(ro), syscall.EINVAL, "double unmap")

	// Page types.
	arr := c.buf(3 * 8)
	a := unsafe.Slice((*uint64)(unsafe.Pointer(&arr[0])), 3)
	copy(a, []uint64{10, 15, 20})
	_, err = c.domctl(abi.XEN_DOMCTL_getpageframeinfo3, d, func(dc *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlGetPageFrameInfo3](dc)
		p.Num, p.Array = 3, abi.BufferPointer(arr)
	})
	require.NoError(t, err)
	assert.Equal(t, []uint64{abi.XEN_DOMCTL_PFINFO_NOTAB, abi.XEN_DOMCTL_PFINFO_XTAB, abi.XEN_DOMCTL_PFINFO_NOTAB}, a)

	// Destroy while mapped: dying until the mapping goes.
	require.NoError(t, c.simple(abi.XEN_DOMCTL_destroydomain, d))
	info, err := c.info(d)
	require.NoError(t, err)
	assert.NotZero(t, info.Flags&abi.XEN_DOMINF_dying)
	require.NoError(t, b.UnmapForeign(mem))
	_, err = h.x.domainInfo(d)
	require.ErrorIs(t, err, syscall.ESRCH)
}

func addrOfDom(t *testing.T, c *hc, d domctl.DomID) uintptr {
	b := c.buf(2)
	binary.NativeEndian.PutUint16(b, uint16(d))
	return uintptr(unsafe.Pointer(&b[0]))
}

func TestBadBehaviours(t *testing.T) {
	h := newTestHost(t, nil)
	c := newHC(t, h)
	xs, err := h.Store(0)
	require.NoError(t, err)
	defer xs.Close()
	ask := func(t *testing.T, g *Guest) {
		require.NoError(t, xs.Write(testCtx(t), domPathOf(g.Domain())+"/control/shutdown", []byte("suspend")))
	}
	t.Run("NeverAcknowledge", func(t *testing.T) {
		ctx := testCtx(t)
		g, err := h.CreateGuest(ctx, GuestConfig{Behaviour: NeverAcknowledge})
		require.NoError(t, err)
		ask(t, g)
		require.NoError(t, g.WaitCounter(ctx, g.Counter()+20))
		v, err := xs.Read(ctx, domPathOf(g.Domain())+"/control/shutdown")
		require.NoError(t, err)
		assert.Equal(t, "suspend", string(v))
	})
	t.Run("AcknowledgeOnly", func(t *testing.T) {
		ctx := testCtx(t)
		g, err := h.CreateGuest(ctx, GuestConfig{Behaviour: AcknowledgeOnly})
		require.NoError(t, err)
		ask(t, g)
		for {
			v, err := xs.Read(ctx, domPathOf(g.Domain())+"/control/shutdown")
			require.NoError(t, err)
			if string(v) == "" {
				break
			}
			time.Sleep(time.Millisecond)
		}
		require.NoError(t, g.WaitCounter(ctx, g.Counter()+20))
		info, err := c.info(g.Domain())
		require.NoError(t, err)
		assert.Zero(t, info.Flags&abi.XEN_DOMINF_shutdown)
	})
	t.Run("CrashOnSuspend", func(t *testing.T) {
		ctx := testCtx(t)
		g, err := h.CreateGuest(ctx, GuestConfig{Behaviour: CrashOnSuspend})
		require.NoError(t, err)
		ask(t, g)
		info := waitInfo(t, h, g.Domain(), func(i domctl.DomainInfo) bool { return i.Shutdown() })
		assert.Equal(t, domctl.ShutdownCrash, info.ShutdownReason())
		assert.Equal(t, GuestCrashed, g.State())
	})
	t.Run("Disappear", func(t *testing.T) {
		ctx := testCtx(t)
		g, err := h.CreateGuest(ctx, GuestConfig{Behaviour: Disappear})
		require.NoError(t, err)
		ask(t, g)
		require.NoError(t, g.WaitState(ctx, GuestExited))
		_, err = h.x.domainInfo(g.Domain())
		assert.True(t, err == nil || errors.Is(err, syscall.ESRCH))
		assert.NotContains(t, h.Domains(), g.Domain())
	})
	t.Run("CorruptReturn", func(t *testing.T) {
		ctx := testCtx(t)
		g, err := h.CreateGuest(ctx, GuestConfig{Behaviour: CorruptReturn})
		require.NoError(t, err)
		requestSuspend(t, h, g.Domain())
		require.NoError(t, c.simple(abi.XEN_DOMCTL_resumedomain, g.Domain()))
		require.NoError(t, g.WaitCounter(ctx, CorruptCounter))
	})
}

func TestSuspendEventChannel(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	c := newHC(t, h)
	g, err := h.CreateGuest(ctx, GuestConfig{SuspendEventChannel: true})
	require.NoError(t, err)
	dom := g.Domain()
	xs, err := h.Store(0)
	require.NoError(t, err)
	defer xs.Close()
	v, err := xs.Read(ctx, domPathOf(dom)+"/device/suspend/event-channel")
	require.NoError(t, err)
	require.NotEmpty(t, v)
	var remote uint32
	for _, ch := range string(v) {
		remote = remote*10 + uint32(ch-'0')
	}

	dev, err := h.Backend().OpenEvtchn()
	require.NoError(t, err)
	defer dev.Close()
	var bind abi.IoctlEvtchnBindInterdomain
	bind.RemoteDomain, bind.RemotePort = uint32(dom), remote
	local, err := dev.Ioctl(abi.IOCTL_EVTCHN_BIND_INTERDOMAIN, abi.Bytes(&bind))
	require.NoError(t, err)
	// Binding raises the local port once (libxc's _exclusive consumes it).
	p := readPort(t, ctx, dev)
	assert.Equal(t, uint32(local), p)
	unmask(t, dev, p)
	_, err = c.domctl(abi.XEN_DOMCTL_subscribe, dom, func(dc *abi.Domctl) {
		abi.DomctlPayload[abi.DomctlSubscribe](dc).Port = remote
	})
	require.NoError(t, err)

	var virq abi.IoctlEvtchnBindVirq
	virq.Virq = abi.VIRQ_DOM_EXC
	vdev, err := h.Backend().OpenEvtchn()
	require.NoError(t, err)
	defer vdev.Close()
	_, err = vdev.Ioctl(abi.IOCTL_EVTCHN_BIND_VIRQ, abi.Bytes(&virq))
	require.NoError(t, err)

	var n abi.IoctlEvtchnNotify
	n.Port = uint32(local)
	_, err = dev.Ioctl(abi.IOCTL_EVTCHN_NOTIFY, abi.Bytes(&n))
	require.NoError(t, err)
	assert.Equal(t, uint32(local), readPort(t, ctx, dev), "suspended: notified on the suspend channel")
	waitInfo(t, h, dom, func(i domctl.DomainInfo) bool { return i.Suspended() })
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = vdev.Read(short, make([]byte, 4))
	require.ErrorIs(t, err, context.DeadlineExceeded, "a subscribed suspend suppresses VIRQ_DOM_EXC")
	require.NoError(t, c.simple(abi.XEN_DOMCTL_resumedomain, dom))
	require.NoError(t, g.WaitCounter(ctx, g.Counter()+2))
	_, err = dev.Ioctl(0x1234, nil)
	require.ErrorIs(t, err, syscall.ENOSYS)
}

func readPort(t *testing.T, ctx context.Context, dev domctl.EvtchnDevice) uint32 {
	t.Helper()
	b := make([]byte, 4)
	n, err := dev.Read(ctx, b)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	return binary.LittleEndian.Uint32(b)
}

func unmask(t *testing.T, dev domctl.EvtchnDevice, p uint32) {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, p)
	_, err := dev.Write(b)
	require.NoError(t, err)
}

// A read-only mapping of consecutive frames is a slice of the domain's
// read-only alias: it sees the guest's memory, faults on a write, can be
// made twice (same address) and unmapped twice, and keeps a destroyed
// domain's memory readable until it is unmapped.
func TestMapForeignReadOnlyAlias(t *testing.T) {
	h := newTestHost(t, nil)
	c := newHC(t, h)
	b := h.Backend()
	d, err := c.create(false, 1)
	require.NoError(t, err)
	_, err = c.populate(d, []uint64{0, 1, 2, 3, 4, 5})
	require.NoError(t, err)
	rw, err := b.MapForeign(d, domctl.ProtReadWrite, []uint64{2, 3, 4}, make([]int32, 3))
	require.NoError(t, err)
	copy(rw[PageSize:], "three")

	gfns := []uint64{2, 3, 4}
	r1, err := b.MapForeign(d, domctl.ProtRead, gfns, make([]int32, 3))
	require.NoError(t, err)
	r2, err := b.MapForeign(d, domctl.ProtRead, gfns, make([]int32, 3))
	require.NoError(t, err)
	require.Len(t, r1, 3*PageSize)
	assert.Equal(t, addrOf(r1), addrOf(r2), "both are the one alias")
	assert.Equal(t, "three", string(r1[PageSize:PageSize+5]))
	copy(rw[2*PageSize:], "four")
	assert.Equal(t, "four", string(r2[2*PageSize:2*PageSize+4]), "the alias sees later writes")
	assert.True(t, faults(func() { r1[0] = 1 }), "a read-only mapping is not writable")

	// Not consecutive: mapped page run by page run, as before.
	r3, err := b.MapForeign(d, domctl.ProtRead, []uint64{4, 3}, make([]int32, 2))
	require.NoError(t, err)
	assert.Equal(t, "four", string(r3[:4]))
	assert.Equal(t, "three", string(r3[PageSize:PageSize+5]))
	require.NoError(t, b.UnmapForeign(r3))

	require.NoError(t, b.UnmapForeign(rw))
	require.NoError(t, b.UnmapForeign(r1))
	require.NoError(t, c.simple(abi.XEN_DOMCTL_destroydomain, d))
	info, err := c.info(d)
	require.NoError(t, err)
	assert.NotZero(t, info.Flags&abi.XEN_DOMINF_dying, "a mapping keeps the domain dying, not gone")
	assert.Equal(t, "three", string(r2[PageSize:PageSize+5]), "memory readable until unmapped")
	require.NoError(t, b.UnmapForeign(r2))
	require.ErrorIs(t, b.UnmapForeign(r2), syscall.EINVAL, "unmapped twice already")
	_, err = h.x.domainInfo(d)
	require.ErrorIs(t, err, syscall.ESRCH)
}

// faults reports whether fn takes a memory fault.
func faults(fn func()) (faulted bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			_, faulted = r.(interface{ Addr() uintptr })
		}
	}()
	fn()
	return false
}
