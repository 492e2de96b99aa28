package xensim

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xenckpt/xenckpt/domctl"
)

// shutdownCodeInvalid is Xen's SHUTDOWN_CODE_INVALID truncated to the
// 8-bit field getdomaininfo reports.
const shutdownCodeInvalid = 0xff

// vcpu is one virtual CPU.
type vcpu struct {
	// ctx is the vcpu_guest_context in the domain's layout: x86_64
	// (5168 bytes) for 64-bit PV and HVM domains, x86_32 (2800 bytes) for
	// 32-bit PV domains. Nil until first set (then it reads as zeroes).
	ctx               []byte
	pausedForShutdown bool
	online            bool
	ext               vcpuExt // pv_ext.go
}

// domain is one simulated Xen domain. Fields are guarded by Xen.mu unless
// noted.
type domain struct {
	id       domctl.DomID
	handle   [16]byte
	hvm      bool
	addrBits int // 64 or 32 (PV only; HVM reports 64)
	created  time.Time

	maxVCPUs int
	// noVCPUs: created by XEN_DOMCTL_createdomain and not yet given its
	// vCPUs by XEN_DOMCTL_max_vcpus (Xen 4.17 allocates them only there):
	// vCPU and HVM context loads fail with EINVAL, as in hvm_load_cpu_ctxt.
	noVCPUs   bool
	vcpus     []vcpu
	maxPages  uint64
	hvmCtx    []byte
	hvmParams map[uint32]uint64
	tsc       domctl.TSCInfo

	controllerPause int
	dying           bool
	shuttingDown    bool
	shutDown        bool
	shutdownCode    uint8

	suspendEvtchn uint32
	ports         map[uint32]*evtPort
	nextPort      uint32

	// Memory. populated and maxGPFN are guarded by Xen.mu; mem is
	// immutable after creation until the domain is gone.
	mem       *guestMem
	populated []uint64 // bitmap of populated gfns
	// Frame 0 of the domain's (v1) grant table lives in the memfd page
	// mem.grantPage() while it is not in the physmap; grantGFN is where
	// XENMEM_add_to_physmap put it (grantMapped).
	grantGFN    uint64
	grantMapped bool
	totPages    uint64
	maxGPFN     uint64 // highest gfn ever populated

	// PV frames (pv.go). machine: the domain's frames are machine frames
	// (MFN != PFN), translated by mfnOf (pfn -> mfn, invalidMFN for
	// none) and m2p (the host's M2P). ptype holds the page-table
	// type of a pfn (XEN_DOMCTL_PFINFO_L*TAB, | LPINTAB when pinned).
	machine  bool
	mfnOf    []uint64
	m2p      *machineM2P
	ptype    map[uint64]uint32
	mappings int // live foreign mappings

	// Log-dirty: the bitmap words are updated atomically so that guest
	// writes need no lock.
	logDirty   atomic.Bool
	dirty      []uint64
	dirtyCount atomic.Uint64
	faultCount atomic.Uint64

	// exec serialises the simulated vCPU's work against pause: a
	// simulated kernel holds it while it runs, so pausing waits for the
	// current step to finish, as vcpu_pause waits for a vCPU to deschedule.
	exec sync.Mutex
	// runnable mirrors canRun for lock-free checks under exec.
	runnable atomic.Bool
	// changed is closed (and replaced) whenever the run state changes.
	changed chan struct{}

	kernel *kernel // the simulated kernel running in this domain, if any
}

func (d *domain) width() int {
	if !d.hvm && d.addrBits == 32 {
		return 4
	}
	return 8
}

func (d *domain) ctxSize() int {
	if d.width() == 4 {
		return ctxSize32
	}
	return ctxSize64
}

// canRun: the vCPUs may execute.
func (d *domain) canRun() bool {
	if d.dying || d.controllerPause > 0 || d.shuttingDown || len(d.vcpus) == 0 {
		return false
	}
	return !d.vcpus[0].pausedForShutdown
}

// stateChanged recomputes runnable and wakes waiters. Call with Xen.mu held.
func (d *domain) stateChanged() {
	d.runnable.Store(d.canRun())
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *domain) isPopulated(gfn uint64) bool {
	return gfn < d.mem.limit && d.populated[gfn/64]&(1<<(gfn%64)) != 0
}

// markDirty records a write to gfn for log-dirty.
func (d *domain) markDirty(gfn uint64) {
	if !d.logDirty.Load() || gfn >= uint64(len(d.dirty))*64 {
		return
	}
	w := &d.dirty[gfn/64]
	bit := uint64(1) << (gfn % 64)
	for {
		old := atomic.LoadUint64(w)
		if old&bit != 0 {
			return
		}
		if atomic.CompareAndSwapUint64(w, old, old|bit) {
			d.dirtyCount.Add(1)
			return
		}
	}
}

// vcpuCtx returns vCPU v's context bytes, allocating zeroes on first use.
func (d *domain) vcpuCtx(v int) []byte {
	if d.vcpus[v].ctx == nil {
		d.vcpus[v].ctx = make([]byte, d.ctxSize())
	}
	return d.vcpus[v].ctx
}

// setSuspendRegs writes what SCHEDOP_shutdown leaves in vCPU0's saved frame:
// rax = 0 (the hypercall's return) and, for PV, rdx = the start_info frame.
func (d *domain) setSuspendRegs(rdx uint64) {
	if d.hvm {
		if cpu := hvmCPURecord(d.hvmCtx, 0); cpu != nil {
			binary.LittleEndian.PutUint64(cpu[hvmCPURaxOff:], 0)
		}
		return
	}
	c := d.vcpuCtx(0)
	if d.width() == 4 {
		binary.LittleEndian.PutUint32(c[ctx32EaxOff:], 0)
		binary.LittleEndian.PutUint32(c[ctx32EdxOff:], uint32(rdx))
		return
	}
	binary.LittleEndian.PutUint64(c[ctx64RaxOff:], 0)
	binary.LittleEndian.PutUint64(c[ctx64RdxOff:], rdx)
}

// returnValue is what a kernel sees as its suspend hypercall's result: rax
// (eax sign-extended for 32-bit PV) of vCPU0, or of the HVM context's CPU
// record for HVM/PVH.
func (d *domain) returnValue() int64 {
	if d.hvm {
		if cpu := hvmCPURecord(d.hvmCtx, 0); cpu != nil {
			return int64(binary.LittleEndian.Uint64(cpu[hvmCPURaxOff:]))
		}
		return 0
	}
	c := d.vcpuCtx(0)
	if d.width() == 4 {
		return int64(int32(binary.LittleEndian.Uint32(c[ctx32EaxOff:])))
	}
	return int64(binary.LittleEndian.Uint64(c[ctx64RaxOff:]))
}

func (d *domain) info(flagsDying bool) domctl.DomainInfo {
	var flags uint32
	if d.dying && flagsDying {
		flags |= domctl.DomInfDying
	}
	if d.hvm {
		flags |= domctl.DomInfHVMGuest | domctl.DomInfHAP
	}
	if d.shutDown {
		flags |= domctl.DomInfShutdown
	}
	if d.controllerPause > 0 {
		flags |= domctl.DomInfPaused
	}
	if d.canRun() {
		flags |= domctl.DomInfRunning
	} else {
		flags |= domctl.DomInfBlocked
	}
	if d.id == 0 {
		flags |= domctl.DomInfXSDomain
	}
	flags |= uint32(d.shutdownCode) << 16
	online := uint32(0)
	for _, v := range d.vcpus {
		if v.online {
			online++
		}
	}
	return domctl.DomainInfo{
		Domain:          d.id,
		Flags:           flags,
		TotPages:        d.totPages,
		MaxPages:        d.maxPages,
		SharedInfoFrame: sharedInfoFrame(d),
		CPUTime:         uint64(time.Since(d.created)),
		NrOnlineVCPUs:   online,
		MaxVCPUID:       uint32(max(len(d.vcpus), 1) - 1),
		Handle:          d.handle,
		GPAddrBits:      52,
	}
}

// sharedInfoFrame is a machine frame for the domain's shared_info page (a
// Xen heap page on real Xen); below 4 GiB so 32-bit start_info holds it.
func sharedInfoFrame(d *domain) uint64 { return 0xFE000 + uint64(d.id)%0x1000 }

// errno helpers, named for the Xen error they model.
var (
	errESRCH  = syscall.ESRCH
	errEINVAL = syscall.EINVAL
	errEFAULT = syscall.EFAULT
	errENOSYS = syscall.ENOSYS
	errEACCES = syscall.EACCES
)

// waitOffCPU returns once the simulated kernel has finished its current
// step, as vcpu_pause waits for a vCPU to be descheduled: the kernel holds
// exec while it runs and rechecks runnable when it takes it again.
func (d *domain) waitOffCPU() {
	d.exec.Lock()
	//lint:ignore SA2001 the empty critical section is the barrier
	d.exec.Unlock()
}
