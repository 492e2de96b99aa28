package checkpoint

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// pvFixture is a restorer for a 64-bit PV guest of 16 pfns whose frames
// are already populated at mfn = 0x1000 + pfn*7 (no hypervisor needed).
func pvFixture(t *testing.T) *restorer {
	t.Helper()
	rs := &restorer{width: 8, pv: newPVRestore()}
	rs.pv.info(stream.X86PVInfo{GuestWidth: 8, PTLevels: 4})
	require.NoError(t, rs.pv.frames(stream.P2MFrames{StartPFN: 0, EndPFN: 15, Frames: []uint64{9}}, 8))
	for pfn := range rs.pv.p2m {
		rs.pv.p2m[pfn] = 0x1000 + uint64(pfn)*7
		rs.pv.types[pfn] = stream.PageNoTab
	}
	return rs
}

func TestLocalisePageTable(t *testing.T) {
	rs := pvFixture(t)
	page := make([]byte, pageSize)
	put := func(i int, v uint64) { binary.LittleEndian.PutUint64(page[i*8:], v) }
	get := func(i int) uint64 { return binary.LittleEndian.Uint64(page[i*8:]) }
	put(0, 3<<12|0x67)             // present, pfn 3
	put(1, 5<<12|0x66)             // not present: untouched
	put(2, 1<<63|4<<12|0x63)       // NX kept
	put(260, 0xfff<<12|1)          // a Xen slot of the L4: cleared
	put(511, 15<<12|0x7|0x1ff<<52) // high software bits kept
	require.NoError(t, rs.localise(context.Background(), page, 4, 2))
	assert.EqualValues(t, (0x1000+3*7)<<12|0x67, get(0))
	assert.EqualValues(t, 5<<12|0x66, get(1))
	assert.Equal(t, uint64(1<<63|(0x1000+4*7)<<12|0x63), get(2))
	assert.EqualValues(t, 0, get(260))
	assert.EqualValues(t, (0x1000+15*7)<<12|0x7|0x1ff<<52, get(511))

	// A superpage is refused.
	clear(page)
	put(7, 3<<12|1|0x80)
	err := rs.localise(context.Background(), page, 2, 6)
	var pe *PVImageError
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, stream.ErrBadValue)
	assert.Equal(t, "L2[7]", pe.What)
	assert.EqualValues(t, 6, pe.PFN)

	// An entry past the guest's last pfn.
	clear(page)
	put(0, 16<<12|1)
	err = rs.localise(context.Background(), page, 1, 6)
	assert.ErrorIs(t, err, stream.ErrBadPFN)
}

func TestPVGrowBound(t *testing.T) {
	rs := pvFixture(t)
	assert.NoError(t, rs.pv.grow(15))
	assert.ErrorIs(t, rs.pv.grow(16), stream.ErrBadPFN, "PAGE_DATA beyond X86_PV_P2M_FRAMES' end")

	open := newPVRestore() // no P2M_FRAMES: grows up to the safety bound
	assert.NoError(t, open.grow(100))
	assert.Len(t, open.p2m, 101)
	assert.Equal(t, invalidFrame, open.p2m[50])
	assert.ErrorIs(t, open.grow(pvMaxGrowPFN+1), stream.ErrBadPFN)
}

func TestPVVCPUFrames(t *testing.T) {
	rs := pvFixture(t)
	rs.pv.types[8] = stream.PageL4TabPin
	rs.pv.types[10] = stream.PageL4Tab
	rs.pv.tables = true
	newVC := func() *domctl.VCPUContext {
		vc, err := domctl.NewVCPUContext(8, make([]byte, 5168))
		require.NoError(t, err)
		vc.SetCtrlReg(3, 8<<12)
		vc.SetCtrlReg(1, 10<<12|1)
		binary.LittleEndian.PutUint64(vc.Raw[vc64GDTEnts:], 513) // gdt_ents: two frames
		vc.SetGDTFrame(0, 4)
		vc.SetGDTFrame(1, 5)
		return vc
	}
	vc := newVC()
	require.NoError(t, rs.pvVCPUFrames(0, vc))
	assert.EqualValues(t, (0x1000+8*7)<<12, vc.CtrlReg(3))
	assert.EqualValues(t, (0x1000+10*7)<<12|1, vc.CtrlReg(1))
	assert.EqualValues(t, 0x1000+4*7, vc.GDTFrame(0))
	assert.EqualValues(t, 0x1000+5*7, vc.GDTFrame(1))
	assert.NotZero(t, vc.Flags()&abi.VGCF_online)

	// cr3 naming a page that is not a top-level table.
	vc = newVC()
	vc.SetCtrlReg(3, 3<<12)
	err := rs.pvVCPUFrames(1, vc)
	assert.ErrorIs(t, err, stream.ErrBadPageType)
	assert.ErrorContains(t, err, "vCPU 1 cr3")

	// A GDT frame that was never populated.
	vc = newVC()
	rs.pv.p2m[5] = invalidFrame
	assert.ErrorIs(t, rs.pvVCPUFrames(0, vc), stream.ErrMissing)

	vc = newVC()
	binary.LittleEndian.PutUint64(vc.Raw[vc64GDTEnts:], 14*512+1)
	assert.ErrorIs(t, rs.pvVCPUFrames(0, vc), stream.ErrBadValue)
}

func TestCR3Forms(t *testing.T) {
	assert.EqualValues(t, 0x12345, cr3ToPFN(0x12345000, 8))
	assert.EqualValues(t, 0x12345000, pfnToCR3(0x12345, 8))
	// 32-bit PAE: pfn bits 20 and up live in cr3's low 12 bits.
	pfn := uint64(0x123456)
	cr3 := pfnToCR3(pfn, 4)
	assert.EqualValues(t, 0x23456001, cr3)
	assert.Equal(t, pfn, cr3ToPFN(cr3, 4))
}

func TestFixSharedInfo(t *testing.T) {
	for _, width := range []int{8, 4} {
		l := sharedInfo64
		if width == 4 {
			l = sharedInfo32
		}
		old := make([]byte, pageSize)
		for i := range old {
			old[i] = byte(i%251 + 1)
		}
		dst := make([]byte, pageSize)
		fixSharedInfo(dst, old, width)
		// vcpu_info copied, pending selectors cleared.
		assert.Equal(t, old[l.vcpuInfo:l.vcpuInfo+l.pendingSel], dst[l.vcpuInfo:l.vcpuInfo+l.pendingSel])
		assert.Equal(t, make([]byte, l.word), dst[l.vcpuInfo+l.pendingSel:l.vcpuInfo+l.pendingSel+l.word])
		last := l.vcpuInfo + 31*l.vcpuInfoSize
		assert.Equal(t, make([]byte, l.word), dst[last+l.pendingSel:last+l.pendingSel+l.word])
		// No event pending, all masked.
		assert.Equal(t, make([]byte, l.bitmapSize), dst[l.pending:l.pending+l.bitmapSize])
		for _, b := range dst[l.mask : l.mask+l.bitmapSize] {
			require.EqualValues(t, 0xff, b)
		}
		// arch copied (max_pfn and all), frame-list-list cleared.
		assert.Equal(t, old[l.arch:l.frameListList], dst[l.arch:l.frameListList])
		assert.Equal(t, make([]byte, l.word), dst[l.frameListList:l.frameListList+l.word])
		assert.Equal(t, old[l.frameListList+l.word:l.arch+l.archSize], dst[l.frameListList+l.word:l.arch+l.archSize])
		// wallclock is left to Xen.
		assert.Equal(t, make([]byte, l.arch-(l.mask+l.bitmapSize)), dst[l.mask+l.bitmapSize:l.arch])
	}
	assert.Equal(t, 3088, sharedInfo64.arch)
	assert.Equal(t, 2048, sharedInfo64.pending)
}
