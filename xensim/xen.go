package xensim

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/xenckpt/xenckpt/domctl"
)

// xen is the simulated hypervisor: the domain table and every operation on
// it, at the Go level. The byte-level hypercall decoder (hypercall.go) and
// the simulated kernels (guest.go) both call into it.
type xen struct {
	mu      sync.Mutex
	closed  atomic.Bool
	doms    map[domctl.DomID]*domain
	version Version
	limit   uint64 // physmap limit in frames for new domains
	nextID  domctl.DomID

	// Machine frames (pv.go): how PV domains' frames are numbered, and
	// the allocators of the host-wide machine frame space.
	pvFrames PVFrames
	nextMFN  uint64 // order-0 frames handed out so far
	nextRun  uint64 // next frame of the contiguous (order > 0) region
	m2p      machineM2P

	bufs bufferRegistry

	mapMu    sync.Mutex
	mappings map[uintptr]*foreignMapping
	aliases  map[aliasKey][]*foreignMapping // read-only slices of guest memory

	devMu   sync.Mutex
	virqDev map[*evtchnDev]uint32 // devices bound to VIRQ_DOM_EXC -> port

	// domExc is called (without locks held) when VIRQ_DOM_EXC fires: a
	// domain shut down or disappeared.
	domExc func()
	// boot is called (without locks held) when a domain becomes runnable
	// and no kernel runs in it.
	boot func(d *domain)
}

func newXen(v Version, limit uint64, frames PVFrames) *xen {
	return &xen{
		pvFrames: frames,
		nextRun:  mfnRunBase,
		doms:     map[domctl.DomID]*domain{},
		version:  v,
		limit:    limit,
		nextID:   1,
		mappings: map[uintptr]*foreignMapping{},
		aliases:  map[aliasKey][]*foreignMapping{},
		virqDev:  map[*evtchnDev]uint32{},
	}
}

// createDomain makes a paused, empty domain. id 0 or ≥ DOMID_FIRST_RESERVED
// allocates the next free id; a taken id is EEXIST-like (Xen: EEXIST).
func (x *xen) createDomain(id domctl.DomID, hvm bool, maxVCPUs int, handle [16]byte) (*domain, error) {
	if maxVCPUs <= 0 {
		maxVCPUs = 1
	}
	if maxVCPUs > 128 {
		return nil, errEINVAL
	}
	mem, err := newGuestMem(x.limit)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if id == 0 || id >= domctl.DomIDFirstReserved {
		for {
			id = x.nextID
			x.nextID++
			if x.nextID >= domctl.DomIDFirstReserved {
				x.nextID = 1
			}
			if x.doms[id] == nil {
				break
			}
		}
	} else if x.doms[id] != nil {
		mem.close()
		return nil, errEEXIST
	}
	d := x.newDomainLocked(id, hvm, maxVCPUs, handle, mem)
	if !hvm && x.pvFrames == PVFramesMachine {
		d.machine = true
		d.m2p = &x.m2p
	}
	d.controllerPause = 1 // Xen creates domains paused by the toolstack
	d.stateChanged()
	return d, nil
}

func (x *xen) newDomainLocked(id domctl.DomID, hvm bool, maxVCPUs int, handle [16]byte, mem *guestMem) *domain {
	d := &domain{
		id:           id,
		handle:       handle,
		hvm:          hvm,
		addrBits:     64,
		created:      time.Now(),
		maxVCPUs:     maxVCPUs,
		vcpus:        make([]vcpu, maxVCPUs),
		hvmParams:    map[uint32]uint64{},
		ptype:        map[uint64]uint32{},
		shutdownCode: shutdownCodeInvalid,
		ports:        map[uint32]*evtPort{},
		nextPort:     1,
		mem:          mem,
		populated:    make([]uint64, (mem.limit+63)/64),
		dirty:        make([]uint64, (mem.limit+63)/64),
		changed:      make(chan struct{}),
		tsc:          domctl.TSCInfo{Mode: 0, GTSCKHz: 2000000, Incarnation: 0},
	}
	for i := range d.vcpus {
		d.vcpus[i].online = true
	}
	if hvm {
		d.hvmCtx = newHVMContext(maxVCPUs, d.tsc.GTSCKHz)
	}
	x.doms[id] = d
	return d
}

// lookup finds a live domain (dying ones too: Xen finds them by id until
// they are gone).
func (x *xen) lookupLocked(id domctl.DomID) (*domain, error) {
	d := x.doms[id]
	if d == nil {
		return nil, errESRCH
	}
	return d, nil
}

// domainInfo implements getdomaininfo. On 4.17 a missing id yields the
// next existing domain with a greater id (for_each_domain); on 4.18+ ESRCH.
func (x *xen) domainInfo(id domctl.DomID) (domctl.DomainInfo, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if d := x.doms[id]; d != nil {
		return d.info(true), nil
	}
	if !x.version.nextDomainSemantics() {
		return domctl.DomainInfo{}, errESRCH
	}
	var best *domain
	for _, d := range x.doms {
		if d.id > id && (best == nil || d.id < best.id) {
			best = d
		}
	}
	if best == nil {
		return domctl.DomainInfo{}, errESRCH
	}
	return best.info(true), nil
}

// lockTarget locks x and finds domain id for an operation the caller (dom0)
// may not apply to itself (EINVAL, as Xen refuses d == current->domain).
// On error the lock is released.
func (x *xen) lockTarget(id domctl.DomID) (*domain, error) {
	x.mu.Lock()
	d, err := x.lookupLocked(id)
	if err == nil && id == 0 {
		err = errEINVAL
	}
	if err != nil {
		x.mu.Unlock()
		return nil, err
	}
	return d, nil
}

func (x *xen) pause(id domctl.DomID) error {
	d, err := x.lockTarget(id)
	if err != nil {
		return err
	}
	if d.dying {
		err = errEINVAL
	}
	if err == nil && d.controllerPause >= 255 {
		err = errEOVERFLOW
	}
	if err != nil {
		x.mu.Unlock()
		return err
	}
	d.controllerPause++
	d.stateChanged()
	x.mu.Unlock()
	d.waitOffCPU()
	return nil
}

func (x *xen) unpause(id domctl.DomID) error {
	d, err := x.lockTarget(id)
	if err != nil {
		return err
	}
	if d.controllerPause == 0 {
		x.mu.Unlock()
		return errEINVAL
	}
	d.controllerPause--
	d.stateChanged()
	x.mu.Unlock()
	x.maybeBoot(d)
	return nil
}

// resume implements XEN_DOMCTL_resumedomain (domain_resume).
func (x *xen) resume(id domctl.DomID) error {
	d, err := x.lockTarget(id)
	if err != nil {
		return err
	}
	d.shuttingDown = false
	d.shutDown = false
	d.shutdownCode = shutdownCodeInvalid
	for i := range d.vcpus {
		d.vcpus[i].pausedForShutdown = false
	}
	d.stateChanged()
	x.mu.Unlock()
	x.maybeBoot(d)
	return nil
}

func (x *xen) maybeBoot(d *domain) {
	x.mu.Lock()
	ok := d.canRun() && d.kernel == nil && x.boot != nil
	x.mu.Unlock()
	if ok {
		x.boot(d)
	}
}

// shutdown implements domain_shutdown + __domain_finalise_shutdown: every
// vCPU is paused for shutdown and once all are paused the domain is shut
// down and either the suspend event channel or VIRQ_DOM_EXC fires. When
// the guest itself suspends (fromGuest), vCPU0's saved frame holds the
// hypercall's return, rax = 0, and (PV) rdx = the start_info frame it
// passed; a remote shutdown leaves the registers alone.
func (x *xen) shutdown(id domctl.DomID, reason uint8, rdx uint64, fromGuest bool) error {
	x.mu.Lock()
	d, err := x.lookupLocked(id)
	if err != nil {
		x.mu.Unlock()
		return err
	}
	if d.dying || d.shuttingDown {
		x.mu.Unlock()
		return nil
	}
	d.shuttingDown = true
	d.shutdownCode = reason
	for i := range d.vcpus {
		d.vcpus[i].pausedForShutdown = true
	}
	if reason == shutdownSuspend && fromGuest {
		d.setSuspendRegs(rdx)
	}
	d.shutDown = true
	d.stateChanged()
	var notify *evtPort
	if reason == shutdownSuspend && d.suspendEvtchn != 0 {
		notify = d.ports[d.suspendEvtchn]
	}
	x.mu.Unlock()
	if notify != nil {
		x.send(d, notify.port)
		return nil
	}
	x.fireDomExc()
	return nil
}

// destroy implements destroydomain: the domain becomes dying at once and
// disappears when the last foreign mapping of its memory is gone.
func (x *xen) destroy(id domctl.DomID) error {
	d, err := x.lockTarget(id)
	if err != nil {
		return err
	}
	if !d.dying {
		d.dying = true
		d.logDirty.Store(false)
		d.stateChanged()
		x.closePortsLocked(d)
	}
	gone := x.reapLocked(d)
	x.mu.Unlock()
	if gone {
		d.mem.close()
	}
	x.fireDomExc()
	return nil
}

// reapLocked removes a dying domain without mappings; true if removed.
func (x *xen) reapLocked(d *domain) bool {
	if !d.dying || d.mappings > 0 || x.doms[d.id] != d {
		return false
	}
	delete(x.doms, d.id)
	d.releaseFrames()
	return true
}

func (x *xen) fireDomExc() {
	x.devMu.Lock()
	devs := make(map[*evtchnDev]uint32, len(x.virqDev))
	for dev, port := range x.virqDev {
		devs[dev] = port
	}
	x.devMu.Unlock()
	for dev, port := range devs {
		dev.fire(port)
	}
	if x.domExc != nil {
		x.domExc()
	}
}

// domainState answers the embedded xenstored's question.
func (x *xen) domainState(id uint32) (exists, shutdown bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d := x.doms[domctl.DomID(id)]
	if d == nil || d.dying {
		return false, false
	}
	return true, d.shutDown
}

func (x *xen) close() {
	x.mu.Lock()
	doms := x.doms
	x.doms = map[domctl.DomID]*domain{}
	for _, d := range doms {
		d.dying = true
		d.stateChanged()
	}
	x.mu.Unlock()
	x.mapMu.Lock()
	for a, m := range x.mappings {
		_ = munmap(m.mem)
		delete(x.mappings, a)
	}
	clear(x.aliases) // unmapped with the domains' memory below
	x.mapMu.Unlock()
	for _, d := range doms {
		d.mem.close()
	}
	x.bufs.closeAll()
}
