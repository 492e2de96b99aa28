package checkpoint

import (
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// testPV is a 64-bit (or PAE) guest of 8 pfns whose pfn p has MFN
// 0x1000 + 7*p.
func testPV(width int) *pvMemory {
	p := &pvMemory{width: width, levels: 4, m2p: map[uint64]uint64{}}
	if width == 4 {
		p.levels = 3
	}
	for pfn := range uint64(8) {
		p.p2m = append(p.p2m, 0x1000+7*pfn)
		p.m2p[0x1000+7*pfn] = pfn
	}
	return p
}

func putPTE(page []byte, i int, v uint64) { binary.LittleEndian.PutUint64(page[i*8:], v) }
func pteAt(page []byte, i int) uint64     { return binary.LittleEndian.Uint64(page[i*8:]) }

// TestNormalisePageTable: MFNs become pfns with the flags (NX included)
// kept, Xen's slots are cleared by level and width, a superpage is
// refused, and an unknown MFN asks for a retry.
func TestNormalisePageTable(t *testing.T) {
	p := testPV(8)
	src, dst := make([]byte, pageSize), make([]byte, pageSize)
	putPTE(src, 0, 1<<63|(0x1000+7*3)<<12|0x63)
	putPTE(src, 5, (0x1000+7*5)<<12) // not present: copied as is
	putPTE(src, 256, 0x99999<<12|0x63)
	putPTE(src, 272, 0x99998<<12|0x63)
	putPTE(src, 273, (0x1000+7*1)<<12|0x67)
	require.NoError(t, p.normalise(dst, src, 4))
	assert.Equal(t, uint64(1<<63|3<<12|0x63), pteAt(dst, 0))
	assert.Equal(t, uint64((0x1000+7*5)<<12), pteAt(dst, 5))
	assert.Zero(t, pteAt(dst, 256))
	assert.Zero(t, pteAt(dst, 272))
	assert.Equal(t, uint64(1<<12|0x67), pteAt(dst, 273))

	// The same Xen-looking entries in an L3 of a 64-bit guest are the
	// guest's: an unknown MFN there needs a retry.
	err := p.normalise(dst, src, 3)
	assert.ErrorIs(t, err, errRetryPage)

	putPTE(src, 256, 0)
	putPTE(src, 272, 0)
	putPTE(src, 9, (0x1000+7*2)<<12|0x80|1)
	assert.ErrorIs(t, p.normalise(dst, src, 2), ErrUnsupportedGuest, "superpage")
	assert.NoError(t, p.normalise(dst, src, 1), "PSE in an L1 is PAT, not a superpage")

	pae := testPV(4)
	l3 := make([]byte, pageSize)
	putPTE(l3, 0, (0x1000+7*4)<<12|1)
	putPTE(l3, 4, 0x77777<<12|1)
	require.NoError(t, pae.normalise(dst, l3, 3))
	assert.Equal(t, uint64(4<<12|1), pteAt(dst, 0))
	assert.Zero(t, pteAt(dst, 4), "a PAE L3 has 4 entries; the rest is Xen's")
	assert.ErrorIs(t, pae.normalise(dst, l3, 4), ErrBadFrame, "no L4 in a 32-bit guest")
	l2 := make([]byte, pageSize)
	putPTE(l2, xenPAEL2First, 0x77777<<12|1)
	putPTE(l2, xenPAEL2Last, 0x77778<<12|1)
	require.NoError(t, pae.normalise(dst, l2, 2), "the compat M2P range of a PAE L2 is Xen's")
	assert.Zero(t, pteAt(dst, xenPAEL2First))
	assert.Zero(t, pteAt(dst, xenPAEL2Last))
}

// TestNormalisePVBatch: in a batch, a page table naming a foreign frame is
// sent as XTAB and queued for the final round while the guest runs, and is
// ErrBadFrame once it is suspended; data pages pass through.
func TestNormalisePVBatch(t *testing.T) {
	m := &memCopier{pv: testPV(8), gfns: []uint64{2, 3, 4}}
	mem := make([]byte, 3*pageSize)
	mem[0] = 0xAA                                   // pfn 2: data
	putPTE(mem[pageSize:], 0, 0x55555<<12|1)        // pfn 3: L1 naming a foreign frame
	putPTE(mem[2*pageSize:], 0, (0x1000+7*6)<<12|1) // pfn 4: good L1
	nib := []uint8{0, 1, 1}
	out, err := m.normalisePV(nib, pageList(mem))
	require.NoError(t, err)
	assert.Equal(t, []uint8{0, pfinfoXTAB, 1}, nib)
	assert.Equal(t, []uint64{3}, m.retry)
	require.Len(t, out, 2)
	assert.Same(t, &mem[0], &out[0][0], "a data page is sent from the mapping, not copied")
	assert.Equal(t, byte(0xAA), out[0][0])
	require.Len(t, out[1], pageSize)
	assert.Equal(t, uint64(6<<12|1), pteAt(out[1], 0))
	assert.Equal(t, uint64((0x1000+7*6)<<12|1), pteAt(mem[2*pageSize:], 0), "the mapped pages are not written")
	bitmap := make([]uint64, 1)
	m.addRetries(bitmap)
	assert.Equal(t, []uint64{1 << 3}, bitmap)
	assert.Empty(t, m.retry)

	m.final = true
	_, err = m.normalisePV([]uint8{0, 1, 1}, pageList(mem))
	assert.ErrorIs(t, err, ErrBadFrame)
	assert.True(t, errors.Is(err, errRetryPage))
}

// pageList splits mem into its pages.
func pageList(mem []byte) [][]byte {
	var pages [][]byte
	for off := 0; off < len(mem); off += pageSize {
		pages = append(pages, mem[off:off+pageSize])
	}
	return pages
}

// TestNormaliseVCPU: vCPU0's edx, cr3 and the GDT frames become pfns
// (64-bit cr1 too, with its valid bit); vCPUs never started are left
// alone; a frame outside the p2m is ErrBadFrame.
func TestNormaliseVCPU(t *testing.T) {
	p := testPV(8)
	ctx := make([]byte, 5168)
	vc, err := domctl.NewVCPUContext(8, ctx)
	require.NoError(t, err)
	vc.SetRDX(0x1000 + 7*1)
	binary.LittleEndian.PutUint64(ctx[vc64GDTEnts:], 600) // two frames
	vc.SetGDTFrame(0, 0x1000+7*6)
	vc.SetGDTFrame(1, 0x1000+7*7)
	vc.SetCtrlReg(3, (0x1000+7*5)<<12)
	vc.SetCtrlReg(1, (0x1000+7*4)<<12|1)
	require.NoError(t, p.normaliseVCPU(0, ctx))
	assert.EqualValues(t, 1, vc.RDX())
	assert.EqualValues(t, 6, vc.GDTFrame(0))
	assert.EqualValues(t, 7, vc.GDTFrame(1))
	assert.EqualValues(t, 5<<12, vc.CtrlReg(3))
	assert.EqualValues(t, 4<<12|1, vc.CtrlReg(1))

	assert.NoError(t, p.normaliseVCPU(1, make([]byte, 5168)), "a vCPU never started")
	assert.ErrorIs(t, p.normaliseVCPU(0, make([]byte, 5168)), ErrBadFrame, "vCPU0 must name its start_info")
	assert.ErrorIs(t, p.normaliseVCPU(1, make([]byte, 2800)), ErrBadFrame, "a context of the wrong width")

	pae := testPV(4)
	c32 := make([]byte, 2800)
	vc, err = domctl.NewVCPUContext(4, c32)
	require.NoError(t, err)
	vc.SetRDX(0x1000 + 7*1)
	vc.SetCtrlReg(3, pfnToCR3(0x1000+7*2, 4))
	require.NoError(t, pae.normaliseVCPU(0, c32))
	assert.EqualValues(t, 1, vc.RDX())
	assert.EqualValues(t, pfnToCR3(2, 4), vc.CtrlReg(3))
}

// vc64GDTEnts is gdt_ents' offset in a 64-bit vCPU context (domctl has
// no setter for it).
var vc64GDTEnts = int(unsafe.Offsetof(abi.VCPUGuestContextX86_64{}.GDTEnts))
