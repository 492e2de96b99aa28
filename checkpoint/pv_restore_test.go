package checkpoint_test

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xensim"
)

// TestPVRestoreMachineFrames: a PV guest whose frames are machine frames
// (as on real Xen) is saved and restored into a new domain, 64- and
// 32-bit: the new domain's frames are new machine frames, vCPU0's
// start_info and the store and console rings name frames of the new
// domain, the reserved grant entries let dom0 map the store ring, and the
// guest (its page tables localised and pinned, its p2m rewritten) runs on
// from its counter.
func TestPVRestoreMachineFrames(t *testing.T) {
	forEachPVGuest(t, func(t *testing.T, e *env, g *xensim.Guest, k xensim.Kind, live bool) {
		ctx := testCtx(t)
		var img bytes.Buffer
		id, before := g.ID(), g.Counter()
		_, err := e.c.Save(ctx, g.Domain(), &img, &checkpoint.SaveOptions{Live: live, Resume: resumeOpts(xensim.ConventionLinux)})
		require.NoError(t, err)
		dom, err := e.c.Restore(ctx, bytes.NewReader(img.Bytes()), &checkpoint.RestoreOptions{Resume: resumeOpts(xensim.ConventionLinux)})
		require.NoError(t, err)
		r := e.host.Guest(dom)
		require.NotNil(t, r)
		assert.Equal(t, id, r.ID(), "same kernel")
		require.NoError(t, r.WaitConnected(ctx))
		e.requireRunning(t, r)
		assert.GreaterOrEqual(t, r.Counter(), before, "the counter carries over")
		assert.EqualValues(t, 0, r.LastSuspendReturn(), "upstream: 0 = new domain")

		width := 8
		if k == xensim.PV32 {
			width = 4
		}
		vc, err := e.hv.VCPUContext(ctx, dom, 0, width)
		require.NoError(t, err)
		siMFN := vc.RDX()
		assert.NotEqual(t, uint64(simStartInfoPFN), siMFN, "vCPU0 edx is start_info's new MFN, not its pfn")
		m, err := e.hv.MapForeign(ctx, dom, domctl.ProtRead, []uint64{siMFN})
		require.NoError(t, err)
		si, err := magic.DecodeStartInfo(m.Bytes(), width)
		require.NoError(t, m.Close())
		require.NoError(t, err)
		assert.EqualValues(t, 256, si.NrPages)
		info, err := e.hv.DomainInfo(ctx, dom)
		require.NoError(t, err)
		assert.Equal(t, info.SharedInfoFrame<<12, si.SharedInfo)
		ge, err := e.host.GrantEntry(dom, abi.GNTTAB_RESERVED_XENSTORE)
		require.NoError(t, err)
		assert.Equal(t, xensim.GrantEntry{Flags: abi.GTF_permit_access, Domain: 0, Frame: uint32(si.StoreMFN)}, ge)
		ge, err = e.host.GrantEntry(dom, abi.GNTTAB_RESERVED_CONSOLE)
		require.NoError(t, err)
		assert.EqualValues(t, si.ConsoleMFN, ge.Frame)

		// Saving the restored guest again gives an image of the same
		// shape: every pfn, normalised page tables.
		img.Reset()
		_, err = e.c.Checkpoint(ctx, dom, &img, &checkpoint.SaveOptions{Resume: resumeOpts(xensim.ConventionLinux)})
		require.NoError(t, err)
		im := decodePV(t, img.Bytes())
		assert.Len(t, im.pages, 256)
		checkNormalised(t, im, 256)
		e.requireRunning(t, r)
	})
}

// TestPVRestoreInconsistentImage: a PV image whose vCPU0 names a
// start_info pfn beyond the guest, or whose page table names a frame
// beyond it, is refused with a *checkpoint.PVImageError, and no domain is
// left behind.
func TestPVRestoreInconsistentImage(t *testing.T) {
	e, img := pvImageOf(t)
	ctx := testCtx(t)
	before := e.domains()

	for _, tc := range []struct {
		name string
		edit func(t *testing.T, b []byte)
		want error
	}{
		{"start_info beyond the guest", func(t *testing.T, b []byte) {
			setVCPU0(t, b, func(vc *domctl.VCPUContext) { vc.SetRDX(1000) })
		}, stream.ErrBadPFN},
		{"cr3 not a top-level table", func(t *testing.T, b []byte) {
			setVCPU0(t, b, func(vc *domctl.VCPUContext) { vc.SetCtrlReg(3, simStartInfoPFN<<12) })
		}, stream.ErrBadPageType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(img)
			tc.edit(t, b)
			_, err := e.c.Restore(ctx, bytes.NewReader(b), nil)
			require.Error(t, err)
			var pe *checkpoint.PVImageError
			assert.True(t, errors.As(err, &pe), "want a PVImageError, got %v", err)
			assert.ErrorIs(t, err, tc.want)
			assert.Equal(t, before, e.domains(), "the half-built domain is destroyed")
		})
	}
}

// setVCPU0 edits vCPU0's X86_PV_VCPU_BASIC context in an encoded image of
// a 64-bit guest.
func setVCPU0(t *testing.T, img []byte, edit func(vc *domctl.VCPUContext)) {
	t.Helper()
	r := stream.NewReader(bytes.NewReader(img), nil)
	for {
		rec, err := r.Next()
		require.NoError(t, err, "no vCPU0 record in the image")
		if rec.Kind != stream.KindLibxc || rec.Type != stream.RecX86PVVCPUBasic {
			continue
		}
		v, err := rec.VCPU()
		require.NoError(t, err)
		if v.ID != 0 {
			continue
		}
		i := bytes.Index(img, v.Context)
		require.GreaterOrEqual(t, i, 0)
		vc, err := domctl.NewVCPUContext(8, img[i:i+len(v.Context)])
		require.NoError(t, err)
		edit(vc)
		return
	}
}

// TestPVSlowResumeMachineFrames: a PV guest without a cancel convention is
// checkpointed with the slow resume allowed; xc_domain_resume_any's fix-up
// turns start_info's store and console frames (pfns since the guest's
// pre-suspend) back into its machine frames, and the guest reconnects and
// runs on in its domain.
func TestPVSlowResumeMachineFrames(t *testing.T) {
	for _, k := range pvKinds {
		t.Run(k.String(), func(t *testing.T) {
			e := machineEnv(t)
			g := e.guest(t, xensim.GuestConfig{Kind: k, Convention: xensim.ConventionLegacy, Pages: 128})
			ctx := testCtx(t)
			res, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, &checkpoint.SaveOptions{Resume: checkpoint.ResumeOptions{SlowResume: true}})
			require.NoError(t, err)
			assert.Equal(t, magic.ConventionNone, res.Convention)
			require.NoError(t, g.WaitConnected(ctx))
			e.requireRunning(t, g)
			assert.EqualValues(t, 1, g.Reconnects())

			width := 8
			if k == xensim.PV32 {
				width = 4
			}
			vc, err := e.hv.VCPUContext(ctx, g.Domain(), 0, width)
			require.NoError(t, err)
			m, err := e.hv.MapForeign(ctx, g.Domain(), domctl.ProtRead, []uint64{vc.RDX()})
			require.NoError(t, err)
			si, err := magic.DecodeStartInfo(m.Bytes(), width)
			require.NoError(t, m.Close())
			require.NoError(t, err)
			ge, err := e.host.GrantEntry(g.Domain(), abi.GNTTAB_RESERVED_XENSTORE)
			if err == nil && ge.Frame != 0 {
				assert.EqualValues(t, ge.Frame, si.StoreMFN, "store ring is the machine frame the grant names")
			}
			assert.Greater(t, si.StoreMFN, uint64(128), "store_mfn is a machine frame again, not a pfn")
		})
	}
}

// TestPVMigrateMachineFrames live- and non-live-migrates PV guests with
// machine frames between two hosts: the receiver's restore gives them new
// machine frames and they run on.
func TestPVMigrateMachineFrames(t *testing.T) {
	for _, k := range pvKinds {
		for _, live := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/live=%t", k, live), func(t *testing.T) {
				src, dst := machineEnv(t), machineEnv(t)
				g := src.guest(t, xensim.GuestConfig{Kind: k, Convention: xensim.ConventionLinux, DirtyRate: 2000, Pages: 256})
				id := g.ID()
				ro := resumeOpts(xensim.ConventionLinux)
				_, err, dom, rerr := migrate(t, src, dst, g.Domain(), &checkpoint.SaveOptions{Live: live, Resume: ro},
					&checkpoint.RestoreOptions{Resume: ro}, nil)
				require.NoError(t, err)
				require.NoError(t, rerr)
				r := dst.host.Guest(dom)
				assert.Equal(t, id, r.ID())
				require.NoError(t, r.WaitConnected(testCtx(t)))
				dst.requireRunning(t, r)
			})
		}
	}
}

// TestPVRestoreAppliesCPUPolicy: a PV image with an X86_CPUID_POLICY
// record (as xl writes) has it handed to XEN_DOMCTL_set_cpu_policy right
// after the domain is created. xensim has no CPU policies (ENOSYS), so
// the restore fails there, naming the step, and leaves no domain.
func TestPVRestoreAppliesCPUPolicy(t *testing.T) {
	e, img := pvImageOf(t)
	ctx := testCtx(t)
	before := e.domains()

	// X86_PV_INFO (type 2, 8 bytes) is followed by STATIC_DATA_END: put
	// a one-leaf CPUID policy (type 0x11) between them.
	b := img
	pvInfo := bytes.Index(b, []byte{2, 0, 0, 0, 8, 0, 0, 0, 8, 4})
	require.Positive(t, pvInfo)
	sde := pvInfo + 16
	require.Equal(t, []byte{0x10, 0, 0, 0, 0, 0, 0, 0}, b[sde:sde+8], "STATIC_DATA_END follows X86_PV_INFO")
	rec := append([]byte{0x11, 0, 0, 0, 24, 0, 0, 0}, make([]byte, 24)...)
	withPolicy := append(append(bytes.Clone(b[:sde]), rec...), b[sde:]...)

	_, err := e.c.Restore(ctx, bytes.NewReader(withPolicy), nil)
	require.ErrorIs(t, err, syscall.ENOSYS)
	assert.ErrorContains(t, err, domctl.OpSetCPUPolicy)
	assert.Equal(t, before, e.domains(), "the half-built domain is destroyed")

	// The image without the record restores.
	_, err = e.c.Restore(ctx, bytes.NewReader(b), nil)
	require.NoError(t, err)
}

// pvImageOf checkpoints a 64-bit PV guest with machine frames and returns
// its environment and image.
func pvImageOf(t *testing.T) (*env, []byte) {
	t.Helper()
	e := machineEnv(t)
	g := e.guest(t, xensim.GuestConfig{Kind: xensim.PV64, Convention: xensim.ConventionLinux, Pages: 64})
	var img bytes.Buffer
	_, err := e.c.Checkpoint(testCtx(t), g.Domain(), &img, &checkpoint.SaveOptions{Resume: resumeOpts(xensim.ConventionLinux)})
	require.NoError(t, err)
	return e, img.Bytes()
}

// BenchmarkRestorePV: a full restore of a checkpoint image into a new
// domain, PV guests with machine frames (pages populated and written by
// mfn, page tables localised and pinned, p2m rewritten) against PVH (by
// gfn). The domain is destroyed between iterations, off the clock.
func BenchmarkRestorePV(b *testing.B) {
	for _, kind := range []xensim.Kind{xensim.PV64, xensim.PV32, xensim.PVH} {
		for _, size := range benchSizes() {
			b.Run(kind.String()+"/"+sizeName(size), func(b *testing.B) {
				e := newEnvOn(b, &xensim.Config{PVFrames: xensim.PVFramesMachine}, nil)
				conv := xensim.ConventionLinux
				g := e.guest(b, xensim.GuestConfig{Kind: kind, Convention: conv, Pages: size / 4096, Tick: 50 * time.Millisecond})
				ctx := testCtx(b)
				var img bytes.Buffer
				_, err := e.c.Checkpoint(ctx, g.Domain(), &img, &checkpoint.SaveOptions{Resume: resumeOpts(conv)})
				require.NoError(b, err)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					dom, err := e.c.Restore(ctx, bytes.NewReader(img.Bytes()), &checkpoint.RestoreOptions{Paused: true, Resume: resumeOpts(conv)})
					require.NoError(b, err)
					b.StopTimer()
					require.NoError(b, e.hv.DestroyDomain(ctx, dom))
					b.StartTimer()
				}
			})
		}
	}
}
