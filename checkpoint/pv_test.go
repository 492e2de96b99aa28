package checkpoint_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/internal/testutil"
	"github.com/xenckpt/xenckpt/xensim"
)

// machineEnv is a test environment whose PV guests have machine frames
// (MFN != PFN), as on real Xen.
func machineEnv(t *testing.T) *env {
	return newEnvOn(t, &xensim.Config{PVFrames: xensim.PVFramesMachine}, nil)
}

var pvKinds = []xensim.Kind{xensim.PV64, xensim.PV32}

// forEachPVGuest runs f in subtests "<kind>/nonlive" and "<kind>/live" for
// every PV kind, each on a fresh host with machine frames and a running
// 256-page Linux-convention guest that dirties its memory.
func forEachPVGuest(t *testing.T, f func(t *testing.T, e *env, g *xensim.Guest, k xensim.Kind, live bool)) {
	for _, k := range pvKinds {
		for _, live := range []bool{false, true} {
			name := k.String() + "/nonlive"
			if live {
				name = k.String() + "/live"
			}
			t.Run(name, func(t *testing.T) {
				e := machineEnv(t)
				g := e.guest(t, xensim.GuestConfig{Kind: k, Convention: xensim.ConventionLinux, Pages: 256, DirtyRate: 2000})
				f(t, e, g, k, live)
			})
		}
	}
}

// pvImage is what a PV image holds, decoded: pages by pfn with their
// types, the p2m frame list and vCPU contexts and records.
type pvImage struct {
	pages map[uint64][]byte
	types map[uint64]stream.PageType
	p2m   stream.P2MFrames
	vcpus map[uint32][]byte
	info  stream.X86PVInfo
	recs  []vcpuRec // every X86_PV_VCPU_* record, in stream order
}

func decodePV(t *testing.T, img []byte) pvImage {
	t.Helper()
	out := pvImage{pages: map[uint64][]byte{}, types: map[uint64]stream.PageType{}, vcpus: map[uint32][]byte{}}
	r := stream.NewReader(bytes.NewReader(img), nil)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		if rec.Kind != stream.KindLibxc {
			continue
		}
		switch rec.Type {
		case stream.RecX86PVInfo:
			out.info, err = rec.X86PVInfo()
		case stream.RecX86PVP2MFrames:
			out.p2m, err = rec.P2MFrames()
		case stream.RecX86PVVCPUBasic, stream.RecX86PVVCPUExtended, stream.RecX86PVVCPUXSave, stream.RecX86PVVCPUMSRs:
			var v stream.VCPU
			v, err = rec.VCPU()
			blob := append([]byte(nil), v.Context...)
			out.recs = append(out.recs, vcpuRec{rec.Type, v.ID, blob})
			if rec.Type == stream.RecX86PVVCPUBasic {
				out.vcpus[v.ID] = blob
			}
		case stream.RecPageData:
			var data []byte
			data, err = r.Pages()
			i := 0
			for _, e := range rec.PFNs {
				pfn := stream.EntryPFN(e)
				out.types[pfn] = stream.EntryType(e)
				if stream.EntryType(e).HasData() {
					out.pages[pfn] = append([]byte(nil), data[i*stream.PageSize:(i+1)*stream.PageSize]...)
					i++
				}
			}
		}
		require.NoError(t, err)
	}
}

// checkNormalised walks the image's page tables from vCPU0's cr3: every
// present entry must name a pfn of the image of the right type, Xen's L4
// slots must be empty, and the leaves must map the pfns in order.
func checkNormalised(t *testing.T, im pvImage, pages uint64) {
	t.Helper()
	require.NotNil(t, im.vcpus[0], "no vCPU0 record")
	cr3 := vcpu0(t, im).CtrlReg(3)
	top := cr3 >> 12
	levels := stream.PageType(4)
	if im.info.GuestWidth == 4 {
		levels = 3
		c := uint32(cr3)
		top = uint64(c>>12 | c<<20)
	}
	require.Less(t, top, pages, "cr3 is not a pfn")
	assert.Equal(t, stream.PagePinned|levels, im.types[top], "cr3's table is the pinned top level")
	mapped := map[uint64]bool{}
	var walk func(pfn uint64, lvl stream.PageType)
	walk = func(pfn uint64, lvl stream.PageType) {
		page := im.pages[pfn]
		require.NotNil(t, page, "page table pfn %#x not in the image", pfn)
		assert.Equal(t, lvl, im.types[pfn]&^stream.PagePinned, "type of pfn %#x", pfn)
		for i := range 512 {
			e := binary.LittleEndian.Uint64(page[i*8:])
			if lvl == 4 && i >= 256 && i <= 272 {
				assert.Zero(t, e, "Xen's L4 slot %d not cleared", i)
			}
			if e&1 == 0 {
				continue
			}
			f := (e & 0x000ffffffffff000) >> 12
			require.Less(t, f, pages, "L%d[%d] = %#x does not name a pfn", lvl, i, e)
			if lvl == 1 {
				mapped[f] = true
				continue
			}
			walk(f, lvl-1)
		}
	}
	walk(top, levels)
	assert.Len(t, mapped, int(pages), "the page tables map every pfn")
}

// vcpu0 is vCPU0's context in the image.
func vcpu0(t *testing.T, im pvImage) *domctl.VCPUContext {
	t.Helper()
	vc, err := domctl.NewVCPUContext(int(im.info.GuestWidth), im.vcpus[0])
	require.NoError(t, err)
	return vc
}

// TestPVMachineFramesCheckpoint: PV guests whose frames are machine
// frames are checkpointed three times (each cancelled, the guest counting
// on); the image is in pfn terms: page tables normalised, vCPU0's
// start_info and cr3 as pfns, the p2m frames listed as pfns, every page
// of the guest present.
func TestPVMachineFramesCheckpoint(t *testing.T) {
	forEachPVGuest(t, func(t *testing.T, e *env, g *xensim.Guest, k xensim.Kind, live bool) {
		ctx := testCtx(t)
		var img bytes.Buffer
		for i := range 3 {
			img.Reset()
			before := g.Counter()
			res, err := e.c.Checkpoint(ctx, g.Domain(), &img, &checkpoint.SaveOptions{Live: live, Resume: resumeOpts(xensim.ConventionLinux)})
			require.NoError(t, err, "checkpoint %d", i)
			assert.EqualValues(t, i+1, g.Suspends())
			assert.GreaterOrEqual(t, res.Pages, uint64(256))
			e.requireRunning(t, g)
			assert.GreaterOrEqual(t, g.Counter(), before)
			assert.Equal(t, xensim.GuestRunning, g.State())
		}
		im := decodePV(t, img.Bytes())
		assert.Len(t, im.pages, 256, "every pfn has data")
		checkNormalised(t, im, 256)
		assert.Equal(t, uint64(simStartInfoPFN), vcpu0(t, im).RDX(), "vCPU0 edx is start_info's pfn")
		assert.EqualValues(t, 255, im.p2m.EndPFN)
		require.NotEmpty(t, im.p2m.Frames)
		for _, f := range im.p2m.Frames {
			assert.Less(t, f, uint64(256), "p2m frame %#x is not a pfn", f)
		}
		verifyImage(t, img.Bytes())
	})
}

// verifyImage runs Debian's verify-stream-v2 on an xl image.
func verifyImage(t *testing.T, img []byte) {
	t.Helper()
	const verifier = "/usr/lib/xen-4.17/bin/verify-stream-v2"
	testutil.RequireFile(t, verifier, "apt-get install xen-utils-4.17")
	testutil.RequireCommand(t, "python3", "apt-get install python3")
	p := filepath.Join(t.TempDir(), "image")
	require.NoError(t, os.WriteFile(p, img, 0o644))
	cmd := exec.Command("python3", verifier, "-v", "-f", "xl", "-i", p)
	cmd.Env = append(os.Environ(), "PYTHONPATH=/usr/lib/xen-4.17/lib/python")
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "verify-stream-v2 rejected the image:\n%s", out)
}

// TestPVUnreadableP2M: a PV guest whose shared_info names no p2m cannot be
// imaged; the checkpoint fails with ErrBadFrame before suspending it.
func TestPVUnreadableP2M(t *testing.T) {
	e := machineEnv(t)
	g := e.guest(t, xensim.GuestConfig{Kind: xensim.PV64, Convention: xensim.ConventionLinux})
	ctx := testCtx(t)
	info, err := e.hv.DomainInfo(ctx, g.Domain())
	require.NoError(t, err)
	m, err := e.hv.MapForeign(ctx, g.Domain(), domctl.ProtReadWrite, []uint64{info.SharedInfoFrame})
	require.NoError(t, err)
	clear(m.Bytes()[:4096]) // max_pfn and the frame-list list gone
	require.NoError(t, m.Close())
	_, err = e.c.Checkpoint(ctx, g.Domain(), io.Discard, &checkpoint.SaveOptions{Resume: resumeOpts(xensim.ConventionLinux)})
	require.ErrorIs(t, err, checkpoint.ErrBadFrame)
	assert.Zero(t, g.Suspends(), "refused before the suspend")
	e.requireRunning(t, g)
}

// TestPVP2MGenerationChange: a 64-bit guest that changes its linear p2m
// (bumps p2m_generation) while it is copied live fails the checkpoint
// with ErrBadFrame, and keeps running.
func TestPVP2MGenerationChange(t *testing.T) {
	e := machineEnv(t)
	g := e.guest(t, xensim.GuestConfig{Kind: xensim.PV64, Convention: xensim.ConventionLinux, DirtyRate: 1000})
	ctx := testCtx(t)
	info, err := e.hv.DomainInfo(ctx, g.Domain())
	require.NoError(t, err)
	genOff := int(unsafe.Offsetof(abi.SharedInfoX86_64{}.Arch) + unsafe.Offsetof(abi.ArchSharedInfoX86_64{}.P2MGeneration))
	bumped := false
	_, err = e.c.Checkpoint(ctx, g.Domain(), io.Discard, &checkpoint.SaveOptions{
		Live: true, Resume: resumeOpts(xensim.ConventionLinux),
		Progress: func(p checkpoint.Progress) {
			if p.Phase != checkpoint.PhasePrecopy || bumped {
				return
			}
			m, err := e.hv.MapForeign(ctx, g.Domain(), domctl.ProtReadWrite, []uint64{info.SharedInfoFrame})
			require.NoError(t, err)
			binary.LittleEndian.PutUint64(m.Bytes()[genOff:], 1)
			require.NoError(t, m.Close())
			bumped = true
		},
	})
	require.True(t, bumped)
	require.ErrorIs(t, err, checkpoint.ErrBadFrame)
	e.requireRunning(t, g)
}
