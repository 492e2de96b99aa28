//go:build amd64 || arm64

package abi_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/internal/abi/abicheck"
	"github.com/xenckpt/xenckpt/internal/testutil"
)

// structTypes maps the Go name of every generated struct to its type.
var structTypes = map[string]reflect.Type{}

func reg[T any](name string) {
	structTypes[name] = reflect.TypeFor[T]()
}

func init() {
	reg[abi.PrivcmdHypercall]("PrivcmdHypercall")
	reg[abi.PrivcmdMmapbatchV2]("PrivcmdMmapbatchV2")
	reg[abi.IoctlEvtchnBindVirq]("IoctlEvtchnBindVirq")
	reg[abi.IoctlEvtchnBindInterdomain]("IoctlEvtchnBindInterdomain")
	reg[abi.IoctlEvtchnBindUnboundPort]("IoctlEvtchnBindUnboundPort")
	reg[abi.IoctlEvtchnUnbind]("IoctlEvtchnUnbind")
	reg[abi.IoctlEvtchnNotify]("IoctlEvtchnNotify")
	reg[abi.IoctlEvtchnRestrictDomid]("IoctlEvtchnRestrictDomid")
	reg[abi.Domctl]("Domctl")
	reg[abi.DomctlCreateDomain]("DomctlCreateDomain")
	reg[abi.ArchDomainConfig]("ArchDomainConfig")
	reg[abi.DomctlGetDomainInfo]("DomctlGetDomainInfo")
	reg[abi.DomctlGetPageFrameInfo3]("DomctlGetPageFrameInfo3")
	reg[abi.DomctlShadowOp]("DomctlShadowOp")
	reg[abi.DomctlShadowOpStats]("DomctlShadowOpStats")
	reg[abi.DomctlMaxMem]("DomctlMaxMem")
	reg[abi.DomctlMaxVCPUs]("DomctlMaxVCPUs")
	reg[abi.DomctlVCPUContext]("DomctlVCPUContext")
	reg[abi.DomctlHVMContext]("DomctlHVMContext")
	reg[abi.DomctlAddressSize]("DomctlAddressSize")
	reg[abi.DomctlTSCInfo]("DomctlTSCInfo")
	reg[abi.DomctlSubscribe]("DomctlSubscribe")
	reg[abi.VCPUGuestContextX86_64]("VCPUGuestContextX86_64")
	reg[abi.CPUUserRegsX86_64]("CPUUserRegsX86_64")
	reg[abi.TrapInfoX86_64]("TrapInfoX86_64")
	reg[abi.VCPUGuestContextX86_32]("VCPUGuestContextX86_32")
	reg[abi.CPUUserRegsX86_32]("CPUUserRegsX86_32")
	reg[abi.TrapInfoX86_32]("TrapInfoX86_32")
	reg[abi.StartInfoX86_64]("StartInfoX86_64")
	reg[abi.StartInfoX86_32]("StartInfoX86_32")
	reg[abi.HVMSaveDescriptor]("HVMSaveDescriptor")
	reg[abi.HVMSaveHeader]("HVMSaveHeader")
	reg[abi.HVMHWCPU]("HVMHWCPU")
	reg[abi.HVMParam]("HVMParam")
	reg[abi.MemoryReservation]("MemoryReservation")
	reg[abi.AddToPhysmap]("AddToPhysmap")
	reg[abi.RemoveFromPhysmap]("RemoveFromPhysmap")
	reg[abi.GrantEntryV1]("GrantEntryV1")
	reg[abi.EvtchnAllocUnbound]("EvtchnAllocUnbound")
	reg[abi.SchedShutdown]("SchedShutdown")
	reg[abi.SchedRemoteShutdown]("SchedRemoteShutdown")
	reg[abi.MMUUpdate]("MMUUpdate")
	reg[abi.DomctlVCPUExtState]("DomctlVCPUExtState")
	reg[abi.DomctlVCPUMSRs]("DomctlVCPUMSRs")
	reg[abi.DomctlVCPUMSR]("DomctlVCPUMSR")
	reg[abi.DomctlExtVCPUContext]("DomctlExtVCPUContext")
	reg[abi.DomctlCPUPolicy]("DomctlCPUPolicy")
	reg[abi.CPUIDLeaf]("CPUIDLeaf")
	reg[abi.MSREntry]("MSREntry")
	reg[abi.MMUExtOp]("MMUExtOp")
	reg[abi.GnttabSetupTable]("GnttabSetupTable")
	reg[abi.SharedInfoX86_64]("SharedInfoX86_64")
	reg[abi.VCPUInfoX86_64]("VCPUInfoX86_64")
	reg[abi.ArchVCPUInfoX86_64]("ArchVCPUInfoX86_64")
	reg[abi.VCPUTimeInfoX86_64]("VCPUTimeInfoX86_64")
	reg[abi.ArchSharedInfoX86_64]("ArchSharedInfoX86_64")
	reg[abi.SharedInfoX86_32]("SharedInfoX86_32")
	reg[abi.VCPUInfoX86_32]("VCPUInfoX86_32")
	reg[abi.ArchVCPUInfoX86_32]("ArchVCPUInfoX86_32")
	reg[abi.VCPUTimeInfoX86_32]("VCPUTimeInfoX86_32")
	reg[abi.ArchSharedInfoX86_32]("ArchSharedInfoX86_32")
}

// TestLayout compares every generated struct's size and every field's
// offset and size with what the C compiler computes from the headers.
func TestLayout(t *testing.T) {
	rows := abicheck.Table()
	if rows == nil {
		// A deliberate build mode (the library needs no cgo), not a
		// missing component: the cgo job runs this test.
		t.Skip("built without cgo; run with CGO_ENABLED=1, gcc and libxen-dev")
	}
	seen := map[string]bool{}
	for _, r := range rows {
		typ, ok := structTypes[r.GoType]
		if !assert.Truef(t, ok, "C table names %s, which the test does not know", r.GoType) {
			continue
		}
		seen[r.GoType] = true
		if r.Index < 0 {
			assert.Equalf(t, r.Size, typ.Size(), "sizeof %s", r.GoType)
			continue
		}
		if !assert.Lessf(t, r.Index, typ.NumField(), "%s has no field %d (C %s)", r.GoType, r.Index, r.CField) {
			continue
		}
		f := typ.Field(r.Index)
		assert.Equalf(t, r.Offset, f.Offset, "offsetof %s.%s (C %s)", r.GoType, f.Name, r.CField)
		assert.Equalf(t, r.Size, f.Type.Size(), "sizeof %s.%s (C %s)", r.GoType, f.Name, r.CField)
	}
	for name := range structTypes {
		assert.Truef(t, seen[name], "%s has no C layout rows", name)
	}
}

// TestLayoutFacts pins the numbers other code and XEN-NOTES rely on, so a
// regeneration against different headers cannot change them silently.
func TestLayoutFacts(t *testing.T) {
	var d abi.Domctl
	assert.EqualValues(t, 144, unsafe.Sizeof(d))
	assert.EqualValues(t, 16, unsafe.Offsetof(d.U))
	assert.EqualValues(t, abi.DomctlUnionSize, len(d.U))

	var v64 abi.VCPUGuestContextX86_64
	assert.EqualValues(t, 5168, unsafe.Sizeof(v64))
	assert.EqualValues(t, 600, unsafe.Offsetof(v64.UserRegs)+unsafe.Offsetof(v64.UserRegs.Rax))
	assert.EqualValues(t, 616, unsafe.Offsetof(v64.UserRegs)+unsafe.Offsetof(v64.UserRegs.Rdx))
	assert.EqualValues(t, 648, unsafe.Offsetof(v64.UserRegs)+unsafe.Offsetof(v64.UserRegs.Rip))
	var v32 abi.VCPUGuestContextX86_32
	assert.EqualValues(t, 2800, unsafe.Sizeof(v32))
	assert.EqualValues(t, 540, unsafe.Offsetof(v32.UserRegs)+unsafe.Offsetof(v32.UserRegs.Eax))
	assert.EqualValues(t, 524, unsafe.Offsetof(v32.UserRegs)+unsafe.Offsetof(v32.UserRegs.Edx))

	var gi abi.DomctlGetDomainInfo
	assert.EqualValues(t, 112, unsafe.Sizeof(gi))
	var so abi.DomctlShadowOp
	assert.EqualValues(t, 40, unsafe.Sizeof(so))
	assert.EqualValues(t, 16, unsafe.Offsetof(so.DirtyBitmap))
	assert.EqualValues(t, 0x305000, abi.IOCTL_PRIVCMD_HYPERCALL)
	assert.EqualValues(t, 0x205004, abi.IOCTL_PRIVCMD_MMAPBATCH_V2)
	assert.EqualValues(t, 0x84501, abi.IOCTL_EVTCHN_BIND_INTERDOMAIN)
	assert.EqualValues(t, 0x15, abi.XEN_DOMCTL_INTERFACE_VERSION)
	var si64 abi.StartInfoX86_64
	assert.EqualValues(t, 1168, unsafe.Sizeof(si64))
	var si32 abi.StartInfoX86_32
	assert.EqualValues(t, 1112, unsafe.Sizeof(si32))

	var mu abi.MMUUpdate
	assert.EqualValues(t, 16, unsafe.Sizeof(mu))
	var me abi.MMUExtOp
	assert.EqualValues(t, 24, unsafe.Sizeof(me))
	assert.EqualValues(t, 8, unsafe.Offsetof(me.Arg1))
	var sh64 abi.SharedInfoX86_64
	assert.EqualValues(t, 3136, unsafe.Sizeof(sh64))
	assert.EqualValues(t, 3088, unsafe.Offsetof(sh64.Arch))

	// Every union payload (abi.go's payload type set) fits in the union.
	for _, n := range []string{"DomctlCreateDomain", "DomctlGetDomainInfo", "DomctlGetPageFrameInfo3",
		"DomctlShadowOp", "DomctlMaxMem", "DomctlMaxVCPUs", "DomctlVCPUContext", "DomctlHVMContext",
		"DomctlAddressSize", "DomctlTSCInfo", "DomctlSubscribe", "DomctlVCPUExtState", "DomctlVCPUMSRs",
		"DomctlCPUPolicy", "DomctlExtVCPUContext"} {
		assert.LessOrEqualf(t, structTypes[n].Size(), uintptr(abi.DomctlUnionSize), "%s fits xen_domctl.u", n)
	}
}

func TestPointer(t *testing.T) {
	buf := make([]byte, 16)
	p := abi.BufferPointer(buf)
	assert.Equal(t, uint64(uintptr(unsafe.Pointer(&buf[0]))), p.Addr())
	assert.False(t, p.IsNull())
	assert.True(t, abi.BufferPointer(nil).IsNull())
	assert.EqualValues(t, 8, unsafe.Sizeof(p))
	runtime.KeepAlive(buf)
}

func TestViewAndPayload(t *testing.T) {
	var d abi.Domctl
	info := abi.DomctlPayload[abi.DomctlGetDomainInfo](&d)
	info.Domain = 7
	info.TotPages = 0x1122334455667788
	raw := abi.Bytes(&d)
	require.Len(t, raw, 144)
	assert.Equal(t, []byte{7, 0}, raw[16:18])
	assert.Equal(t, []byte{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}, raw[24:32])

	assert.Panics(t, func() { abi.View[abi.Domctl](make([]byte, 100)) })
}

// TestGeneratedFresh regenerates the ABI files and compares them with the
// committed ones.
func TestGeneratedFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerates with cgo; skipped in -short")
	}
	testutil.RequireCommand(t, "gcc", "apt-get install gcc")
	testutil.RequireCommand(t, "bash", "install bash")
	testutil.RequireFile(t, "/usr/include/xen/domctl.h", "apt-get install libxen-dev")
	out := t.TempDir()
	cmd := exec.Command("bash", "mkabi.sh", out)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "mkabi.sh: %s", msg)
	for _, f := range []string{"ztypes_le64.go", filepath.Join("abicheck", "zlayout.go")} {
		want, err := os.ReadFile(filepath.Join(out, f))
		require.NoError(t, err)
		have, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.Equalf(t, string(want), string(have), "%s is stale: run go generate ./internal/abi", f)
	}
}
