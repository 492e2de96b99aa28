package xensim

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PageSize is the size of a guest frame (x86: 4 KiB).
const PageSize = 4096

const pageShift = 12

// mmapFixed maps length bytes of fd at offset over the existing mapping at
// addr (MAP_FIXED). x/sys/unix has no exported mmap taking an address.
func mmapFixed(addr uintptr, length uintptr, prot, flags, fd int, offset int64) error {
	r, _, e := unix.Syscall6(unix.SYS_MMAP, addr, length, uintptr(prot), uintptr(flags|unix.MAP_FIXED), uintptr(fd), uintptr(offset))
	if e != 0 {
		return e
	}
	if r != addr {
		return fmt.Errorf("mmap at %#x landed at %#x", addr, r)
	}
	return nil
}

func mmapAnon(length int, prot int) ([]byte, error) {
	return unix.Mmap(-1, 0, length, prot, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

func addrOf(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

func roundPages(n int) int { return (n + PageSize - 1) &^ (PageSize - 1) }

// region is one block of memory handed out by AllocBuffer.
type region struct {
	addr uintptr
	mem  []byte
}

// bufferRegistry tracks the hypercall buffers this simulator handed out, so
// that a guest handle (a virtual address) can be resolved to bytes, and an
// address that is not inside a buffer is refused with EFAULT, as Xen's
// copy_from_guest refuses an unmapped address.
type bufferRegistry struct {
	mu      sync.RWMutex
	regions []region // sorted by addr
}

func (r *bufferRegistry) alloc(size int) ([]byte, error) {
	if size <= 0 {
		return nil, syscall.EINVAL
	}
	mem, err := mmapAnon(roundPages(size), unix.PROT_READ|unix.PROT_WRITE)
	if err != nil {
		return nil, fmt.Errorf("allocating hypercall buffer: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := addrOf(mem)
	i := sort.Search(len(r.regions), func(i int) bool { return r.regions[i].addr >= a })
	r.regions = append(r.regions, region{})
	copy(r.regions[i+1:], r.regions[i:])
	r.regions[i] = region{addr: a, mem: mem}
	return mem[:size:size], nil
}

func (r *bufferRegistry) free(buf []byte) error {
	a := addrOf(buf)
	r.mu.Lock()
	i := sort.Search(len(r.regions), func(i int) bool { return r.regions[i].addr >= a })
	if i == len(r.regions) || r.regions[i].addr != a {
		r.mu.Unlock()
		return syscall.EINVAL
	}
	mem := r.regions[i].mem
	r.regions = append(r.regions[:i], r.regions[i+1:]...)
	r.mu.Unlock()
	return unix.Munmap(mem)
}

// resolve returns the n bytes at guest handle addr. They must lie wholly
// inside one buffer; otherwise EFAULT. The returned slice aliases the
// buffer: the caller must hold no reference after the hypercall returns.
func (r *bufferRegistry) resolve(addr uint64, n int) ([]byte, error) {
	if addr == 0 || n < 0 {
		return nil, syscall.EFAULT
	}
	a := uintptr(addr)
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := sort.Search(len(r.regions), func(i int) bool { return r.regions[i].addr > a }) - 1
	if i < 0 {
		return nil, syscall.EFAULT
	}
	reg := r.regions[i]
	off := a - reg.addr
	if off > uintptr(len(reg.mem)) || uintptr(n) > uintptr(len(reg.mem))-off {
		return nil, syscall.EFAULT
	}
	return reg.mem[off : off+uintptr(n) : off+uintptr(n)], nil
}

func (r *bufferRegistry) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, reg := range r.regions {
		_ = unix.Munmap(reg.mem)
	}
	r.regions = nil
}

// guestMem is a domain's physical memory: a memfd the size of the physmap
// limit (sparse: only populated pages use RAM), mapped once read-write for
// the simulator and the simulated kernel and once read-only for foreign
// mappings. A read-only MapForeign of a contiguous run of frames is a
// slice of ro (Xen maps guest frames into dom0 from memory it already
// holds; the simulator's equivalent is its own mapping); other foreign
// mappings map the memfd again, page run by page run. Either way a foreign
// mapping aliases guest memory without copying.
type guestMem struct {
	mu    sync.RWMutex // held for reading while all is used; close takes it
	fd    int
	limit uint64 // number of gfns the physmap can hold
	all   []byte // the whole memfd, MAP_SHARED, read-write
	ro    []byte // the whole memfd, MAP_SHARED, read-only
}

func newGuestMem(limit uint64) (*guestMem, error) {
	fd, err := unix.MemfdCreate("xensim-guest", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating guest memory: %w", err)
	}
	// Two pages past the physmap hold the domain's Xen pages: shared_info
	// (page limit) and frame 0 of its grant table (page limit+1).
	size := int64(limit+xenPages) << pageShift
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sizing guest memory: %w", err)
	}
	all, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mapping guest memory: %w", err)
	}
	ro, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Munmap(all)
		unix.Close(fd)
		return nil, fmt.Errorf("mapping guest memory: %w", err)
	}
	return &guestMem{fd: fd, limit: limit, all: all, ro: ro}, nil
}

// xenPages is the number of Xen-owned pages after the physmap in a
// domain's memfd: shared_info, then grant-table frame 0.
const xenPages = 2

// sharedInfoPage and grantPage are the Xen pages of the domain (page
// numbers in the memfd, past the physmap).
func (m *guestMem) sharedInfoPage() uint64 { return m.limit }
func (m *guestMem) grantPage() uint64      { return m.limit + 1 }

func (m *guestMem) page(gfn uint64) []byte {
	off := gfn << pageShift
	return m.all[off : off+PageSize : off+PageSize]
}

// allocate backs n frames from gfn with zeroed memory, as Xen allocates
// and scrubs at populate time (best effort: without it the frames are
// allocated on first touch). fallocate alone is not enough: shmem clears
// fallocated pages only when they are first mapped, which made a
// domain's first snapshot pay about 2 ms per 4 MiB for the zeroing;
// MADV_POPULATE_WRITE (Linux 5.14) faults them in here instead. The
// read-only alias gets its page-table entries now too
// (MADV_POPULATE_READ), so foreign reads neither fault page by page nor
// grow the process's RSS while a save runs.
func (m *guestMem) allocate(gfn, n uint64) {
	off, size := gfn<<pageShift, n<<pageShift
	m.with(func(all []byte) {
		if off+size > uint64(len(all)) || unix.Madvise(all[off:off+size], unix.MADV_POPULATE_WRITE) != nil {
			_ = unix.Fallocate(m.fd, 0, int64(off), int64(size))
			return
		}
		_ = unix.Madvise(m.ro[off:off+size], unix.MADV_POPULATE_READ)
	})
}

// alias returns the read-only alias of n file pages from page first, or
// nil when they are not all inside the memfd or the memory is gone. The
// caller holds a mapping reference on the domain, which keeps ro mapped
// (close runs only once the last mapping is released, or at Host.Close).
func (m *guestMem) alias(first, n uint64) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	off, size := first<<pageShift, n<<pageShift
	if m.ro == nil || off+size > uint64(len(m.ro)) || off+size < off {
		return nil
	}
	return m.ro[off : off+size : off+size]
}

// with runs fn on the whole physmap unless the memory is gone; it
// reports whether fn ran. fn must not call with again: a nested RLock
// deadlocks against a pending close.
func (m *guestMem) with(fn func(all []byte)) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.all == nil {
		return false
	}
	fn(m.all)
	return true
}

func (m *guestMem) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.all != nil {
		_ = unix.Munmap(m.all)
		m.all = nil
	}
	if m.ro != nil {
		_ = unix.Munmap(m.ro)
		m.ro = nil
	}
	if m.fd >= 0 {
		_ = unix.Close(m.fd)
		m.fd = -1
	}
}

// foreignMapping is one live MapForeign result.
type foreignMapping struct {
	dom   *domain
	mem   []byte
	gfns  []uint64 // the pfn of each frame (phys), for log-dirty
	phys  []bool   // mapped and in the physmap (log-dirty tracks it)
	write bool
	alias bool // a slice of the domain's read-only mapping: never munmapped
}

func putLE64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }
func putLE32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }
