package xensim

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// migrate copies a suspended guest from (src, dom) into a new domain on
// dst the way a toolstack restore does, leaving rax in vCPU0 (or the HVM
// CPU record) and unpausing it. It returns the new domain.
func migrate(t *testing.T, src, dst *Host, dom domctl.DomID, kind Kind, rax uint64) domctl.DomID {
	t.Helper()
	cs, cd := newHC(t, src), newHC(t, dst)
	info, err := cs.info(dom)
	require.NoError(t, err)
	require.NotZero(t, info.Flags&abi.XEN_DOMINF_shutdown)
	maxGPFN, err := src.Backend().Hypercall(abi.HYPERVISOR_memory_op, [5]uint64{abi.XENMEM_maximum_gpfn, uint64(addrOfDom(t, cs, dom))})
	require.NoError(t, err)
	gfns := make([]uint64, maxGPFN+1)
	for i := range gfns {
		gfns[i] = uint64(i)
	}
	errs := make([]int32, len(gfns))
	srcMem, err := src.Backend().MapForeign(dom, domctl.ProtRead, gfns, errs)
	require.NoError(t, err)
	defer src.Backend().UnmapForeign(srcMem)

	nd, err := cd.create(kind == PVH, 1)
	require.NoError(t, err)
	if kind == PV32 {
		_, err = cd.domctl(abi.XEN_DOMCTL_set_address_size, nd, func(dc *abi.Domctl) {
			abi.DomctlPayload[abi.DomctlAddressSize](dc).Size = 32
		})
		require.NoError(t, err)
	}
	_, err = cd.domctl(abi.XEN_DOMCTL_max_mem, nd, func(dc *abi.Domctl) {
		abi.DomctlPayload[abi.DomctlMaxMem](dc).MaxMemKB = info.MaxPages * 4
	})
	require.NoError(t, err)
	n, err := cd.populate(nd, gfns)
	require.NoError(t, err)
	require.Equal(t, uint64(len(gfns)), n)
	dstMem, err := dst.Backend().MapForeign(nd, domctl.ProtReadWrite, gfns, errs)
	require.NoError(t, err)
	copy(dstMem, srcMem)
	require.NoError(t, dst.Backend().UnmapForeign(dstMem))

	if kind == PVH {
		blob, err := cs.hvmContext(dom)
		require.NoError(t, err)
		binary.LittleEndian.PutUint64(hvmCPURecord(blob, 0)[hvmCPURaxOff:], rax)
		require.NoError(t, cd.setHVMContext(nd, blob))
	} else {
		size, off := ctxSize64, ctx64RaxOff
		if kind == PV32 {
			size, off = ctxSize32, ctx32EaxOff
		}
		raw, err := cs.vcpuCtx(dom, 0, size)
		require.NoError(t, err)
		if kind == PV32 {
			binary.LittleEndian.PutUint32(raw[off:], uint32(rax))
		} else {
			binary.LittleEndian.PutUint64(raw[off:], rax)
		}
		require.NoError(t, cd.setVCPUCtx(nd, 0, raw))
	}
	require.NoError(t, dst.PrepareDomain(testCtx(t), nd, "restored"))
	require.NoError(t, cd.simple(abi.XEN_DOMCTL_unpausedomain, nd))
	return nd
}

func TestRestoreIntoNewDomainRunsSameGuest(t *testing.T) {
	cases := []struct {
		name   string
		kind   Kind
		conv   Convention
		rax    uint64
		broken bool
	}{
		{"seed-pv64", PV64, ConventionSeed, 1, false},
		{"linux-pv32", PV32, ConventionLinux, 0, false},
		{"linux-pvh", PVH, ConventionLinux, 0, false},
		{"legacy-pv64", PV64, ConventionLegacy, 0, false},
		// A cancel value handed to a restored guest breaks it.
		{"seed-given-cancel", PV64, ConventionSeed, 0, true},
	}
	// migrate copies memory frame by frame, as a toolstack that does not
	// translate PV frames would: identity frames make that valid.
	src := newTestHost(t, &Config{PVFrames: PVFramesIdentity})
	dst := newTestHost(t, &Config{PVFrames: PVFramesIdentity})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			g, err := src.CreateGuest(ctx, GuestConfig{Kind: tc.kind, Convention: tc.conv, Pages: 64, DirtyRate: 2000})
			require.NoError(t, err)
			require.NoError(t, g.WaitCounter(ctx, 5))
			requestSuspend(t, src, g.Domain())
			at, id := g.Counter(), g.ID()
			nd := migrate(t, src, dst, g.Domain(), tc.kind, tc.rax)
			require.NoError(t, newHC(t, src).simple(abi.XEN_DOMCTL_destroydomain, g.Domain()))
			ng := dst.Guest(nd)
			require.NoError(t, ng.WaitCounter(ctx, at+3))
			assert.Equal(t, uint64(0), g.ID(), "source gone")
			assert.Equal(t, id, ng.ID(), "same kernel")
			assert.Equal(t, int64(tc.rax), ng.LastSuspendReturn())
			if tc.broken {
				assert.Equal(t, GuestBroken, ng.State())
				assert.Equal(t, uint64(0), ng.Reconnects())
				return
			}
			assert.Equal(t, GuestRunning, ng.State())
			assert.Equal(t, uint64(1), ng.Reconnects())
			require.NoError(t, ng.WaitConnected(ctx))
			// And it can be suspended again on the new host.
			requestSuspend(t, dst, nd)
			assert.Equal(t, uint64(2), ng.Suspends())
		})
	}
}
