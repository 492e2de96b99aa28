package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
)

// testImage writes an xl-format HVM image with two rounds of pages (pfn 1
// is sent twice, as a live migration does), a hole, and xl's migration
// handshake after the END.
func testImage(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := stream.NewWriter(&buf, nil)
	page := func(b byte) []byte { return bytes.Repeat([]byte{b}, stream.PageSize) }
	require.NoError(t, w.WriteXLHeader([]byte(`{"c_info":{"name":"t"}}`)))
	require.NoError(t, w.WriteLibxlHeader())
	require.NoError(t, w.WriteLibxcContext())
	require.NoError(t, w.WriteImageHeader())
	require.NoError(t, w.WriteDomainHeader(stream.DomainHeader{Type: stream.DomainTypeHVM, XenMajor: 4, XenMinor: 17}))
	require.NoError(t, w.WriteStaticDataEnd())
	require.NoError(t, w.WritePageData(
		[]uint64{stream.PFNEntry(0, stream.PageNoTab), stream.PFNEntry(1, stream.PageNoTab), stream.PFNEntry(7, stream.PageXTab)},
		[][]byte{page(1), page(2)}))
	require.NoError(t, w.WritePageData([]uint64{stream.PFNEntry(1, stream.PageNoTab)}, [][]byte{page(3)}))
	require.NoError(t, w.WriteTSCInfo(stream.TSCInfo{KHz: 1000}))
	require.NoError(t, w.WriteHVMContext(make([]byte, 24)))
	require.NoError(t, w.WriteHVMParams([]stream.HVMParam{{Index: 1, Value: 0xfeffc}}))
	require.NoError(t, w.WriteEnd())
	require.NoError(t, w.WriteLibxlEnd())
	require.NoError(t, w.Flush())
	buf.WriteString("domain is yours, you are cleared to unpause\n\x00")
	return buf.Bytes()
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func TestInspectJSON(t *testing.T) {
	img := testImage(t)
	p := writeFile(t, "img", img)
	r := xenckpt(t, t.Context(), "inspect", "--json", p)
	require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
	m := jsonOf(t, r)
	assert.Equal(t, p, m["file"])
	assert.Equal(t, []any{"xl", "libxl", "libxc"}, m["layers"])
	assert.Equal(t, "hvm", m["domain_type"])
	assert.Equal(t, "4.17", m["xen_version"])
	assert.Equal(t, float64(3), m["libxc_version"])
	assert.Equal(t, true, m["complete"])
	assert.Equal(t, map[string]any{
		"STATIC_DATA_END": 1.0, "PAGE_DATA": 2.0, "X86_TSC_INFO": 1.0, "HVM_CONTEXT": 1.0, "HVM_PARAMS": 1.0, "END": 1.0,
	}, m["record_counts"])
	assert.Equal(t, map[string]any{"LIBXC_CONTEXT": 1.0, "END": 1.0}, m["libxl_record_counts"])
	assert.Equal(t, map[string]any{
		"pfn_entries": 4.0, "data_pages": 3.0, "unique_pfns": 2.0, "max_pfn": 1.0,
		"by_type": map[string]any{"NOTAB": 3.0, "XTAB": 1.0},
	}, m["pages"])
	assert.Equal(t, "domain is yours, you are cleared to unpause", m["trailing_text"])
	assert.Equal(t, float64(len("domain is yours, you are cleared to unpause\n\x00")), m["trailing_bytes"])
	assert.Nil(t, m["error"])
	assert.Nil(t, m["record_list"], "only with --records")
}

func TestInspectTextAndRecords(t *testing.T) {
	p := writeFile(t, "img", testImage(t))
	r := xenckpt(t, t.Context(), "inspect", "--records", p)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "xl > libxl > libxc stream, hvm guest, Xen 4.17, libxc v3")
	assert.Contains(t, r.stdout, "pages: 4 pfn entries, 3 data pages, 2 unique pfns")
	assert.Contains(t, r.stdout, "IMAGE_HEADER")
	assert.Contains(t, r.stdout, "(3 pfns, 2 pages)")
}

func TestInspectXZAndStdin(t *testing.T) {
	var z bytes.Buffer
	zw, err := xz.NewWriter(&z)
	require.NoError(t, err)
	_, err = zw.Write(testImage(t))
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"inspect", "--json", "-"}, bytes.NewReader(z.Bytes()), &stdout, &stderr)
	require.Equal(t, exitOK, code, stderr.String())
	m := jsonOf(t, result{stdout: stdout.String()})
	assert.Equal(t, "xz", m["compression"])
	assert.Equal(t, 3.0, m["pages"].(map[string]any)["data_pages"])
}

func TestInspectTruncated(t *testing.T) {
	img := testImage(t)
	p := writeFile(t, "img", img[:len(img)/2])
	r := xenckpt(t, t.Context(), "inspect", "--json", p)
	assert.Equal(t, exitImage, r.code)
	m := jsonOf(t, r)
	assert.Equal(t, false, m["complete"])
	assert.Equal(t, "image", m["error"].(map[string]any)["class"])
	assert.Equal(t, []any{"xl", "libxl", "libxc"}, m["layers"], "what was read before the error is reported")

	r = xenckpt(t, t.Context(), "inspect", p)
	assert.Equal(t, exitImage, r.code)
	assert.Contains(t, r.stdout, "INCOMPLETE")
	assert.Contains(t, r.stderr, "xenckpt: ")
}

func TestInspectMissingFile(t *testing.T) {
	r := xenckpt(t, t.Context(), "inspect", filepath.Join(t.TempDir(), "nope"))
	assert.Equal(t, exitNotFound, r.code)
	r = xenckpt(t, t.Context(), "inspect", "--json", writeFile(t, "junk", []byte("not an image at all, not at all")))
	assert.Equal(t, exitImage, r.code)
}

// TestInspectXLImages reads images written by Xen 4.17's own xl (cut down
// to a few pages; see checkpoint/stream/testdata/README.md).
func TestInspectXLImages(t *testing.T) {
	const dir = "../../checkpoint/stream/testdata/"
	for _, tc := range []struct {
		file, domType string
		trailing      any
		counts        map[string]any
	}{
		{"xl-save-pv.img.small", "pv", nil, map[string]any{
			"END": 1.0, "PAGE_DATA": 1.0, "SHARED_INFO": 1.0, "STATIC_DATA_END": 1.0, "X86_CPUID_POLICY": 1.0,
			"X86_MSR_POLICY": 1.0, "X86_PV_INFO": 1.0, "X86_PV_P2M_FRAMES": 1.0, "X86_PV_VCPU_BASIC": 1.0,
			"X86_PV_VCPU_EXTENDED": 1.0, "X86_TSC_INFO": 1.0}},
		{"xl-save-c-pvh.img.small", "hvm", nil, map[string]any{
			"END": 1.0, "HVM_CONTEXT": 1.0, "HVM_PARAMS": 1.0, "PAGE_DATA": 1.0, "STATIC_DATA_END": 1.0,
			"X86_CPUID_POLICY": 1.0, "X86_MSR_POLICY": 1.0, "X86_TSC_INFO": 1.0}},
		{"xl-migrate-live-pvh.stream.small", "hvm", "domain is yours, you are cleared to unpause", nil},
	} {
		r := xenckpt(t, t.Context(), "inspect", "--json", dir+tc.file)
		require.Equal(t, exitOK, r.code, "%s: %s", tc.file, r.stdout)
		m := jsonOf(t, r)
		assert.Equal(t, []any{"xl", "libxl", "libxc"}, m["layers"], tc.file)
		assert.Equal(t, tc.domType, m["domain_type"], tc.file)
		assert.Equal(t, "4.17", m["xen_version"], tc.file)
		assert.Equal(t, map[string]any{"mandatory_flags": 3.0, "config_bytes": m["xl"].(map[string]any)["config_bytes"]}, m["xl"])
		assert.Greater(t, m["xl"].(map[string]any)["config_bytes"], 800.0, "xl's JSON domain config")
		assert.Equal(t, tc.trailing, m["trailing_text"], tc.file)
		if tc.counts != nil {
			assert.Equal(t, tc.counts, m["record_counts"], tc.file)
		}
	}
	// The .head files are the first 16 KiB: cut inside page data.
	r := xenckpt(t, t.Context(), "inspect", "--json", dir+"xl-save-pv.img.head")
	assert.Equal(t, exitImage, r.code)
	m := jsonOf(t, r)
	assert.Equal(t, false, m["complete"])
	assert.Equal(t, "pv", m["domain_type"])
}
