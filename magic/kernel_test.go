package magic

import (
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/testutil"
)

// TestDebianKernel reads Debian's own bzImage (linux-image-amd64): an xz
// payload with the x86 BCJ filter whose vmlinux carries
// XEN_ELFNOTE_SUSPEND_CANCEL = 1. When the xz tool is present the
// decompressed payload is also compared byte for byte with xz's output.
func TestDebianKernel(t *testing.T) {
	images, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(images) == 0 {
		testutil.SkipOrFail(t, "no /boot/vmlinuz-* kernel image", "apt-get install linux-image-amd64")
	}
	img, err := os.ReadFile(images[0])
	require.NoError(t, err)
	ctx := context.Background()

	n, err := ReadNotesBytes(ctx, img, nil)
	require.NoError(t, err)
	assert.Equal(t, ImageBzImage, n.Kind)
	assert.True(t, n.Has(NoteSuspendCancel))
	assert.Equal(t, uint64(1), n.SuspendCancel, "%s: XEN_ELFNOTE_SUSPEND_CANCEL", images[0])
	assert.Equal(t, "linux", n.GuestOS)
	assert.Equal(t, "xen-3.0", n.XenVersion)
	assert.NotZero(t, n.Entry)
	assert.Equal(t, []uint64{1, 1}, n.L1MFNValid) // xen-head.S: .quad _PAGE_PRESENT, _PAGE_PRESENT
	t.Logf("%s: %s payload, %d Xen notes", images[0], n.Compression, len(n.Raw))

	// The decoder (xz container + x86 BCJ for Debian) against the reference
	// tool, on a prefix: a full decode under -race costs a minute.
	payload, err := bzImagePayload(img)
	require.NoError(t, err)
	c := DetectCompression(payload)
	tool := map[Compression]string{CompressionXZ: "xz", CompressionGzip: "gzip", CompressionZstd: "zstd", CompressionBzip2: "bzip2", CompressionLZMA: "xz", CompressionLZ4: "lz4"}[c]
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Logf("no %s tool: decoder output not compared", tool)
		return
	}
	const prefix = 4 << 20
	cmd := exec.CommandContext(ctx, path, "-dc")
	cmd.Stdin = bytes.NewReader(payload)
	want, err := cmd.Output() // may complain about the appended size after printing the stream
	if len(want) < prefix {
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(want), prefix)
	}
	r, closeFn, err := openDecompressor(c, payload, DefaultMaxSize)
	require.NoError(t, err)
	defer closeFn()
	got := make([]byte, prefix)
	_, err = io.ReadFull(r, got)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want[:prefix], got), "%s decoder differs from %s -dc in the first %d bytes", c, tool, prefix)
}

// TestXenHypervisorImage reads Debian's Xen binary, a gzip'd 32-bit ELF
// whose only note is a GNU build-id: a real compressed ELF without Xen
// notes, which must read cleanly as "no notes".
func TestXenHypervisorImage(t *testing.T) {
	const path = "/boot/xen-4.17-amd64.gz"
	testutil.RequireFile(t, path, "apt-get install xen-hypervisor-4.17-amd64")
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	n, err := ReadNotes(context.Background(), f, st.Size(), nil)
	require.NoError(t, err)
	assert.Equal(t, ImageCompressedELF, n.Kind)
	assert.Equal(t, CompressionGzip, n.Compression)
	assert.Equal(t, elf.ELFCLASS32, n.Class)
	assert.Empty(t, n.Raw)
	assert.False(t, n.Has(NoteSuspendCancel))
	d, err := Negotiate(Sources{Notes: n})
	require.NoError(t, err)
	assert.Equal(t, ConventionNone, d.Convention)
}
