package magic_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/magic"
)

func sample() magic.StartInfo {
	return magic.StartInfo{
		Magic: "xen-3.0-x86_64 sc", NrPages: 0x40000, SharedInfo: 0x12345000,
		Flags: magic.SIFModStartPFN, StoreMFN: 0x1f00, StoreEvtchn: 1, ConsoleMFN: 0x1f01,
		ConsoleEvtchn: 2, PTBase: 0xffffffff82000000, NrPTFrames: 7, MFNList: 0xffffffff81000000,
		ModStart: 0x2000, ModLen: 0x100000, CmdLine: "console=hvc0 root=/dev/xvda1",
		FirstP2MPFN: 0x3000, NrP2MFrames: 0x80,
	}
}

// TestDecodeStartInfoGolden checks offsets independently of the generated
// layout: the expected positions are XEN-NOTES §1.6 (gcc output).
func TestDecodeStartInfoGolden(t *testing.T) {
	b := make([]byte, 4096)
	copy(b, "xen-3.0-x86_64")
	le := binary.LittleEndian
	le.PutUint64(b[32:], 100)    // nr_pages
	le.PutUint64(b[40:], 0x5000) // shared_info
	le.PutUint32(b[48:], 3)      // flags
	le.PutUint64(b[56:], 0xaa)   // store_mfn
	le.PutUint32(b[64:], 5)      // store_evtchn
	le.PutUint64(b[72:], 0xbb)   // console mfn
	le.PutUint32(b[80:], 6)      // console evtchn
	le.PutUint64(b[88:], 7)
	le.PutUint64(b[96:], 8)
	le.PutUint64(b[104:], 9)
	le.PutUint64(b[112:], 10)
	le.PutUint64(b[120:], 11)
	copy(b[128:], "quiet")
	le.PutUint64(b[1152:], 12)
	le.PutUint64(b[1160:], 13)
	si, err := magic.DecodeStartInfo(b, 8)
	require.NoError(t, err)
	assert.Equal(t, magic.StartInfo{Magic: "xen-3.0-x86_64", NrPages: 100, SharedInfo: 0x5000, Flags: 3,
		StoreMFN: 0xaa, StoreEvtchn: 5, ConsoleMFN: 0xbb, ConsoleEvtchn: 6, PTBase: 7, NrPTFrames: 8,
		MFNList: 9, ModStart: 10, ModLen: 11, CmdLine: "quiet", FirstP2MPFN: 12, NrP2MFrames: 13}, si)

	b = make([]byte, 1112)
	copy(b, "xen-3.0-x86_32p sc")
	for i, off := range []int{32, 36, 40, 44, 48, 52, 56, 60, 64, 68, 72, 76} {
		le.PutUint32(b[off:], uint32(i+1))
	}
	copy(b[80:], "ro")
	le.PutUint32(b[1104:], 13)
	le.PutUint32(b[1108:], 14)
	si, err = magic.DecodeStartInfo(b, 4)
	require.NoError(t, err)
	assert.Equal(t, magic.StartInfo{Magic: "xen-3.0-x86_32p sc", NrPages: 1, SharedInfo: 2, Flags: 3,
		StoreMFN: 4, StoreEvtchn: 5, ConsoleMFN: 6, ConsoleEvtchn: 7, PTBase: 8, NrPTFrames: 9,
		MFNList: 10, ModStart: 11, ModLen: 12, CmdLine: "ro", FirstP2MPFN: 13, NrP2MFrames: 14}, si)
	m, err := si.ParseMagic()
	require.NoError(t, err)
	assert.True(t, m.SuspendCancel)
}

func TestStartInfoRoundTrip(t *testing.T) {
	for _, width := range []int{8, 4} {
		s := sample()
		if width == 4 {
			s.PTBase, s.MFNList = 0xc0000000, 0xc1000000
		}
		b, err := s.Encode(width)
		require.NoError(t, err)
		size, err := magic.StartInfoSize(width)
		require.NoError(t, err)
		assert.Len(t, b, size)
		got, err := magic.DecodeStartInfo(b, width)
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	n, _ := magic.StartInfoSize(8)
	assert.Equal(t, 1168, n)
	n, _ = magic.StartInfoSize(4)
	assert.Equal(t, 1112, n)
}

func TestEncodeToLeavesTail(t *testing.T) {
	page := make([]byte, 4096)
	for i := range page {
		page[i] = 0xee
	}
	require.NoError(t, sample().EncodeTo(page, 8))
	assert.Equal(t, byte(0xee), page[magic.StartInfoSize64])
	assert.Equal(t, byte(0), page[len("xen-3.0-x86_64 sc")]) // magic NUL-padded
}

func TestStartInfoErrors(t *testing.T) {
	_, err := magic.DecodeStartInfo(make([]byte, 1167), 8)
	assert.ErrorIs(t, err, magic.ErrShortBuffer)
	_, err = magic.DecodeStartInfo(make([]byte, 1111), 4)
	assert.ErrorIs(t, err, magic.ErrShortBuffer)
	_, err = magic.DecodeStartInfo(make([]byte, 4096), 64)
	assert.ErrorIs(t, err, magic.ErrBadWidth)
	_, err = magic.StartInfoSize(2)
	assert.ErrorIs(t, err, magic.ErrBadWidth)

	s := sample()
	_, err = s.Encode(4) // PTBase needs 64 bits
	assert.ErrorIs(t, err, magic.ErrFieldOverflow)
	_, err = s.Encode(0)
	assert.ErrorIs(t, err, magic.ErrBadWidth)
	s = sample()
	s.Magic = "xen-3.0-x86_64 sc abcdefghijklmn"
	_, err = s.Encode(8)
	assert.ErrorIs(t, err, magic.ErrFieldOverflow)
	s = sample()
	s.CmdLine = string(make([]byte, magic.MaxCmdLine))
	_, err = s.Encode(8)
	assert.ErrorIs(t, err, magic.ErrFieldOverflow)
	assert.ErrorIs(t, sample().EncodeTo(make([]byte, 100), 8), magic.ErrShortBuffer)
}

func FuzzDecodeStartInfo(f *testing.F) {
	b, _ := sample().Encode(8)
	f.Add(b, 8)
	s := sample()
	s.PTBase, s.MFNList = 1, 2
	b, _ = s.Encode(4)
	f.Add(b, 4)
	f.Add([]byte{}, 8)
	f.Fuzz(func(t *testing.T, b []byte, width int) {
		si, err := magic.DecodeStartInfo(b, width)
		if err != nil {
			assert.Equal(t, magic.StartInfo{}, si)
			return
		}
		out, err := si.Encode(width)
		if err != nil {
			// Only a NUL-free magic/cmdline is guaranteed; decode stops at NUL so
			// encode must succeed.
			t.Fatalf("Encode of decoded %+v: %v", si, err)
		}
		si2, err := magic.DecodeStartInfo(out, width)
		require.NoError(t, err)
		assert.Equal(t, si, si2)
		// Magic parsing of arbitrary bytes must not panic.
		_, _ = si.ParseMagic()
	})
}
