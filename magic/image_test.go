package magic_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/xenckpt/xenckpt/magic"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// wantStandard checks the notes of StandardTestNotes.
func wantStandard(t *testing.T, n *magic.Notes, class32 bool) {
	t.Helper()
	require.NotNil(t, n)
	assert.Equal(t, uint64(1), n.SuspendCancel)
	assert.True(t, n.Has(magic.NoteSuspendCancel))
	assert.False(t, n.Has(magic.NoteInitP2M))
	assert.Equal(t, "linux", n.GuestOS)
	assert.Equal(t, "xen-3.0", n.XenVersion)
	assert.Equal(t, "!writable_page_tables", n.Features)
	assert.Equal(t, []uint32{0x8801}, n.SupportedFeatures)
	assert.Equal(t, uint64(0xff80), n.HVStartLow)
	if class32 {
		assert.Equal(t, uint64(0x83079c00), n.Entry)
	} else {
		assert.Equal(t, uint64(0xffffffff83079c00), n.Entry)
	}
	assert.Equal(t, []uint64{1, 1}, n.L1MFNValid)
	assert.Len(t, n.Raw, 8, "the GNU note must be skipped")
	assert.Equal(t, magic.NoteGuestOS, n.Raw[0].Type)
}

func TestReadNotesELF(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		opts magic.TestELFOptions
	}{
		{"elf64", magic.TestELFOptions{}},
		{"elf32", magic.TestELFOptions{Class32: true}},
		{"sections-only", magic.TestELFOptions{NoPTNote: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := magic.BuildTestELF(magic.StandardTestNotes(tt.opts.Class32), tt.opts)
			n, err := magic.ReadNotes(ctx, bytes.NewReader(img), int64(len(img)), nil)
			require.NoError(t, err)
			wantStandard(t, n, tt.opts.Class32)
			assert.Equal(t, magic.ImageELF, n.Kind)
			assert.Equal(t, magic.CompressionNone, n.Compression)
			assert.Equal(t, tt.opts.NoPTNote, n.FromSections)
		})
	}
}

func TestReadNotesNoXenNotes(t *testing.T) {
	img := magic.BuildTestELF([]magic.TestNote{{Name: "GNU", Type: 3, Desc: []byte{1, 2, 3, 4}}}, magic.TestELFOptions{})
	n, err := magic.ReadNotesBytes(context.Background(), img, nil)
	require.NoError(t, err)
	assert.Empty(t, n.Raw)
	assert.False(t, n.Has(magic.NoteSuspendCancel))
	assert.Equal(t, uint64(0), n.SuspendCancel)
}

// bzImage wraps payload in a minimal Linux x86 boot image, appending the
// 4-byte uncompressed size as Linux's build does for most compressions.
func bzImage(payload []byte, uncompressed int, version uint16) []byte {
	const setupSects = 3
	hdr := make([]byte, (setupSects+1)*512)
	hdr[0x1f1] = setupSects
	copy(hdr[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(hdr[0x206:], version)
	const payloadOff = 0x100 // after some decompressor "code"
	p := append(bytes.Clone(payload), binary.LittleEndian.AppendUint32(nil, uint32(uncompressed))...)
	binary.LittleEndian.PutUint32(hdr[0x248:], payloadOff)
	binary.LittleEndian.PutUint32(hdr[0x24c:], uint32(len(p)))
	img := append(hdr, make([]byte, payloadOff)...)
	img = append(img, p...)
	return append(img, make([]byte, 64)...) // trailing setup data
}

// compressWith runs b through the writer mk makes.
func compressWith(t *testing.T, b []byte, mk func(io.Writer) (io.WriteCloser, error)) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := mk(&buf)
	require.NoError(t, err)
	_, err = w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func compressors(t *testing.T, elf []byte) map[magic.Compression][]byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	defer enc.Close()
	return map[magic.Compression][]byte{
		magic.CompressionGzip: compressWith(t, elf, func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriter(w), nil }),
		magic.CompressionZstd: enc.EncodeAll(elf, nil),
		magic.CompressionLZ4: compressWith(t, elf, func(w io.Writer) (io.WriteCloser, error) {
			lw := lz4.NewWriter(w)
			return lw, lw.Apply(lz4.LegacyOption(true))
		}),
		magic.CompressionLZMA: compressWith(t, elf, func(w io.Writer) (io.WriteCloser, error) { return lzma.NewWriter(w) }),
		magic.CompressionXZ:   compressWith(t, elf, func(w io.Writer) (io.WriteCloser, error) { return xz.NewWriter(w) }),
	}
}

func TestReadNotesCompressed(t *testing.T) {
	ctx := context.Background()
	elf := magic.BuildTestELF(magic.StandardTestNotes(false), magic.TestELFOptions{CodeBytes: 4096})
	for c, payload := range compressors(t, elf) {
		t.Run(string(c), func(t *testing.T) {
			assert.Equal(t, c, magic.DetectCompression(payload))
			n, err := magic.ReadNotesBytes(ctx, payload, nil)
			require.NoError(t, err)
			wantStandard(t, n, false)
			assert.Equal(t, magic.ImageCompressedELF, n.Kind)
			assert.Equal(t, c, n.Compression)

			img := bzImage(payload, len(elf), 0x020f)
			n, err = magic.ReadNotes(ctx, bytes.NewReader(img), int64(len(img)), nil)
			require.NoError(t, err)
			wantStandard(t, n, false)
			assert.Equal(t, magic.ImageBzImage, n.Kind)
			assert.Equal(t, c, n.Compression)
		})
	}
}

func TestReadNotesUncompressedBzImage(t *testing.T) {
	elf := readFixture(t, "notes64.elf")
	n, err := magic.ReadNotesBytes(context.Background(), bzImage(elf, len(elf), 0x020f), nil)
	require.NoError(t, err)
	wantStandard(t, n, false)
	assert.Equal(t, magic.ImageBzImage, n.Kind)
	assert.Equal(t, magic.CompressionNone, n.Compression)
}

func TestReadNotesHugeProgramHeaders(t *testing.T) {
	elf := bytes.Clone(readFixture(t, "notes64.elf"))
	binary.LittleEndian.PutUint16(elf[54:], 0xfff0) // e_phentsize
	binary.LittleEndian.PutUint16(elf[56:], 0xfff0) // e_phnum
	_, err := magic.ReadNotesBytes(context.Background(), elf, nil)
	assert.ErrorIs(t, err, magic.ErrBadImage)
}

// TestReadNotesFixtures decodes streams made by the reference command-line
// tools (testdata/make.sh), including xz with the x86 BCJ filter as Linux
// builds bzImages.
func TestReadNotesFixtures(t *testing.T) {
	ctx := context.Background()
	elf := readFixture(t, "notes64.elf")
	for _, tt := range []struct {
		file string
		c    magic.Compression
	}{
		{"notes64.elf.gz", magic.CompressionGzip},
		{"notes64.elf.bz2", magic.CompressionBzip2},
		{"notes64.elf.xz", magic.CompressionXZ},
		{"notes64.elf.crc64.xz", magic.CompressionXZ},
		{"notes64.elf.sha256.xz", magic.CompressionXZ},
		{"notes64.elf.lzma", magic.CompressionLZMA},
		{"notes64.elf.lz4", magic.CompressionLZ4},
		{"notes64.elf.zst", magic.CompressionZstd},
		{"notes64.elf.lzo", magic.CompressionLZO},
	} {
		t.Run(tt.file, func(t *testing.T) {
			payload := readFixture(t, tt.file)
			assert.Equal(t, tt.c, magic.DetectCompression(payload))
			n, err := magic.ReadNotesBytes(ctx, payload, nil)
			require.NoError(t, err)
			wantStandard(t, n, false)
			img := bzImage(payload, len(elf), 0x020f)
			n, err = magic.ReadNotesBytes(ctx, img, nil)
			require.NoError(t, err)
			wantStandard(t, n, false)
			assert.Equal(t, magic.ImageBzImage, n.Kind)
		})
	}
}

func TestReadNotesErrors(t *testing.T) {
	ctx := context.Background()
	elf := readFixture(t, "notes64.elf")
	gz := readFixture(t, "notes64.elf.gz")
	xzb := readFixture(t, "notes64.elf.xz")

	badNote := magic.BuildTestELF([]magic.TestNote{{Name: "Xen", Type: uint32(magic.NoteSuspendCancel), Desc: []byte{1, 0, 0}}}, magic.TestELFOptions{})
	truncNote := bytes.Clone(elf)
	binary.LittleEndian.PutUint32(truncNote[64+2*56+4:], 1<<20) // first note's descsz
	corruptXZ := bytes.Clone(xzb)
	corruptXZ[len(corruptXZ)/2] ^= 0x55
	badBCJ := bytes.Clone(xzb)
	lzo := readFixture(t, "notes64.elf.lzo")
	lzoMethod0 := append([]byte("\x89LZO\x00\r\n\x1a\n"), make([]byte, 64)...)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	tests := []struct {
		name string
		ctx  context.Context
		img  []byte
		opts *magic.ReadOptions
		err  error
	}{
		{"empty", ctx, nil, nil, magic.ErrNotKernel},
		{"text", ctx, []byte("#!/bin/sh\necho hi\n"), nil, magic.ErrNotKernel},
		{"truncated-elf", ctx, elf[:40], nil, magic.ErrBadImage},
		{"bad-note-width", ctx, badNote, nil, magic.ErrBadNote},
		{"note-size-overflow", ctx, truncNote, nil, magic.ErrBadNote},
		{"truncated-gzip", ctx, gz[:30], nil, magic.ErrBadImage},
		{"corrupt-xz", ctx, corruptXZ, nil, magic.ErrBadImage},
		{"bcj-xz-too-large", ctx, badBCJ, &magic.ReadOptions{MaxSize: 4096}, magic.ErrTooLarge},
		{"gzip-too-large", ctx, gz, &magic.ReadOptions{MaxSize: 4096}, magic.ErrTooLarge},
		{"input-too-large", ctx, bzImage(gz, 0, 0x020f), &magic.ReadOptions{MaxSize: 1024}, magic.ErrTooLarge},
		{"cancelled", cancelled, gz, nil, context.Canceled},
		{"lzo-truncated-header", ctx, lzo[:20], nil, magic.ErrBadImage},
		{"lzo-method-0", ctx, lzoMethod0, nil, magic.ErrUnsupportedCompression},
		{"old-boot-protocol", ctx, bzImage(gz, 0, 0x0207), nil, magic.ErrBadImage},
		{"payload-outside", ctx, bzImage(gz, 0, 0x020f)[:0x900], nil, magic.ErrBadImage},
		{"payload-not-compressed", ctx, bzImage([]byte("plain text payload"), 0, 0x020f), nil, magic.ErrUnsupportedCompression},
		{"payload-not-elf", ctx, bzImage(gzipOf(t, []byte("not an elf")), 0, 0x020f), nil, magic.ErrNotKernel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := magic.ReadNotes(tt.ctx, bytes.NewReader(tt.img), int64(len(tt.img)), tt.opts)
			require.Error(t, err)
			assert.Nil(t, n)
			assert.ErrorIs(t, err, tt.err)
			var ie *magic.ImageError
			assert.True(t, errors.As(err, &ie), "%v is not an *ImageError", err)
		})
	}
	_, err := magic.ReadNotes(ctx, bytes.NewReader(nil), -1, nil)
	assert.ErrorIs(t, err, magic.ErrBadImage)
}

func gzipOf(t *testing.T, b []byte) []byte {
	return compressWith(t, b, func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriter(w), nil })
}

// TestReadNotesFile reads a plain ELF in place from an *os.File.
func TestReadNotesFile(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "notes64.elf"))
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	n, err := magic.ReadNotes(context.Background(), f, st.Size(), &magic.ReadOptions{MaxSize: 1}) // in place: no cap hit
	require.NoError(t, err)
	wantStandard(t, n, false)
}

func TestNoteTypeString(t *testing.T) {
	assert.Equal(t, "XEN_ELFNOTE_SUSPEND_CANCEL", magic.NoteSuspendCancel.String())
	assert.Equal(t, "XEN_ELFNOTE_99", magic.NoteType(99).String())
}

func FuzzReadNotes(f *testing.F) {
	elf := readFixture(f, "notes64.elf")
	small := magic.BuildTestELF(magic.StandardTestNotes(true), magic.TestELFOptions{Class32: true})
	f.Add(small)
	f.Add(magic.BuildTestELF(magic.StandardTestNotes(false), magic.TestELFOptions{NoPTNote: true}))
	for _, name := range []string{"notes64.elf.gz", "notes64.elf.xz", "notes64.elf.zst", "notes64.elf.lz4", "notes64.elf.bz2", "notes64.elf.lzma", "notes64.elf.lzo"} {
		f.Add(readFixture(f, name))
	}
	f.Add(bzImage(readFixture(f, "notes64.elf.gz"), len(elf), 0x020f))
	opts := &magic.ReadOptions{MaxSize: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := magic.ReadNotesBytes(context.Background(), b, opts)
		if (n == nil) == (err == nil) {
			t.Fatalf("notes %v with error %v", n, err)
		}
		if err != nil {
			var ie *magic.ImageError
			if !errors.As(err, &ie) {
				t.Fatalf("%v is not an *ImageError", err)
			}
		}
	})
}
