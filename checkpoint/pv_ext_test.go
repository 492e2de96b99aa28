package checkpoint_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/xensim"
)

// vcpuExtra is a vCPU's X86_PV_VCPU_EXTENDED, _XSAVE and _MSRS blobs.
type vcpuExtra struct{ ext, xsave, msrs []byte }

// vcpuRec is one X86_PV_VCPU_* record of an image.
type vcpuRec struct {
	t    stream.RecordType
	id   uint32
	blob []byte
}

// pvVCPURecords lists an image's vCPU records in stream order.
func pvVCPURecords(t *testing.T, img []byte) []vcpuRec {
	t.Helper()
	return decodePV(t, img).recs
}

// readExtra reads vCPU v's state through the getters.
func readExtra(t *testing.T, hv *domctl.Conn, dom domctl.DomID, v uint32) vcpuExtra {
	t.Helper()
	ctx := testCtx(t)
	ext, err := hv.ExtVCPUContext(ctx, dom, v)
	require.NoError(t, err)
	xs, err := hv.VCPUExtState(ctx, dom, v)
	require.NoError(t, err)
	msrs, err := hv.VCPUMSRs(ctx, dom, v)
	require.NoError(t, err)
	return vcpuExtra{ext, xs, msrs}
}

// giveExtra gives vCPU v of dom distinctive extended state: SYSENTER
// callback, AVX xsave state with a marker, TSC_AUX and SPEC_CTRL.
func giveExtra(t *testing.T, hv *domctl.Conn, dom domctl.DomID, v uint32) vcpuExtra {
	t.Helper()
	ctx := testCtx(t)
	ext, err := hv.ExtVCPUContext(ctx, dom, v)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(ext), 30)
	binary.LittleEndian.PutUint64(ext[16:], 0xffff800000001000+uint64(v)) // sysenter_callback_eip
	binary.LittleEndian.PutUint16(ext[26:], 0xe033)                       // sysenter_callback_cs
	ext[29] = 1                                                           // sysenter_disables_events
	require.NoError(t, hv.SetExtVCPUContext(ctx, dom, ext))

	// xcr0 = xcr0_accum = x87|SSE|AVX: the area is 576+256 bytes.
	xs := make([]byte, 16+832)
	binary.LittleEndian.PutUint64(xs[0:], 7)
	binary.LittleEndian.PutUint64(xs[8:], 7)
	binary.LittleEndian.PutUint64(xs[16+512:], 7) // xstate_bv
	xs[16+160] = 0xa0 + byte(v)                   // XMM0
	xs[len(xs)-1] = 0xb0 + byte(v)                // YMM15's upper half
	require.NoError(t, hv.SetVCPUExtState(ctx, dom, v, xs))

	var msrs []byte
	for _, m := range [][2]uint64{{0x48, 1}, {0xc0000103, 0x100 + uint64(v)}} { // SPEC_CTRL, TSC_AUX
		msrs = binary.LittleEndian.AppendUint64(msrs, m[0])
		msrs = binary.LittleEndian.AppendUint64(msrs, m[1])
	}
	require.NoError(t, hv.SetVCPUMSRs(ctx, dom, v, msrs))
	got := readExtra(t, hv, dom, v)
	require.Equal(t, xs, got.xsave)
	require.Equal(t, msrs, got.msrs)
	return got
}

// TestPVSaveWritesExtendedVCPUState: a PV save writes, for each online
// vCPU and in libxc's order, X86_PV_VCPU_BASIC, _EXTENDED, _XSAVE and
// _MSRS with the vCPU's state (an offline vCPU gets none); Debian's
// verify-stream-v2 accepts the image; a restore gives the new domain's
// vCPUs that state.
func TestPVSaveWritesExtendedVCPUState(t *testing.T) {
	for _, k := range pvKinds {
		t.Run(k.String(), func(t *testing.T) {
			e := machineEnv(t)
			g := e.guest(t, xensim.GuestConfig{Kind: k, Convention: xensim.ConventionLinux, Pages: 64, VCPUs: 3})
			require.NoError(t, g.SetVCPUOnline(2, false))
			dom := g.Domain()
			want := map[uint32]vcpuExtra{0: giveExtra(t, e.hv, dom, 0), 1: giveExtra(t, e.hv, dom, 1)}
			ctx := testCtx(t)
			var img bytes.Buffer
			_, err := e.c.Save(ctx, dom, &img, &checkpoint.SaveOptions{Resume: resumeOpts(xensim.ConventionLinux)})
			require.NoError(t, err)

			var order []string
			for _, r := range pvVCPURecords(t, img.Bytes()) {
				order = append(order, fmt.Sprintf("%v/%d", r.t, r.id))
				w := want[r.id]
				switch r.t {
				case stream.RecX86PVVCPUExtended:
					assert.Equal(t, w.ext, r.blob, "vCPU %d extended context", r.id)
				case stream.RecX86PVVCPUXSave:
					assert.Equal(t, w.xsave, r.blob, "vCPU %d xsave", r.id)
				case stream.RecX86PVVCPUMSRs:
					assert.Equal(t, w.msrs, r.blob, "vCPU %d MSRs", r.id)
				}
			}
			assert.Equal(t, []string{
				"X86_PV_VCPU_BASIC/0", "X86_PV_VCPU_EXTENDED/0", "X86_PV_VCPU_XSAVE/0", "X86_PV_VCPU_MSRS/0",
				"X86_PV_VCPU_BASIC/1", "X86_PV_VCPU_EXTENDED/1", "X86_PV_VCPU_XSAVE/1", "X86_PV_VCPU_MSRS/1",
			}, order, "libxc's order; the offline vCPU 2 has no records")
			verifyImage(t, img.Bytes())

			nd, err := e.c.Restore(ctx, bytes.NewReader(img.Bytes()), &checkpoint.RestoreOptions{Resume: resumeOpts(xensim.ConventionLinux)})
			require.NoError(t, err)
			r := e.host.Guest(nd)
			require.NotNil(t, r)
			require.NoError(t, r.WaitConnected(ctx))
			for v, w := range want {
				assert.Equal(t, w, readExtra(t, e.hv, nd, v), "restored vCPU %d", v)
			}
			e.requireRunning(t, r)
		})
	}
}

// TestPVSaveVCPUsWithoutMSRs: a vCPU whose MSRs are all zero gets no
// X86_PV_VCPU_MSRS record (get_vcpu_msrs writes none), and a fresh vCPU's
// default xsave state is still saved.
func TestPVSaveVCPUsWithoutMSRs(t *testing.T) {
	e := machineEnv(t)
	g := e.guest(t, xensim.GuestConfig{Kind: xensim.PV64, Convention: xensim.ConventionLinux, Pages: 64})
	var img bytes.Buffer
	_, err := e.c.Checkpoint(testCtx(t), g.Domain(), &img, &checkpoint.SaveOptions{Resume: resumeOpts(xensim.ConventionLinux)})
	require.NoError(t, err)
	var types []stream.RecordType
	for _, r := range pvVCPURecords(t, img.Bytes()) {
		types = append(types, r.t)
		if r.t == stream.RecX86PVVCPUXSave {
			assert.EqualValues(t, 3, binary.LittleEndian.Uint64(r.blob[8:]), "xcr0_accum x87|SSE")
		}
	}
	assert.Equal(t, []stream.RecordType{stream.RecX86PVVCPUBasic, stream.RecX86PVVCPUExtended, stream.RecX86PVVCPUXSave}, types)
	verifyImage(t, img.Bytes())
	e.requireRunning(t, g)
}

// noMSRs is a hypervisor without XEN_DOMCTL_get_vcpu_msrs.
type noMSRs struct{ *domctl.Conn }

func (noMSRs) VCPUMSRs(context.Context, domctl.DomID, uint32) ([]byte, error) {
	return nil, &domctl.OpError{Op: domctl.OpGetVCPUMSRs, Err: syscall.ENOSYS}
}

// TestPVSaveFailsWithoutVCPUMSRs: as libxc, a save whose hypervisor cannot
// read a vCPU's MSRs fails (the error says why) and the guest keeps
// running.
func TestPVSaveFailsWithoutVCPUMSRs(t *testing.T) {
	e := machineEnv(t)
	g := e.guest(t, xensim.GuestConfig{Kind: xensim.PV64, Convention: xensim.ConventionLinux, Pages: 64})
	c := checkpoint.New(noMSRs{e.hv}, e.xs, &e.cfg)
	_, err := c.Save(testCtx(t), g.Domain(), io.Discard, &checkpoint.SaveOptions{Resume: resumeOpts(xensim.ConventionLinux)})
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ENOSYS)
	var op *domctl.OpError
	require.ErrorAs(t, err, &op)
	assert.Equal(t, domctl.OpGetVCPUMSRs, op.Op)
	e.requireRunning(t, g)
}
