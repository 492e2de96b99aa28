package stream

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Fixtures derived from images Xen 4.17's xl wrote (testdata/README.md).
type realImage struct {
	file    string
	dom     DomainType
	records []string // record sequence of the .small fixture
	tail    string   // bytes after the stream
}

var realImages = []realImage{
	{
		file: "xl-save-pv.img", dom: DomainTypePV,
		records: []string{"xl header", "libxl header", "LIBXC_CONTEXT", "image header", "domain header",
			"X86_PV_INFO", "X86_CPUID_POLICY", "X86_MSR_POLICY", "STATIC_DATA_END", "X86_PV_P2M_FRAMES",
			"PAGE_DATA", "X86_TSC_INFO", "SHARED_INFO", "X86_PV_VCPU_BASIC", "X86_PV_VCPU_EXTENDED",
			"END", "END"},
	},
	{
		file: "xl-save-c-pvh.img", dom: DomainTypeHVM,
		records: []string{"xl header", "libxl header", "LIBXC_CONTEXT", "image header", "domain header",
			"X86_CPUID_POLICY", "X86_MSR_POLICY", "STATIC_DATA_END", "PAGE_DATA", "X86_TSC_INFO",
			"HVM_CONTEXT", "HVM_PARAMS", "END", "END"},
	},
	{
		file: "xl-migrate-live-pvh.stream", dom: DomainTypeHVM,
		records: []string{"xl header", "libxl header", "LIBXC_CONTEXT", "image header", "domain header",
			"X86_CPUID_POLICY", "X86_MSR_POLICY", "STATIC_DATA_END", "PAGE_DATA", "X86_TSC_INFO",
			"HVM_CONTEXT", "HVM_PARAMS", "END", "END"},
		tail: "domain is yours, you are cleared to unpause\x00",
	},
}

func TestRealImages(t *testing.T) {
	for _, ri := range realImages {
		t.Run(ri.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", ri.file+".small"))
			require.NoError(t, err)
			r := NewReader(bytes.NewReader(b), &ReaderOptions{MaxPFN: 0xfffff})
			var names []string
			for {
				rec, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				names = append(names, recName(&rec))
				switch {
				case rec.Kind == KindXLHeader:
					assert.Contains(t, string(rec.XL.Config), `"c_info"`)
					assert.Equal(t, uint32(XLMandatoryJSON|XLMandatoryStreamV2), rec.XL.MandatoryFlags)
				case rec.Kind == KindDomainHeader:
					assert.Equal(t, DomainHeader{Type: ri.dom, PageShift: 12, XenMajor: 4, XenMinor: 17}, rec.Domain)
				case rec.Kind == KindLibxc && rec.Type == RecX86PVInfo:
					info, err := rec.X86PVInfo()
					require.NoError(t, err)
					assert.Equal(t, X86PVInfo{GuestWidth: 8, PTLevels: 4}, info)
				case rec.Kind == KindLibxc && rec.Type == RecX86CPUIDPolicy:
					leaves, err := rec.CPUIDPolicy()
					require.NoError(t, err)
					assert.Len(t, leaves, 51)
				case rec.Kind == KindLibxc && rec.Type == RecHVMParams:
					ps, err := rec.HVMParams()
					require.NoError(t, err)
					assert.Len(t, ps, 8)
				case rec.Kind == KindLibxc && rec.Type == RecX86TSCInfo:
					tsc, err := rec.TSCInfo()
					require.NoError(t, err)
					assert.NotZero(t, tsc.KHz)
				case rec.Kind == KindLibxc && rec.Type == RecX86PVVCPUBasic:
					v, err := rec.VCPU()
					require.NoError(t, err)
					assert.Equal(t, uint32(0), v.ID)
					assert.Len(t, v.Context, VCPUContextSize64)
				}
			}
			assert.Equal(t, ri.records, names)
			assert.Equal(t, ri.tail, string(b[r.Offset():]), "bytes after the stream")
			rest, err := io.ReadAll(r.Buffered())
			require.NoError(t, err)
			assert.Equal(t, ri.tail, string(rest), "Buffered after the stream")
			// Xen's bytes survive read → write unchanged.
			assert.True(t, bytes.Equal(b[:r.Offset()], rewrite(t, b, nil)), "rewrite differs")
		})
	}
}

// TestRealImageHeads reads the raw first 16 KiB of real images: everything
// up to the cut is accepted, and the cut is a typed truncation error naming
// the PAGE_DATA record.
func TestRealImageHeads(t *testing.T) {
	for _, tc := range []struct {
		file    string
		records int
		pageOff int64
	}{
		{"xl-save-pv.img", 10, 2673},
		{"xl-save-c-pvh.img", 8, 2260},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file+".head"))
			require.NoError(t, err)
			r := NewReader(bytes.NewReader(b), nil)
			for range tc.records {
				_, err := r.Next()
				require.NoError(t, err)
			}
			rec, err := r.Next()
			require.NoError(t, err)
			require.Equal(t, RecPageData, rec.Type)
			assert.Equal(t, tc.pageOff, rec.Offset)
			assert.Len(t, rec.PFNs, MaxPagesPerRecord)
			_, err = r.Pages()
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, "PAGE_DATA", fe.Record)
			assert.Equal(t, tc.pageOff, fe.Offset)
			assert.ErrorIs(t, err, ErrTruncated)
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
			_, err2 := r.Next()
			assert.Equal(t, err, err2, "errors are sticky")
		})
	}
}
