package domctl_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// unhex decodes a golden byte string written with spaces for readability.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}

// le64 is the little-endian encoding of v, for golden bytes.
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func TestNewConnProbesVersions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		accept  uint32 // the version the hypervisor speaks; 0: none
		want    uint32
		wantErr bool
	}{
		{"4.17", 0x15, 0x15, false},
		{"4.18", 0x16, 0x16, false},
		{"4.19", 0x17, 0x17, false},
		{"master", 0x18, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(t)
			r.respond = func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
				d := domctlIn(args, mem)
				if d.InterfaceVersion != tc.accept {
					return 0, syscall.EACCES
				}
				return 0, nil
			}
			c, err := domctl.NewConn(r, nil)
			var tried []uint32
			for _, call := range r.calls {
				d := domctlOf(t, call)
				assert.EqualValues(t, abi.XEN_DOMCTL_getdomaininfo, d.Cmd)
				assert.EqualValues(t, 0, d.Domain)
				tried = append(tried, d.InterfaceVersion)
			}
			if tc.wantErr {
				require.Error(t, err)
				assert.ErrorIs(t, err, domctl.ErrInterfaceVersion)
				var ive *domctl.InterfaceVersionError
				require.ErrorAs(t, err, &ive)
				assert.Equal(t, []uint32{0x15, 0x16, 0x17}, ive.Tried)
				assert.Contains(t, err.Error(), "0x15, 0x16, 0x17")
				assert.Equal(t, []uint32{0x15, 0x16, 0x17}, tried)
				return
			}
			require.NoError(t, err)
			defer c.Close()
			assert.Equal(t, tc.want, c.InterfaceVersion())
			assert.Equal(t, tc.want, tried[len(tried)-1])
		})
	}
}

func TestNewConnOtherErrorStopsProbe(t *testing.T) {
	r := newRecorder(t)
	r.respond = func(uint64, [5]uint64, func(uint64, int) []byte) (uint64, error) { return 0, syscall.EPERM }
	_, err := domctl.NewConn(r, &domctl.Config{InterfaceVersions: []uint32{0x15, 0x16}})
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.EPERM)
	assert.NotErrorIs(t, err, domctl.ErrInterfaceVersion)
	assert.Len(t, r.calls, 1)
	assert.Empty(t, r.bufs, "buffers leaked after a failed NewConn")
}

func TestPauseGolden(t *testing.T) {
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		return 0, nil
	})
	require.NoError(t, c.Pause(context.Background(), 7))
	require.Len(t, r.calls, 1)
	want := unhex(t, `03000000 15000000 0700 000000000000`)
	want = append(want, make([]byte, 128)...)
	assert.Equal(t, want, r.calls[0].bufs[0][:144])
	assert.EqualValues(t, abi.HYPERVISOR_domctl, r.calls[0].op)
}

func TestSimpleCommands(t *testing.T) {
	var cmds []uint32
	c, _ := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		cmds = append(cmds, domctlIn(args, mem).Cmd)
		return 0, nil
	})
	ctx := context.Background()
	require.NoError(t, c.Pause(ctx, 3))
	require.NoError(t, c.Unpause(ctx, 3))
	require.NoError(t, c.ResumeDomain(ctx, 3))
	require.NoError(t, c.DestroyDomain(ctx, 3))
	assert.Equal(t, []uint32{3, 4, 27, 2}, cmds)
}

func TestDestroyRetriesEAGAIN(t *testing.T) {
	n := 0
	c, _ := newConn(t, func(uint64, [5]uint64, func(uint64, int) []byte) (uint64, error) {
		n++
		if n < 3 {
			return 0, syscall.EAGAIN
		}
		return 0, nil
	})
	require.NoError(t, c.DestroyDomain(context.Background(), 4))
	assert.Equal(t, 3, n)
}

func TestDomainInfoDecode(t *testing.T) {
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		// Xen's answer, as bytes at the offsets of XEN-NOTES §5.2.
		u := d.U[:]
		copy(u[0:], []byte{5, 0})                          // domain
		binary.LittleEndian.PutUint32(u[4:], 0x2000c|1<<3) // shutdown(suspend), paused
		binary.LittleEndian.PutUint64(u[8:], 1000)         // tot_pages
		binary.LittleEndian.PutUint64(u[16:], 2000)        // max_pages
		binary.LittleEndian.PutUint64(u[48:], 0xabc)       // shared_info_frame
		binary.LittleEndian.PutUint64(u[56:], 99)          // cpu_time
		binary.LittleEndian.PutUint32(u[64:], 2)           // nr_online_vcpus
		binary.LittleEndian.PutUint32(u[68:], 1)           // max_vcpu_id
		copy(u[76:92], "0123456789abcdef")                 // handle
		binary.LittleEndian.PutUint32(u[92:], 3)           // cpupool
		u[96] = 40                                         // gpaddr_bits
		d.Domain = 5
		return 0, nil
	})
	info, err := c.DomainInfo(context.Background(), 5)
	require.NoError(t, err)
	want := domctl.DomainInfo{
		Domain: 5, Flags: 0x2000c | 1<<3, TotPages: 1000, MaxPages: 2000, SharedInfoFrame: 0xabc,
		CPUTime: 99, NrOnlineVCPUs: 2, MaxVCPUID: 1, CPUPool: 3, GPAddrBits: 40,
	}
	copy(want.Handle[:], "0123456789abcdef")
	assert.Equal(t, want, info)
	assert.True(t, info.Suspended())
	assert.True(t, info.Paused())
	req := unhex(t, `05000000 15000000 0500 000000000000`)
	assert.Equal(t, req, r.calls[0].bufs[0][:16])
}

func TestDomainInfoNoDomain(t *testing.T) {
	t.Run("4.17 next domain", func(t *testing.T) {
		c, _ := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
			d := domctlIn(args, mem)
			d.Domain = 9 // Xen 4.17 answers for the next domain
			abi.DomctlPayload[abi.DomctlGetDomainInfo](d).Domain = 9
			return 0, nil
		})
		_, err := c.DomainInfo(context.Background(), 7)
		require.Error(t, err)
		assert.ErrorIs(t, err, domctl.ErrNoDomain)
		var oe *domctl.OpError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, domctl.OpGetDomainInfo, oe.Op)
		assert.EqualValues(t, 7, oe.Domain)
	})
	t.Run("ESRCH", func(t *testing.T) {
		c, _ := newConn(t, func(uint64, [5]uint64, func(uint64, int) []byte) (uint64, error) {
			return 0, syscall.ESRCH
		})
		_, err := c.DomainInfo(context.Background(), 7)
		assert.ErrorIs(t, err, domctl.ErrNoDomain)
		assert.ErrorIs(t, err, syscall.ESRCH)
		assert.Equal(t, "getdomaininfo domain 7: no such domain: no such process", err.Error())
	})
}

func TestContextCheckedBeforeHypercall(t *testing.T) {
	c, r := newConn(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Pause(ctx, 1)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = c.MapForeign(ctx, 1, domctl.ProtRead, []uint64{1})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, r.calls)
}

func TestClosedConn(t *testing.T) {
	c, r := newConn(t, nil)
	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.Pause(context.Background(), 1), net.ErrClosed)
	assert.ErrorIs(t, c.Close(), net.ErrClosed)
	assert.Empty(t, r.calls)
	assert.Empty(t, r.bufs, "Close must free cached buffers")
}

func TestCreateDomainGolden(t *testing.T) {
	var cmds []uint32
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		cmds = append(cmds, d.Cmd)
		if d.Cmd == abi.XEN_DOMCTL_createdomain {
			d.Domain = 12
		}
		return 0, nil
	})
	var h [16]byte
	copy(h[:], "uuid-uuid-uuid-u")
	id, err := c.CreateDomain(context.Background(), domctl.CreateConfig{MaxVCPUs: 2, Handle: h, MaxMemKB: 524288, AddressSize: 32})
	require.NoError(t, err)
	assert.EqualValues(t, 12, id)
	assert.Equal(t, []uint32{abi.XEN_DOMCTL_createdomain, abi.XEN_DOMCTL_max_vcpus, abi.XEN_DOMCTL_max_mem, abi.XEN_DOMCTL_set_address_size}, cmds)
	u := r.calls[0].bufs[0][16:144]
	want := unhex(t, `00000000`)                                                                                         // ssidref
	want = append(want, h[:]...)                                                                                         // handle
	want = append(want, unhex(t, `00000000 00000000 02000000 ff030000 ffffffff ffffffff 01000000 00000000 00000000`)...) // flags(PV) iommu max_vcpus max_evtchn grant maptrack grant_opts vmtrace cpupool
	want = append(want, unhex(t, `00000000 00000000`)...)                                                                // arch: emulation_flags, misc_flags
	assert.Equal(t, want, u[:len(want)])
	assert.Equal(t, []byte{2, 0, 0, 0}, r.calls[1].bufs[0][16:20], "max_vcpus repeats createdomain's max_vcpus")
	assert.Equal(t, le64(524288), r.calls[2].bufs[0][16:24])
	assert.Equal(t, []byte{32, 0, 0, 0}, r.calls[3].bufs[0][16:20])
	assert.EqualValues(t, 12, domctlOf(t, r.calls[1]).Domain)
	assert.EqualValues(t, 12, domctlOf(t, r.calls[2]).Domain)
}

func TestCreateDomainUndoesOnFailure(t *testing.T) {
	var cmds []uint32
	c, _ := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		cmds = append(cmds, d.Cmd)
		switch d.Cmd {
		case abi.XEN_DOMCTL_createdomain:
			d.Domain = 12
		case abi.XEN_DOMCTL_max_mem:
			return 0, syscall.ENOMEM
		}
		return 0, nil
	})
	_, err := c.CreateDomain(context.Background(), domctl.CreateConfig{HVM: true, MaxMemKB: 1})
	assert.ErrorIs(t, err, syscall.ENOMEM)
	assert.Equal(t, []uint32{abi.XEN_DOMCTL_createdomain, abi.XEN_DOMCTL_max_vcpus, abi.XEN_DOMCTL_max_mem, abi.XEN_DOMCTL_destroydomain}, cmds)
}

func TestVCPUContextRoundTrip(t *testing.T) {
	for _, width := range []int{8, 4} {
		var set []byte
		c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
			d := domctlIn(args, mem)
			p := abi.DomctlPayload[abi.DomctlVCPUContext](d)
			size, _ := domctl.VCPUContextSize(width)
			ctx := mem(p.Ctxt.Addr(), size)
			switch d.Cmd {
			case abi.XEN_DOMCTL_getvcpucontext:
				if width == 8 {
					binary.LittleEndian.PutUint64(ctx[600:], 0)      // rax
					binary.LittleEndian.PutUint64(ctx[616:], 0x1234) // rdx
					binary.LittleEndian.PutUint64(ctx[648:], 0xffffffff81000000)
				} else {
					binary.LittleEndian.PutUint32(ctx[540:], 0)      // eax
					binary.LittleEndian.PutUint32(ctx[524:], 0x1234) // edx
				}
			case abi.XEN_DOMCTL_setvcpucontext:
				set = append([]byte(nil), ctx...)
			}
			return 0, nil
		})
		ctx := context.Background()
		vc, err := c.VCPUContext(ctx, 3, 0, width)
		require.NoError(t, err)
		assert.Equal(t, width, vc.Width)
		assert.Len(t, vc.Raw, map[int]int{8: 5168, 4: 2800}[width])
		assert.EqualValues(t, 0x1234, vc.RDX())
		assert.EqualValues(t, 0, vc.RAX())
		if width == 8 {
			assert.EqualValues(t, uint64(0xffffffff81000000), vc.RIP())
		}
		req := domctlOf(t, r.calls[0])
		assert.EqualValues(t, abi.XEN_DOMCTL_getvcpucontext, req.Cmd)
		assert.Equal(t, []byte{0, 0, 0, 0}, req.U[0:4], "vcpu")

		vc.SetRAX(1)
		require.NoError(t, c.SetVCPUContext(ctx, 3, 0, vc))
		if width == 8 {
			assert.Equal(t, le64(1), set[600:608])
		} else {
			assert.Equal(t, []byte{1, 0, 0, 0}, set[540:544])
		}
		assert.Equal(t, vc.Raw, set)
	}
}

func TestSetVCPUContextNilResets(t *testing.T) {
	c, r := newConn(t, func(uint64, [5]uint64, func(uint64, int) []byte) (uint64, error) { return 0, nil })
	require.NoError(t, c.SetVCPUContext(context.Background(), 3, 1, nil))
	d := domctlOf(t, r.calls[0])
	p := abi.DomctlPayload[abi.DomctlVCPUContext](d)
	assert.EqualValues(t, 1, p.VCPU)
	assert.Equal(t, make([]byte, 8), d.U[8:16], "null context handle")
}

func TestVCPUContextAccessors(t *testing.T) {
	_, err := domctl.NewVCPUContext(8, make([]byte, 100))
	assert.Error(t, err)
	_, err = domctl.NewVCPUContext(2, make([]byte, 5168))
	assert.Error(t, err)

	v, err := domctl.NewVCPUContext(8, make([]byte, 5168))
	require.NoError(t, err)
	v.SetRAX(0x1122334455667788)
	v.SetRDX(7)
	assert.Equal(t, le64(0x1122334455667788), v.Raw[600:608])
	assert.Equal(t, le64(7), v.Raw[616:624])
	assert.EqualValues(t, 0x1122334455667788, v.RAX())

	v32, err := domctl.NewVCPUContext(4, make([]byte, 2800))
	require.NoError(t, err)
	v32.SetRAX(0x1122334455667788)
	assert.Equal(t, []byte{0x88, 0x77, 0x66, 0x55}, v32.Raw[540:544])
	assert.Equal(t, make([]byte, 4), v32.Raw[544:548], "eax write must not spill")
	assert.EqualValues(t, 0x55667788, v32.RAX())
	v32.SetRDX(0xabc)
	assert.EqualValues(t, 0xabc, binary.LittleEndian.Uint32(v32.Raw[524:]))
}

func TestHVMContextSizeThenData(t *testing.T) {
	record := []byte("HVM records, any bytes")
	var stored []byte
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		p := abi.DomctlPayload[abi.DomctlHVMContext](d)
		switch d.Cmd {
		case abi.XEN_DOMCTL_gethvmcontext:
			if p.Buffer.IsNull() {
				p.Size = uint32(len(record)) + 10 // an upper bound
				return 0, nil
			}
			copy(mem(p.Buffer.Addr(), int(p.Size)), record)
			p.Size = uint32(len(record))
		case abi.XEN_DOMCTL_sethvmcontext:
			stored = append([]byte(nil), mem(p.Buffer.Addr(), int(p.Size))...)
		}
		return 0, nil
	})
	got, err := c.HVMContext(context.Background(), 2)
	require.NoError(t, err)
	assert.Equal(t, record, got)
	require.Len(t, r.calls, 2)
	assert.Equal(t, make([]byte, 16), domctlOf(t, r.calls[0]).U[:16], "size query: size 0, null buffer")
	require.NoError(t, c.SetHVMContext(context.Background(), 2, record))
	assert.Equal(t, record, stored)
}

func TestHVMParamGolden(t *testing.T) {
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op != abi.HYPERVISOR_hvm_op {
			return 0, syscall.ENOSYS
		}
		p := abi.View[abi.HVMParam](mem(args[1], 16))
		if args[0] == abi.HVMOP_get_param {
			p.Value = 0x1_0000_0005
		}
		return 0, nil
	})
	v, err := c.HVMParam(context.Background(), 6, abi.HVM_PARAM_CALLBACK_IRQ)
	require.NoError(t, err)
	assert.EqualValues(t, 0x1_0000_0005, v)
	assert.EqualValues(t, abi.HVMOP_get_param, r.calls[0].args[0])
	assert.Equal(t, unhex(t, `0600 0000 00000000 0000000000000000`), r.calls[0].bufs[1][:16])
	require.NoError(t, c.SetHVMParam(context.Background(), 6, abi.HVM_PARAM_STORE_EVTCHN, 3))
	assert.EqualValues(t, abi.HVMOP_set_param, r.calls[1].args[0])
	assert.Equal(t, unhex(t, `0600 0000 02000000 0300000000000000`), r.calls[1].bufs[1][:16])
}

func TestTSCInfoRoundTrip(t *testing.T) {
	var stored []byte
	c, _ := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		switch d.Cmd {
		case abi.XEN_DOMCTL_gettscinfo:
			copy(d.U[:], unhex(t, `01000000 40420f00 03000000 00000000 0500000000000000`))
		case abi.XEN_DOMCTL_settscinfo:
			stored = append([]byte(nil), d.U[:24]...)
		}
		return 0, nil
	})
	info, err := c.TSCInfo(context.Background(), 1)
	require.NoError(t, err)
	assert.Equal(t, domctl.TSCInfo{Mode: 1, GTSCKHz: 1000000, Incarnation: 3, ElapsedNsec: 5}, info)
	require.NoError(t, c.SetTSCInfo(context.Background(), 1, info))
	assert.Equal(t, unhex(t, `01000000 40420f00 03000000 00000000 0500000000000000`), stored)
}

func TestLogDirtyGolden(t *testing.T) {
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		p := abi.DomctlPayload[abi.DomctlShadowOp](d)
		if p.Op == abi.XEN_DOMCTL_SHADOW_OP_CLEAN || p.Op == abi.XEN_DOMCTL_SHADOW_OP_PEEK {
			bm := mem(p.DirtyBitmap.Addr(), int(p.Pages/8))
			bm[0] = 0x05 // pfns 0 and 2
			bm[9] = 0x80 // pfn 79
			p.Stats.FaultCount = 4
			p.Stats.DirtyCount = 3
			p.Pages = 100
		}
		return 0, nil
	})
	ctx := context.Background()
	require.NoError(t, c.EnableLogDirty(ctx, 8))
	bitmap := make([]uint64, 2)
	st, err := c.CleanDirty(ctx, 8, bitmap, true)
	require.NoError(t, err)
	assert.Equal(t, domctl.ShadowStats{FaultCount: 4, DirtyCount: 3, Pages: 100}, st)
	assert.Equal(t, []uint64{0x5, 1 << 15}, bitmap)
	_, err = c.PeekDirty(ctx, 8, bitmap)
	require.NoError(t, err)
	require.NoError(t, c.DisableLogDirty(ctx, 8))

	require.Len(t, r.calls, 4)
	enable := domctlOf(t, r.calls[0])
	assert.EqualValues(t, abi.XEN_DOMCTL_shadow_op, enable.Cmd)
	assert.Equal(t, unhex(t, `02000000 00000000 00000000 00000000 0000000000000000 0000000000000000`), enable.U[:32])

	clean := domctlOf(t, r.calls[1])
	var handle [8]byte
	copy(handle[:], clean.U[16:24])
	assert.NotEqual(t, [8]byte{}, handle, "bitmap handle")
	want := unhex(t, `0b000000 01000000 00000000 00000000`)
	want = append(want, handle[:]...)
	want = append(want, le64(128)...) // pages = bits in the bitmap
	assert.Equal(t, want, clean.U[:32])
	assert.EqualValues(t, abi.XEN_DOMCTL_SHADOW_OP_PEEK, binary.LittleEndian.Uint32(domctlOf(t, r.calls[2]).U[:]))
	assert.EqualValues(t, 0, binary.LittleEndian.Uint32(domctlOf(t, r.calls[2]).U[4:]), "PEEK has no FINAL")
	assert.EqualValues(t, abi.XEN_DOMCTL_SHADOW_OP_OFF, binary.LittleEndian.Uint32(domctlOf(t, r.calls[3]).U[:]))
}

func TestMemoryOps(t *testing.T) {
	var populated []uint64
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op != abi.HYPERVISOR_memory_op {
			return 0, syscall.ENOSYS
		}
		switch args[0] {
		case abi.XENMEM_maximum_gpfn:
			return 0xfffff, nil
		case abi.XENMEM_populate_physmap:
			res := abi.View[abi.MemoryReservation](mem(args[1], int(unsafe.Sizeof(abi.MemoryReservation{}))))
			arr := mem(res.ExtentStart.Addr(), int(res.NrExtents)*8)
			for i := range int(res.NrExtents) {
				populated = append(populated, binary.LittleEndian.Uint64(arr[i*8:]))
			}
			if res.NrExtents > 2 {
				return 2, nil
			}
			return res.NrExtents, nil
		}
		return 0, syscall.ENOSYS
	})
	ctx := context.Background()
	g, err := c.MaxGPFN(ctx, 9)
	require.NoError(t, err)
	assert.EqualValues(t, 0xfffff, g)
	assert.Equal(t, []byte{9, 0}, r.calls[0].bufs[1][:2])

	require.NoError(t, c.PopulatePhysmap(ctx, 9, []uint64{0x10, 0x20}))
	assert.Equal(t, []uint64{0x10, 0x20}, populated)
	res := r.calls[1].bufs[1]
	assert.Equal(t, le64(2), res[8:16], "nr_extents")
	assert.Equal(t, make([]byte, 8), res[16:24], "extent_order, mem_flags")
	assert.Equal(t, []byte{9, 0}, res[24:26], "domid")

	err = c.PopulatePhysmap(ctx, 9, []uint64{1, 2, 3})
	assert.ErrorIs(t, err, syscall.EBUSY)
}

func TestGrantTablePhysmapGolden(t *testing.T) {
	var ops []uint64
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op != abi.HYPERVISOR_memory_op {
			return 0, syscall.ENOSYS
		}
		ops = append(ops, args[0])
		return 0, nil
	})
	ctx := context.Background()
	require.NoError(t, c.MapGrantTable(ctx, 7, 0, 0x100001))
	require.NoError(t, c.RemoveFromPhysmap(ctx, 7, 0x100001))
	assert.Equal(t, []uint64{abi.XENMEM_add_to_physmap, abi.XENMEM_remove_from_physmap}, ops)
	// struct xen_add_to_physmap: domid, size, space, idx, gpfn (24 bytes).
	want := unhex(t, `0700 0000 01000000`)
	want = append(want, le64(0)...)
	want = append(want, le64(0x100001)...)
	assert.Equal(t, want, r.calls[0].bufs[1][:24])
	// struct xen_remove_from_physmap: domid, pad, gpfn (16 bytes).
	assert.Equal(t, []byte{7, 0}, r.calls[1].bufs[1][:2])
	assert.Equal(t, le64(0x100001), r.calls[1].bufs[1][8:16])
}

func TestPageFrameTypesBatches(t *testing.T) {
	var nums []uint64
	c, _ := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		p := abi.DomctlPayload[abi.DomctlGetPageFrameInfo3](d)
		nums = append(nums, p.Num)
		arr := mem(p.Array.Addr(), int(p.Num)*8)
		for i := range int(p.Num) {
			g := binary.LittleEndian.Uint64(arr[i*8:])
			typ := uint64(abi.XEN_DOMCTL_PFINFO_NOTAB)
			if g%2 == 1 {
				typ = abi.XEN_DOMCTL_PFINFO_XTAB
			}
			binary.LittleEndian.PutUint64(arr[i*8:], typ|g) // type bits over the gfn, as Xen may leave them
		}
		return 0, nil
	})
	gfns := make([]uint64, 1500)
	for i := range gfns {
		gfns[i] = uint64(i)
	}
	types := make([]uint32, len(gfns))
	require.NoError(t, c.PageFrameTypes(context.Background(), 2, gfns, types))
	assert.Equal(t, []uint64{1024, 476}, nums)
	assert.EqualValues(t, abi.XEN_DOMCTL_PFINFO_NOTAB, types[1000])
	assert.EqualValues(t, abi.XEN_DOMCTL_PFINFO_XTAB, types[1499])
	assert.Error(t, c.PageFrameTypes(context.Background(), 2, gfns, types[:3]))
}

func TestCapabilities(t *testing.T) {
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op != abi.HYPERVISOR_xen_version || args[0] != abi.XENVER_capabilities {
			return 0, syscall.ENOSYS
		}
		copy(mem(args[1], 1024), "xen-3.0-x86_64 hvm-3.0-x86_64\x00")
		return 0, nil
	})
	s, err := c.Capabilities(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "xen-3.0-x86_64 hvm-3.0-x86_64", s)
	assert.GreaterOrEqual(t, len(r.calls[0].bufs[1]), 1024)
}

func TestSubscribeAndAllocUnbound(t *testing.T) {
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op == abi.HYPERVISOR_event_channel_op && args[0] == abi.EVTCHNOP_alloc_unbound {
			a := abi.View[abi.EvtchnAllocUnbound](mem(args[1], 8))
			a.Port = 17
			return 0, nil
		}
		return 0, nil
	})
	ctx := context.Background()
	require.NoError(t, c.SubscribeSuspend(ctx, 5, 9))
	d := domctlOf(t, r.calls[0])
	assert.EqualValues(t, abi.XEN_DOMCTL_subscribe, d.Cmd)
	assert.Equal(t, []byte{9, 0, 0, 0}, d.U[:4])
	port, err := c.AllocUnboundEvtchn(ctx, 0, 5)
	require.NoError(t, err)
	assert.EqualValues(t, 17, port)
	assert.Equal(t, unhex(t, `0000 0500 00000000`), r.calls[1].bufs[1][:8])
}

func TestMapForeign(t *testing.T) {
	c, r := newConn(t, nil)
	r.mapErrs = []int32{0, -int32(syscall.ENOENT), 0}
	m, err := c.MapForeign(context.Background(), 4, domctl.ProtRead, []uint64{10, 11, 12})
	require.NoError(t, err)
	assert.Equal(t, 1, c.OpenMappings())
	assert.Equal(t, 3, m.Len())
	assert.Len(t, m.Bytes(), 3*4096)
	assert.NoError(t, m.Err(0))
	assert.ErrorIs(t, m.Err(1), syscall.ENOENT)
	assert.EqualValues(t, 12, binary.LittleEndian.Uint64(m.Page(2)))
	assert.Len(t, m.Page(2), 4096)
	require.NoError(t, m.Close())
	assert.Equal(t, 0, c.OpenMappings())
	assert.Empty(t, r.mapped)
	assert.ErrorIs(t, m.Close(), net.ErrClosed)
}

func TestEvtchn(t *testing.T) {
	c, r := newConn(t, nil)
	ctx := context.Background()
	ev, err := c.OpenEvtchn(ctx)
	require.NoError(t, err)
	port, err := ev.BindInterdomain(ctx, 6, 3)
	require.NoError(t, err)
	assert.EqualValues(t, 42, port)
	require.NoError(t, ev.Notify(42))
	require.NoError(t, ev.Unbind(42))
	dev := r.dev
	require.Len(t, dev.ioctls, 3)
	assert.Equal(t, ioctlCall{abi.IOCTL_EVTCHN_BIND_INTERDOMAIN, unhex(t, `06000000 03000000`)}, dev.ioctls[0])
	assert.Equal(t, ioctlCall{abi.IOCTL_EVTCHN_NOTIFY, unhex(t, `2a000000`)}, dev.ioctls[1])
	assert.Equal(t, ioctlCall{abi.IOCTL_EVTCHN_UNBIND, unhex(t, `2a000000`)}, dev.ioctls[2])

	dev.pending <- 42
	got, err := ev.Wait(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 42, got)
	require.NoError(t, ev.Unmask(42))
	assert.Equal(t, unhex(t, `2a000000`), dev.unmasks)

	wctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = ev.Wait(wctx)
	assert.ErrorIs(t, err, context.Canceled)

	require.NoError(t, ev.Close())
	assert.True(t, dev.closed)
	assert.ErrorIs(t, ev.Notify(1), net.ErrClosed)
}

func TestOpErrorFormat(t *testing.T) {
	err := &domctl.OpError{Op: domctl.OpPause, Domain: 3, Err: syscall.EPERM}
	assert.Equal(t, "pausedomain domain 3: operation not permitted", err.Error())
	assert.True(t, errors.Is(err, syscall.EPERM))
	err = &domctl.OpError{Op: domctl.OpCapabilities, Domain: domctl.DomIDInvalid, Err: syscall.EPERM}
	assert.Equal(t, "xen_version capabilities: operation not permitted", err.Error())
}

func TestEnableLogDirtyRetriesAfterOff(t *testing.T) {
	var ops []uint32
	c, _ := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		p := abi.DomctlPayload[abi.DomctlShadowOp](domctlIn(args, mem))
		ops = append(ops, p.Op)
		if len(ops) == 1 {
			return 0, syscall.EINVAL // already enabled
		}
		return 0, nil
	})
	require.NoError(t, c.EnableLogDirty(context.Background(), 3))
	assert.Equal(t, []uint32{abi.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, abi.XEN_DOMCTL_SHADOW_OP_OFF, abi.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY}, ops)

	ops = nil
	c2, _ := newConn(t, func(uint64, [5]uint64, func(uint64, int) []byte) (uint64, error) { return 0, syscall.ESRCH })
	assert.ErrorIs(t, c2.EnableLogDirty(context.Background(), 3), domctl.ErrNoDomain)
}

// TestConcurrentCallsAndClose: calls racing with Close either succeed or
// fail with net.ErrClosed, and no hypercall buffer outlives the Conn.
func TestConcurrentCallsAndClose(t *testing.T) {
	r := newRecorder(t)
	r.respond = func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		abi.DomctlPayload[abi.DomctlGetDomainInfo](d).Domain = d.Domain
		return 0, nil
	}
	c, err := domctl.NewConn(r, nil)
	require.NoError(t, err)
	done := make(chan error, 8)
	for range 8 {
		go func() {
			var err error
			for i := 0; i < 200 && err == nil; i++ {
				_, err = c.DomainInfo(context.Background(), 1)
			}
			done <- err
		}()
	}
	require.NoError(t, c.Close())
	for range 8 {
		if err := <-done; err != nil {
			assert.ErrorIs(t, err, net.ErrClosed)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Empty(t, r.bufs, "hypercall buffers leaked")
}
