package checkpoint_test

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/xensim"
)

// vcpuUp reports VGCF_online in vCPU v's context: Xen sets it unless the
// vCPU is down.
func vcpuUp(t *testing.T, e *env, dom domctl.DomID, v uint32, width int) bool {
	t.Helper()
	vc, err := e.hv.VCPUContext(testCtx(t), dom, v, width)
	require.NoError(t, err)
	return vc.Flags()&abi.VGCF_online != 0
}

// vcpuRecords lists the vCPU ids of an image's X86_PV_VCPU_BASIC records.
func vcpuRecords(t *testing.T, img []byte) []uint32 {
	t.Helper()
	var ids []uint32
	for _, r := range pvVCPURecords(t, img) { // pv_ext_test.go
		if r.t == stream.RecX86PVVCPUBasic {
			ids = append(ids, r.id)
		}
	}
	return ids
}

// TestOfflineVCPUs: a guest with a vCPU taken down (VCPUOP_down) is
// imaged as libxc does it: a PV guest with X86_PV_VCPU_BASIC records for
// the online vCPUs only, a PVH guest with CPU records in its HVM context
// for them only (Xen's hvm_save_cpu_ctxt skips a vCPU that is down); the
// xl config's avail_vcpus lists the online ones. The checkpointed original
// keeps the vCPU down, and so does the domain restored from the image,
// which runs on. PV in both of xensim's frame models: pfn == mfn, and
// machine frames (vCPU frames normalised).
func TestOfflineVCPUs(t *testing.T) {
	for _, tc := range []struct {
		kind    xensim.Kind
		width   int
		machine bool
	}{{xensim.PV64, 8, false}, {xensim.PV32, 4, false}, {xensim.PV64, 8, true}, {xensim.PV32, 4, true}, {xensim.PVH, 8, false}} {
		name := tc.kind.String()
		if tc.machine {
			name += "/machine-frames"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var e *env
			if tc.machine {
				e = machineEnv(t)
			} else {
				e = newEnv(t, nil)
			}
			conv := xensim.ConventionSeed
			if tc.kind == xensim.PVH {
				conv = xensim.ConventionLinux // PVH guests are never slow-resumed
			}
			g := e.guest(t, xensim.GuestConfig{Kind: tc.kind, Convention: conv, VCPUs: 3})
			ctx := testCtx(t)
			dom := g.Domain()
			require.NoError(t, g.SetVCPUOnline(1, false))
			require.False(t, vcpuUp(t, e, dom, 1, tc.width))

			var img bytes.Buffer
			_, err := e.c.Checkpoint(ctx, dom, &img, &checkpoint.SaveOptions{Resume: resumeOpts(conv)})
			require.NoError(t, err)
			if tc.kind == xensim.PVH {
				assert.Equal(t, []uint16{0, 2}, hvmCPURecords(t, img.Bytes()), "CPU records of online vCPUs only")
			} else {
				assert.Equal(t, []uint32{0, 2}, vcpuRecords(t, img.Bytes()), "online vCPUs only")
			}
			avail := regexp.MustCompile(`"avail_vcpus":\[[0-9,]*\]`).Find(img.Bytes()[:min(img.Len(), 1024)])
			assert.Equal(t, `"avail_vcpus":[0,2]`, string(avail), "the xl config lists the online vCPUs")
			e.requireRunning(t, g)
			info, err := e.hv.DomainInfo(ctx, dom)
			require.NoError(t, err)
			assert.EqualValues(t, 2, info.NrOnlineVCPUs, "the original keeps vCPU1 down")
			assert.False(t, vcpuUp(t, e, dom, 1, tc.width))

			rdom, err := e.c.Restore(ctx, bytes.NewReader(img.Bytes()), nil)
			require.NoError(t, err)
			info, err = e.hv.DomainInfo(ctx, rdom)
			require.NoError(t, err)
			assert.EqualValues(t, 2, info.MaxVCPUID, "all three vCPUs exist")
			assert.EqualValues(t, 2, info.NrOnlineVCPUs, "vCPU1 stays down after restore")
			assert.True(t, vcpuUp(t, e, rdom, 0, tc.width))
			assert.False(t, vcpuUp(t, e, rdom, 1, tc.width))
			assert.True(t, vcpuUp(t, e, rdom, 2, tc.width))
			rg := e.host.Guest(rdom)
			require.NoError(t, rg.WaitCounter(ctx, rg.Counter()+2), "the restored guest runs")
		})
	}
}

// hvmCPURecords lists the instances of the CPU records in an image's
// HVM_CONTEXT record (an hvm_save stream: descriptors of code, instance,
// length, each followed by its payload).
func hvmCPURecords(t *testing.T, img []byte) []uint16 {
	t.Helper()
	r := stream.NewReader(bytes.NewReader(img), nil)
	for {
		rec, err := r.Next()
		require.NoError(t, err, "no HVM_CONTEXT record")
		if rec.Kind != stream.KindLibxc || rec.Type != stream.RecHVMContext {
			continue
		}
		var cpus []uint16
		for b := rec.Body; len(b) >= 8; {
			code, inst, n := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]), binary.LittleEndian.Uint32(b[4:])
			require.LessOrEqual(t, 8+int(n), len(b))
			if code == abi.HVM_SAVE_CODE_CPU {
				cpus = append(cpus, inst)
			}
			b = b[8+n:]
		}
		return cpus
	}
}
