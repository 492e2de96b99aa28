package xensim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xenstore"
)

// Kind is the type of a simulated guest.
type Kind uint32

// Guest kinds.
const (
	// PV64 is a 64-bit PV guest: vCPU contexts in the x86_64 layout,
	// start_info at frame 1, rdx = start_info frame at suspend.
	PV64 Kind = iota
	// PV32 is a 32-bit PV guest (address size 32): x86_32 contexts, eax/edx.
	PV32
	// PVH is an HVM-container guest: its return value lives in the CPU
	// record of the HVM context; rdx = 0 at suspend.
	PVH
)

// width is the word size of a guest of kind k (start_info, p2m entries):
// 4 for PV32, else 8.
func (k Kind) width() int {
	if k == PV32 {
		return 4
	}
	return 8
}

func (k Kind) String() string {
	switch k {
	case PV64:
		return "pv64"
	case PV32:
		return "pv32"
	case PVH:
		return "pvh"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Convention is how a simulated kernel interprets the value its suspend
// hypercall returns.
type Convention uint32

// Conventions.
const (
	// ConventionSeed is the seed protocol: the guest writes the "sc"
	// capability token into start_info.magic[]; 0 = suspend cancelled
	// (continue), positive = restored in a new domain (reconnect),
	// negative = the suspend failed (continue).
	ConventionSeed Convention = iota
	// ConventionLinux is upstream Linux: nonzero (1) = cancelled or merely
	// checkpointed (continue); 0 = new domain (reconnect xenstore, re-read
	// start_info).
	ConventionLinux
	// ConventionLegacy cannot cancel: whatever the value, it reconnects as
	// after a restore (it needs the slow resume path).
	ConventionLegacy
)

func (c Convention) String() string {
	switch c {
	case ConventionSeed:
		return "seed"
	case ConventionLinux:
		return "linux"
	case ConventionLegacy:
		return "legacy"
	}
	return "convention(" + strconv.Itoa(int(c)) + ")"
}

// Behaviour selects how a simulated kernel answers a suspend request.
type Behaviour uint32

// Behaviours.
const (
	// Normal acknowledges and suspends.
	Normal Behaviour = iota
	// NeverAcknowledge ignores control/shutdown and the suspend event
	// channel.
	NeverAcknowledge
	// AcknowledgeOnly acknowledges but never suspends (a failed freeze).
	AcknowledgeOnly
	// CrashOnSuspend acknowledges, then shuts down with SHUTDOWN_crash.
	CrashOnSuspend
	// Disappear acknowledges, then its domain is destroyed.
	Disappear
	// CorruptReturn suspends normally but mishandles the returned value:
	// it overwrites its counter with CorruptCounter and carries on.
	CorruptReturn
)

func (b Behaviour) String() string {
	switch b {
	case Normal:
		return "normal"
	case NeverAcknowledge:
		return "never-acknowledge"
	case AcknowledgeOnly:
		return "acknowledge-only"
	case CrashOnSuspend:
		return "crash-on-suspend"
	case Disappear:
		return "disappear"
	case CorruptReturn:
		return "corrupt-return"
	}
	return "behaviour(" + strconv.Itoa(int(b)) + ")"
}

// CorruptCounter is the value a CorruptReturn guest writes to its counter.
const CorruptCounter = 0xDEADBEEFDEADBEEF

// GuestState is what a simulated kernel is doing.
type GuestState int32

// Guest states.
const (
	// GuestNone: no simulated kernel runs in the domain (never booted, or
	// gone).
	GuestNone GuestState = iota
	// GuestRunning: running (possibly paused by the toolstack).
	GuestRunning
	// GuestSuspended: inside its suspend hypercall, waiting to be resumed.
	GuestSuspended
	// GuestCrashed: it shut down with SHUTDOWN_crash.
	GuestCrashed
	// GuestBroken: it resumed believing its old connections were valid
	// in a domain where they are not (a cancel value given to a restored
	// guest); it runs but its xenstore connection is dead.
	GuestBroken
	// GuestExited: its domain was destroyed.
	GuestExited
)

func (s GuestState) String() string {
	switch s {
	case GuestNone:
		return "none"
	case GuestRunning:
		return "running"
	case GuestSuspended:
		return "suspended"
	case GuestCrashed:
		return "crashed"
	case GuestBroken:
		return "broken"
	case GuestExited:
		return "exited"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// GuestConfig describes a simulated guest for Host.CreateGuest. The zero
// value is a 4 MiB, 1-vCPU, 64-bit PV guest with the seed convention.
type GuestConfig struct {
	// Name is the xenstore name; empty means "guest<domid>".
	Name string
	// Kind is the guest type; zero is PV64.
	Kind Kind
	// Convention is how the kernel reads its suspend return; zero is seed.
	Convention Convention
	// Behaviour is how it answers suspend requests; zero is Normal.
	Behaviour Behaviour
	// Pages is the memory size in 4 KiB frames; zero means 1024 (4 MiB).
	// At least 8; PV guests are raised to hold their page tables and p2m
	// above 4 data pages (15 or 16 frames for small guests).
	Pages uint64
	// VCPUs is the number of vCPUs; zero means 1.
	VCPUs int
	// DirtyRate is how many data pages per second the kernel writes
	// (round robin over its memory); zero means none.
	DirtyRate int
	// SuspendEventChannel makes the kernel allocate a suspend event
	// channel and advertise it in device/suspend/event-channel; a
	// notification on it then suspends the guest.
	SuspendEventChannel bool
	// Tick is the period of the kernel's work loop (counter increment and
	// page dirtying); zero means 1 ms.
	Tick time.Duration
	// Handle is the domain handle (UUID); zero derives one from the kernel
	// id.
	Handle [16]byte
}

// Layout of the guest's memory (the "boot ROM" convention; see the
// package doc).
const (
	headerPFN    = 0 // kernel header
	startInfoPFN = 1 // start_info (PV); a start_info-format page for PVH
	storePFN     = 2 // xenstore ring frame (not used as a ring)
	consolePFN   = 3 // console ring frame
	firstDataPFN = 4 // pages a kernel dirties

	headerMagic = "XSIMKRN1"

	hMagic      = 0   // [8]byte headerMagic
	hKernelID   = 8   // u64
	hKind       = 16  // u32 Kind
	hConvention = 20  // u32 Convention
	hBehaviour  = 24  // u32 Behaviour
	hFlags      = 28  // u32 flag bits
	hDirtyRate  = 32  // u64 pages/s
	hCounter    = 40  // u64 incremented every tick
	hReconnects = 48  // u64 xenstore reconnections after a new-domain resume
	hLastReturn = 56  // i64 last value the suspend hypercall returned
	hSuspends   = 64  // u64 suspend hypercalls made
	hState      = 72  // u32: 0 running, 1 inside the suspend hypercall
	hPages      = 80  // u64 end of the data pages (PV: page tables and p2m lie above)
	hCursor     = 88  // u64 next data page to dirty
	hTickNs     = 96  // u64 tick period
	hPVPages    = 104 // u64 PV: memory size the page tables and p2m cover (pv.go); 0: none

	flagSuspendEvtchn = 1 << 0

	stateRunning    = 0
	stateSuspending = 1
)

var nextKernelID atomic.Uint64

// kernel is the simulated kernel running in one domain: a goroutine acting
// as the domain's vCPUs.
type kernel struct {
	h         *Host
	d         *domain
	state     atomic.Int32
	connected atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	evt       chan struct{} // suspend event channel notifications

	// Owned by the run goroutine.
	xs          *xenstore.Client
	watch       *xenstore.Watch
	endWatch    context.CancelFunc // ends watch's ctx (also ended by stop)
	needConnect bool
	recheck     bool // a control/shutdown read failed: look again next tick
	lastTry     time.Time
	acc         float64
}

// header accessors: all run with the guest's memory alive.

func (d *domain) headerLE64(off int) (uint64, bool) {
	var v uint64
	ok := d.mem.with(func(all []byte) { v = binary.LittleEndian.Uint64(all[headerPFN*PageSize+off:]) })
	return v, ok
}

func (d *domain) putHeaderLE64(off int, v uint64) {
	d.mem.with(func(all []byte) { binary.LittleEndian.PutUint64(all[headerPFN*PageSize+off:], v) })
	d.markDirty(headerPFN)
}

func (d *domain) headerLE32(off int) uint32 {
	var v uint32
	d.mem.with(func(all []byte) { v = binary.LittleEndian.Uint32(all[headerPFN*PageSize+off:]) })
	return v
}

func (d *domain) putHeaderLE32(off int, v uint32) {
	d.mem.with(func(all []byte) { binary.LittleEndian.PutUint32(all[headerPFN*PageSize+off:], v) })
	d.markDirty(headerPFN)
}

func (d *domain) hasKernelHeader() bool {
	if !d.isPopulated(headerPFN) {
		return false
	}
	ok := false
	d.mem.with(func(all []byte) { ok = string(all[hMagic:hMagic+8]) == headerMagic })
	return ok
}

// boot starts a simulated kernel in d if its memory holds a kernel header.
// It is the hypervisor's boot hook: called when a domain becomes runnable
// without a kernel.
func (h *Host) boot(d *domain) {
	k := &kernel{h: h, d: d, stop: make(chan struct{}), done: make(chan struct{}), evt: make(chan struct{}, 1)}
	h.x.mu.Lock()
	// Close sets closed and then collects the kernels under mu: a kernel
	// is either collected (and stopped) or never started, and it is
	// counted before Close can wait.
	if d.kernel != nil || d.dying || h.x.closed.Load() || !d.hasKernelHeader() {
		h.x.mu.Unlock()
		return
	}
	d.kernel = k
	h.wg.Add(1)
	h.x.mu.Unlock()
	k.state.Store(int32(GuestRunning))
	go func() {
		defer h.wg.Done()
		k.run()
	}()
}

func (k *kernel) ctx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-k.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (k *kernel) run() {
	defer close(k.done)
	defer k.disconnect()
	d := k.d
	if d.headerLE32(hState) == stateSuspending {
		// Booted from a saved image: we are returning from the suspend
		// hypercall in a new domain.
		k.returned(false)
	} else {
		k.needConnect = true
		if k.convention() == ConventionSeed {
			k.advertiseSeed()
		}
	}
	tick := time.Duration(0)
	if v, ok := d.headerLE64(hTickNs); ok {
		tick = time.Duration(v)
	}
	if tick <= 0 {
		tick = time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if k.gone() {
			k.state.Store(int32(GuestExited))
			return
		}
		k.h.x.mu.Lock()
		changed := d.changed
		k.h.x.mu.Unlock()
		if !d.runnable.Load() {
			select {
			case <-k.stop:
				return
			case <-changed:
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if k.needConnect && time.Since(k.lastTry) > 5*time.Millisecond {
			k.connect()
		}
		var events <-chan xenstore.Event
		if k.watch != nil {
			events = k.watch.Events()
		}
		select {
		case <-k.stop:
			return
		case <-changed:
		case <-t.C:
			k.tick(tick)
			if k.recheck {
				k.recheck = false
				k.controlEvent()
			}
		case _, ok := <-events:
			if !ok {
				k.watch = nil
				continue
			}
			k.controlEvent()
		case <-k.evt:
			if k.behaviour() != NeverAcknowledge {
				k.suspend()
			}
		}
	}
}

// width is the guest's word size for start_info: 4 for PV32, else 8.
func (k *kernel) width() int { return Kind(k.d.headerLE32(hKind)).width() }

// startInfo reads the start_info page (frame 1).
func (k *kernel) startInfo() (magic.StartInfo, error) {
	var si magic.StartInfo
	err := errNoMemory
	// Read the width first: mem.with must not nest (a second RLock waits
	// behind a pending Lock, e.g. the destroy closing the memory, which
	// waits for the first: a deadlock).
	w := k.width()
	k.d.mem.with(func(all []byte) {
		si, err = magic.DecodeStartInfo(all[startInfoPFN*PageSize:(startInfoPFN+1)*PageSize], w)
	})
	return si, err
}

var errNoMemory = errors.New("guest memory is gone")

// advertiseSeed adds the seed protocol's capability token to
// start_info.magic[], as a seed kernel does at boot.
func (k *kernel) advertiseSeed() {
	d := k.d
	d.exec.Lock()
	defer d.exec.Unlock()
	si, err := k.startInfo()
	if err != nil {
		return
	}
	m, err := si.ParseMagic()
	if err != nil || m.SuspendCancel {
		return
	}
	m.SuspendCancel = true
	b, err := m.Format()
	if err != nil {
		return
	}
	d.mem.with(func(all []byte) { copy(all[startInfoPFN*PageSize:], b[:]) })
	d.markDirty(startInfoPFN)
}

func (k *kernel) gone() bool {
	x := k.h.x
	x.mu.Lock()
	defer x.mu.Unlock()
	return k.d.dying || x.doms[k.d.id] != k.d
}

func (k *kernel) behaviour() Behaviour   { return Behaviour(k.d.headerLE32(hBehaviour)) }
func (k *kernel) convention() Convention { return Convention(k.d.headerLE32(hConvention)) }

// tick is one step of guest work: bump the counter and dirty pages.
func (k *kernel) tick(period time.Duration) {
	d := k.d
	d.exec.Lock()
	defer d.exec.Unlock()
	if !d.runnable.Load() {
		return
	}
	c, ok := d.headerLE64(hCounter)
	if !ok {
		return
	}
	d.putHeaderLE64(hCounter, c+1)
	rate, _ := d.headerLE64(hDirtyRate)
	if rate == 0 {
		return
	}
	k.acc += float64(rate) * period.Seconds()
	n := int(k.acc)
	k.acc -= float64(n)
	pages, _ := d.headerLE64(hPages)
	if pages <= firstDataPFN {
		return
	}
	cur, _ := d.headerLE64(hCursor)
	for i := 0; i < n; i++ {
		pfn := firstDataPFN + cur%(pages-firstDataPFN)
		cur++
		d.mem.with(func(all []byte) {
			binary.LittleEndian.PutUint64(all[pfn*PageSize:], c+1)
			binary.LittleEndian.PutUint64(all[pfn*PageSize+8:], cur)
		})
		d.markDirty(pfn)
	}
	d.putHeaderLE64(hCursor, cur)
}

func (k *kernel) domPath() string { return "/local/domain/" + strconv.Itoa(int(k.d.id)) }

// connect (re)establishes the kernel's xenstore connection as its domain,
// advertises its features and watches control/shutdown. While the domain
// is not introduced it is retried from the run loop.
func (k *kernel) connect() {
	k.lastTry = time.Now()
	k.disconnect()
	xs, err := k.h.xs.Client(uint32(k.d.id))
	if err != nil {
		return
	}
	ctx, cancel := k.ctx()
	defer cancel()
	p := k.domPath()
	if err := xs.Write(ctx, p+"/control/feature-suspend", []byte("1")); err != nil {
		xs.Close()
		return
	}
	if k.d.headerLE32(hFlags)&flagSuspendEvtchn != 0 {
		port, err := k.h.x.allocUnbound(k.d.id, 0)
		if err == nil {
			k.h.x.setPortHandler(k.d.id, port, k.notifyEvtchn)
			err = xs.Write(ctx, p+"/device/suspend/event-channel", []byte(strconv.Itoa(int(port))))
		}
		if err != nil {
			xs.Close()
			return
		}
	}
	// The watch lives until disconnect, or until Host.Close stops the
	// kernel: a registration that never gets its reply cannot hold up
	// Close.
	wctx, endWatch := k.ctx()
	w, err := xs.Watch(wctx, p+"/control/shutdown")
	if err != nil {
		endWatch()
		xs.Close()
		return
	}
	k.xs, k.watch, k.endWatch = xs, w, endWatch
	k.needConnect = false
	k.connected.Store(true)
}

func (k *kernel) disconnect() {
	k.connected.Store(false)
	if k.watch != nil {
		_ = k.watch.Close()
		k.watch = nil
	}
	if k.endWatch != nil {
		k.endWatch()
		k.endWatch = nil
	}
	if k.xs != nil {
		_ = k.xs.Close()
		k.xs = nil
	}
}

func (k *kernel) notifyEvtchn() {
	select {
	case k.evt <- struct{}{}:
	default:
	}
}

// controlEvent handles a change of control/shutdown the way Linux's
// manage.c does: read it in a transaction, acknowledge a command it
// handles by writing "", then run the handler.
func (k *kernel) controlEvent() {
	if k.xs == nil || k.behaviour() == NeverAcknowledge {
		return
	}
	ctx, cancel := k.ctx()
	defer cancel()
	path := k.domPath() + "/control/shutdown"
	var cmd string
	err := k.xs.Transaction(ctx, func(tx *xenstore.Tx) error {
		v, err := tx.Read(ctx, path)
		if err != nil {
			return err
		}
		cmd = string(v)
		if cmd != "suspend" {
			return nil
		}
		return tx.Write(ctx, path, nil)
	})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case errors.Is(err, net.ErrClosed):
		k.needConnect = true
		return
	case err != nil:
		k.recheck = true // e.g. a transaction that kept conflicting
		return
	}
	if cmd != "suspend" {
		return
	}
	k.suspend()
}

// suspend is do_suspend: freeze, then SCHEDOP_shutdown(SHUTDOWN_suspend).
func (k *kernel) suspend() {
	d, x := k.d, k.h.x
	switch k.behaviour() {
	case AcknowledgeOnly:
		return
	case CrashOnSuspend:
		d.exec.Lock()
		_ = x.shutdown(d.id, shutdownCrash, 0, true)
		d.exec.Unlock()
		k.state.Store(int32(GuestCrashed))
		return
	case Disappear:
		_ = x.destroy(d.id)
		return
	}
	d.exec.Lock()
	if !d.runnable.Load() {
		d.exec.Unlock()
		return // paused under our feet: the request is lost, as on a real guest
	}
	n, _ := d.headerLE64(hSuspends)
	d.putHeaderLE64(hSuspends, n+1)
	d.putHeaderLE32(hState, stateSuspending)
	rdx := uint64(0)
	if l, ok := k.pvLayout(); ok {
		// Linux's xen_pv_pre_suspend: start_info's store and console
		// frames become pfns, and the hypercall gets start_info's MFN.
		k.canonicalise(l, false)
		d.mem.with(func(all []byte) { rdx = l.p2mEntry(all, startInfoPFN) })
	} else if !d.hvm {
		rdx = startInfoPFN
	}
	k.state.Store(int32(GuestSuspended))
	_ = x.shutdown(d.id, shutdownSuspend, rdx, true)
	d.exec.Unlock()
	// Blocked in the hypercall until resumed (or gone).
	for {
		x.mu.Lock()
		changed, run := d.changed, d.canRun()
		x.mu.Unlock()
		if run {
			break
		}
		if k.gone() {
			k.state.Store(int32(GuestExited))
			return
		}
		select {
		case <-k.stop:
			return
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
	k.returned(true)
}

// returned handles the suspend hypercall's return value. sameDomain is
// false when this kernel was booted from a saved image.
func (k *kernel) returned(sameDomain bool) {
	d, x := k.d, k.h.x
	x.mu.Lock()
	v := d.returnValue()
	x.mu.Unlock()
	d.exec.Lock()
	defer d.exec.Unlock()
	d.putHeaderLE64(hLastReturn, uint64(v))
	d.putHeaderLE32(hState, stateRunning)
	k.state.Store(int32(GuestRunning))
	if k.behaviour() == CorruptReturn {
		d.putHeaderLE64(hCounter, CorruptCounter)
	}
	var cancelled bool
	switch k.convention() {
	case ConventionSeed:
		cancelled = v <= 0
	case ConventionLinux:
		cancelled = v != 0
	case ConventionLegacy:
		cancelled = false
	}
	l, pv := k.pvLayout()
	if cancelled {
		if !sameDomain {
			k.state.Store(int32(GuestBroken))
		} else if pv {
			k.canonicalise(l, true) // xen_pv_post_suspend(cancelled)
		}
		return
	}
	// A new domain: re-read start_info (PV); a guest whose start_info
	// did not survive cannot find its xenstore ring: its store frame
	// must be the MFN its (toolstack-updated) p2m gives the store pfn.
	if !d.hvm {
		want := uint64(storePFN)
		if pv {
			d.mem.with(func(all []byte) { want = l.p2mEntry(all, storePFN) })
		}
		if si, err := k.startInfo(); err != nil || si.StoreMFN != want {
			k.state.Store(int32(GuestBroken))
			return
		}
	}
	if pv {
		d.mem.with(func(all []byte) { l.rebuildP2MRoot(all, d.mem.sharedInfoPage()) })
	}
	r, _ := d.headerLE64(hReconnects)
	d.putHeaderLE64(hReconnects, r+1)
	k.needConnect = true
}

// Guest is a handle on the simulated kernel of one domain of a Host. Its
// accessors read the kernel's state from guest memory, so they show the
// same guest after a restore into another domain (get that domain's
// handle with Host.Guest). Safe for concurrent use.
type Guest struct {
	h   *Host
	dom domctl.DomID
}

// ErrNoKernel is returned for a domain whose memory holds no simulated
// kernel, or that is gone.
var ErrNoKernel = errors.New("xensim: no simulated kernel in domain")

// Domain returns the guest's domain id.
func (g *Guest) Domain() domctl.DomID { return g.dom }

func (g *Guest) domain() *domain {
	g.h.x.mu.Lock()
	defer g.h.x.mu.Unlock()
	return g.h.x.doms[g.dom]
}

func (g *Guest) header64(off int) uint64 {
	d := g.domain()
	if d == nil {
		return 0
	}
	v, _ := d.headerLE64(off)
	return v
}

// ID is the kernel's identity, chosen at CreateGuest and kept in memory:
// the same after restore or migration.
func (g *Guest) ID() uint64 { return g.header64(hKernelID) }

// Counter is the tick counter in guest memory: it grows while the guest
// runs and proves continuity across checkpoint, restore and migration.
func (g *Guest) Counter() uint64 { return g.header64(hCounter) }

// Reconnects is how many times the kernel reconnected after being told it
// runs in a new domain.
func (g *Guest) Reconnects() uint64 { return g.header64(hReconnects) }

// Suspends is how many suspend hypercalls the kernel made.
func (g *Guest) Suspends() uint64 { return g.header64(hSuspends) }

// LastSuspendReturn is the value the last suspend hypercall returned
// (rax, or eax sign-extended).
func (g *Guest) LastSuspendReturn() int64 { return int64(g.header64(hLastReturn)) }

// State is what the kernel is doing now.
func (g *Guest) State() GuestState {
	d := g.domain()
	if d == nil {
		return GuestExited
	}
	g.h.x.mu.Lock()
	k := d.kernel
	g.h.x.mu.Unlock()
	if k == nil {
		return GuestNone
	}
	return GuestState(k.state.Load())
}

// WaitCounter blocks until Counter exceeds n, polling every millisecond.
func (g *Guest) WaitCounter(ctx context.Context, n uint64) error {
	for g.Counter() <= n {
		if g.domain() == nil {
			return fmt.Errorf("waiting for guest in domain %d: %w", g.dom, ErrNoKernel)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for guest counter of domain %d to pass %d: %w", g.dom, n, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// WaitState blocks until State is s, polling every millisecond.
func (g *Guest) WaitState(ctx context.Context, s GuestState) error {
	for g.State() != s {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for guest in domain %d to be %v (is %v): %w", g.dom, s, g.State(), ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// WaitConnected blocks until the kernel has a xenstore connection and has
// advertised control/feature-suspend.
func (g *Guest) WaitConnected(ctx context.Context) error {
	for {
		d := g.domain()
		if d == nil {
			return fmt.Errorf("waiting for guest in domain %d: %w", g.dom, ErrNoKernel)
		}
		g.h.x.mu.Lock()
		k := d.kernel
		g.h.x.mu.Unlock()
		if k != nil && k.connected.Load() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for guest in domain %d to connect: %w", g.dom, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

func domPathOf(dom domctl.DomID) string { return "/local/domain/" + strconv.Itoa(int(dom)) }
