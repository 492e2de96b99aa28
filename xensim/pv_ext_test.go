package xensim

import (
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// msrBlob is an xen_domctl_vcpu_msr array.
func msrBlob(kv ...uint64) []byte {
	var b []byte
	for i := 0; i < len(kv); i += 2 {
		b = binary.LittleEndian.AppendUint32(b, uint32(kv[i]))
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint64(b, kv[i+1])
	}
	return b
}

// avxXSave is an X86_PV_VCPU_XSAVE blob with AVX in use and a marker in
// the area.
func avxXSave(mark byte) []byte {
	b := make([]byte, pvXSaveHdrSize+xstateSize(simXFeatureMask))
	binary.LittleEndian.PutUint64(b[0:], simXFeatureMask)
	binary.LittleEndian.PutUint64(b[8:], simXFeatureMask)
	binary.LittleEndian.PutUint64(b[pvXSaveHdrSize+xsaveLegacy:], simXFeatureMask) // xstate_bv
	b[pvXSaveHdrSize+160] = mark                                                   // XMM0
	b[len(b)-1] = mark                                                             // YMM15 high
	return b
}

func TestPVExtendedVCPUStateRoundTrips(t *testing.T) {
	for _, k := range []Kind{PV64, PV32} {
		t.Run(k.String(), func(t *testing.T) {
			h := newTestHost(t, nil)
			c := newConn(t, h)
			ctx := testCtx(t)
			g, err := h.CreateGuest(ctx, GuestConfig{Kind: k, VCPUs: 2})
			require.NoError(t, err)
			dom := g.Domain()

			// A fresh vCPU: Xen's defaults.
			ext, err := c.ExtVCPUContext(ctx, dom, 1)
			require.NoError(t, err)
			require.Len(t, ext, 64, "sizeof(xen_domctl_ext_vcpucontext)")
			assert.EqualValues(t, 1, binary.LittleEndian.Uint32(ext[0:]), "vcpu")
			assert.EqualValues(t, 64, binary.LittleEndian.Uint32(ext[4:]), "size")
			assert.EqualValues(t, simGuestMCGCap, binary.LittleEndian.Uint64(ext[32:]), "vMCE caps")
			xs, err := c.VCPUExtState(ctx, dom, 1)
			require.NoError(t, err)
			require.Len(t, xs, pvXSaveHdrSize+xsaveMinSize, "PV_XSAVE_SIZE(x87|SSE)")
			assert.EqualValues(t, 3, binary.LittleEndian.Uint64(xs[8:]), "xcr0_accum")
			m, err := c.VCPUMSRs(ctx, dom, 1)
			require.NoError(t, err)
			assert.Nil(t, m, "no non-zero MSRs")

			// Set, then read back.
			ext[8], ext[16], ext[24], ext[28], ext[40] = 0x11, 0x22, 0x33, 1, 0x44
			require.NoError(t, c.SetExtVCPUContext(ctx, dom, ext))
			got, err := c.ExtVCPUContext(ctx, dom, 1)
			require.NoError(t, err)
			assert.Equal(t, ext, got)
			other, err := c.ExtVCPUContext(ctx, dom, 0)
			require.NoError(t, err)
			assert.Zero(t, other[8], "per vCPU")

			want := avxXSave(0x5a)
			require.NoError(t, c.SetVCPUExtState(ctx, dom, 1, want))
			xs, err = c.VCPUExtState(ctx, dom, 1)
			require.NoError(t, err)
			assert.Equal(t, want, xs)

			msrs := msrBlob(msrSpecCtrl, 1, msrTSCAux, 7)
			require.NoError(t, c.SetVCPUMSRs(ctx, dom, 1, msrs))
			m, err = c.VCPUMSRs(ctx, dom, 1)
			require.NoError(t, err)
			assert.Equal(t, msrs, m)
		})
	}
}

func TestPVExtendedVCPUStateRefusals(t *testing.T) {
	h := newTestHost(t, nil)
	c := newConn(t, h)
	ctx := testCtx(t)
	g, err := h.CreateGuest(ctx, GuestConfig{Kind: PV64})
	require.NoError(t, err)
	dom := g.Domain()

	ext, err := c.ExtVCPUContext(ctx, dom, 0)
	require.NoError(t, err)
	_, err = c.ExtVCPUContext(ctx, dom, 5)
	assert.ErrorIs(t, err, syscall.ESRCH, "no such vCPU")
	bad := append([]byte(nil), ext...)
	binary.LittleEndian.PutUint32(bad[4:], 16)
	assert.ErrorIs(t, c.SetExtVCPUContext(ctx, dom, bad), syscall.EINVAL, "size below offsetof(vmce)")
	bad = append([]byte(nil), ext...)
	binary.LittleEndian.PutUint64(bad[8:], 0x0000800000000000)
	assert.ErrorIs(t, c.SetExtVCPUContext(ctx, dom, bad), syscall.EINVAL, "non-canonical callback")

	xs := avxXSave(1)
	binary.LittleEndian.PutUint64(xs[8:], 1<<9) // PKRU: not on this host
	assert.ErrorIs(t, c.SetVCPUExtState(ctx, dom, 0, xs), syscall.EOPNOTSUPP)
	xs = avxXSave(1)
	binary.LittleEndian.PutUint64(xs[0:], 0x5) // AVX without SSE
	assert.ErrorIs(t, c.SetVCPUExtState(ctx, dom, 0, xs), syscall.EINVAL)
	xs = avxXSave(1)
	binary.LittleEndian.PutUint64(xs[8:], 3) // area too big for x87|SSE
	binary.LittleEndian.PutUint64(xs[0:], 3)
	binary.LittleEndian.PutUint64(xs[pvXSaveHdrSize+xsaveLegacy:], 3)
	assert.ErrorIs(t, c.SetVCPUExtState(ctx, dom, 0, xs), syscall.EINVAL)
	xs = avxXSave(1)
	binary.LittleEndian.PutUint64(xs[pvXSaveHdrSize+xsaveLegacy+8:], 1<<63)
	assert.ErrorIs(t, c.SetVCPUExtState(ctx, dom, 0, xs), syscall.EOPNOTSUPP, "compressed area")
	require.NoError(t, c.SetVCPUExtState(ctx, dom, 0, make([]byte, pvXSaveHdrSize)), "header only: nothing to restore")

	assert.ErrorIs(t, c.SetVCPUMSRs(ctx, dom, 0, msrBlob(msrAMD64DR0AddressMask, 1)), syscall.EINVAL, "no DBEXT")
	assert.ErrorIs(t, c.SetVCPUMSRs(ctx, dom, 0, msrBlob(0x10, 1)), syscall.EINVAL, "not an MSR Xen sends")
	assert.ErrorIs(t, c.SetVCPUMSRs(ctx, dom, 0, msrBlob(msrTSCAux, 1<<32)), syscall.EINVAL, "TSC_AUX is 32-bit")
	many := msrBlob(msrTSCAux, 1, msrTSCAux, 1, msrTSCAux, 1, msrTSCAux, 1, msrTSCAux, 1, msrTSCAux, 1, msrTSCAux, 1, msrTSCAux, 1)
	assert.ErrorIs(t, c.SetVCPUMSRs(ctx, dom, 0, many), syscall.EINVAL, "more than Xen sends")

	// ENOBUFS: room for fewer than the vCPU's non-zero MSRs.
	require.NoError(t, c.SetVCPUMSRs(ctx, dom, 0, msrBlob(msrSpecCtrl, 1, msrMiscFeaturesEnables, 1, msrTSCAux, 9)))
	hc := newHC(t, h)
	buf := hc.buf(16)
	dc, err := hc.domctl(abi.XEN_DOMCTL_get_vcpu_msrs, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlVCPUMSRs](d)
		p.MSRCount, p.Msrs = 1, abi.BufferPointer(buf)
	})
	assert.ErrorIs(t, err, syscall.ENOBUFS)
	assert.EqualValues(t, 3, abi.DomctlPayload[abi.DomctlVCPUMSRs](dc).MSRCount, "how many there are")
	assert.Equal(t, msrBlob(msrSpecCtrl, 1), buf, "the first, in Xen's order")

	// An interrupted set reports how many it applied.
	dc, err = hc.domctl(abi.XEN_DOMCTL_set_vcpu_msrs, dom, func(d *abi.Domctl) {
		b := hc.buf(32)
		copy(b, msrBlob(msrTSCAux, 2, 0x10, 1))
		p := abi.DomctlPayload[abi.DomctlVCPUMSRs](d)
		p.MSRCount, p.Msrs = 2, abi.BufferPointer(b)
	})
	assert.ErrorIs(t, err, syscall.EINVAL)
	assert.EqualValues(t, 1, abi.DomctlPayload[abi.DomctlVCPUMSRs](dc).MSRCount)
}

func TestHVMExtendedVCPUState(t *testing.T) {
	h := newTestHost(t, nil)
	c := newConn(t, h)
	ctx := testCtx(t)
	g, err := h.CreateGuest(ctx, GuestConfig{Kind: PVH})
	require.NoError(t, err)
	dom := g.Domain()
	ext, err := c.ExtVCPUContext(ctx, dom, 0)
	require.NoError(t, err, "Xen answers HVM vCPUs too (callbacks zero)")
	require.NoError(t, c.SetExtVCPUContext(ctx, dom, ext))
	ext[8] = 1
	assert.ErrorIs(t, c.SetExtVCPUContext(ctx, dom, ext), syscall.EINVAL, "no SYSCALL32 callback for HVM")
	_, err = c.VCPUMSRs(ctx, dom, 0)
	assert.ErrorIs(t, err, syscall.EINVAL, "get_vcpu_msrs is PV only")
	assert.ErrorIs(t, c.SetVCPUMSRs(ctx, dom, 0, msrBlob(msrTSCAux, 1)), syscall.EINVAL)
	_, err = c.VCPUExtState(ctx, dom, 0)
	assert.NoError(t, err)
}
