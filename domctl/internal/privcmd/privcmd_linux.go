//go:build linux

package privcmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xenckpt/xenckpt/internal/abi"
)

const pageSize = 1 << abi.XEN_PAGE_SHIFT

// Device paths, in the order libxencall and libxenforeignmemory try them.
var (
	privcmdPaths  = []string{"/dev/xen/privcmd", "/proc/xen/privcmd"}
	hypercallPath = "/dev/xen/hypercall"
	evtchnPath    = "/dev/xen/evtchn"
)

// ENOENT retry of MMAPBATCH_V2 for paged-out frames: libxenforeignmemory
// sleeps 100µs between rounds and retries for as long as frames remain
// paged out; we give up after enoentRetryFor and leave -ENOENT in errs.
const (
	enoentRetryDelay = 100 * time.Microsecond
	enoentRetryFor   = 5 * time.Second
)

// Device is an open privcmd driver. It is safe for concurrent use.
type Device struct {
	privcmd *os.File
	// hypercall is /dev/xen/hypercall, or nil on kernels without it; then
	// buffers are locked anonymous memory, as libxencall does.
	hypercall *os.File

	// batch issues one MMAPBATCH_V2; tests replace it.
	batch func(dom uint16, mem []byte, gfns []uint64, errs []int32) error

	mu     sync.Mutex
	closed bool
}

// Open opens /dev/xen/privcmd and, when present, /dev/xen/hypercall.
func Open() (*Device, error) {
	var pc *os.File
	var err error
	for _, p := range privcmdPaths {
		pc, err = os.OpenFile(p, os.O_RDWR|syscall.O_CLOEXEC, 0)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening privcmd: %w", err)
	}
	d := &Device{privcmd: pc}
	d.batch = d.mmapBatch
	hc, err := os.OpenFile(hypercallPath, os.O_RDWR|syscall.O_CLOEXEC, 0)
	switch {
	case err == nil:
		d.hypercall = hc
	case errors.Is(err, os.ErrNotExist):
	default:
		pc.Close()
		return nil, fmt.Errorf("opening %s: %w", hypercallPath, err)
	}
	return d, nil
}

// Close closes the driver files. Buffers and mappings stay valid until
// freed or unmapped.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return os.ErrClosed
	}
	d.closed = true
	err := d.privcmd.Close()
	if d.hypercall != nil {
		err = errors.Join(err, d.hypercall.Close())
	}
	return err
}

// ioctl runs an ioctl on f with arg pointing at ABI memory.
func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var r uintptr
	var errno syscall.Errno
	cerr := rc.Control(func(fd uintptr) {
		r, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
	})
	if cerr != nil {
		return 0, cerr
	}
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// Hypercall issues IOCTL_PRIVCMD_HYPERCALL. Xen's -errno comes back as a
// syscall.Errno.
func (d *Device) Hypercall(op uint64, args [5]uint64) (uint64, error) {
	h := abi.PrivcmdHypercall{Op: op, Arg: args}
	r, err := ioctl(d.privcmd, abi.IOCTL_PRIVCMD_HYPERCALL, unsafe.Pointer(&h))
	return uint64(r), err
}

// AllocBuffer maps size bytes (rounded up to pages) of hypercall-safe
// memory: an mmap of /dev/xen/hypercall, or locked, non-forked anonymous
// memory with every page touched when that device is missing.
func (d *Device) AllocBuffer(size int) ([]byte, error) {
	if size <= 0 {
		return nil, syscall.EINVAL
	}
	n := (size + pageSize - 1) &^ (pageSize - 1)
	if d.hypercall != nil {
		rc, err := d.hypercall.SyscallConn()
		if err != nil {
			return nil, err
		}
		var mem []byte
		var merr error
		if err := rc.Control(func(fd uintptr) {
			mem, merr = unix.Mmap(int(fd), 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		}); err != nil {
			return nil, err
		}
		if merr == nil {
			clear(mem)
			return mem, nil
		}
		// Some kernels cap each open of the device at a few pages (the
		// privcmd-buf "limit" parameter); fall back to locked anonymous
		// memory, which Xen can also use.
	}
	return allocLocked(n)
}

// allocLocked returns n bytes of locked anonymous memory that a fork does
// not inherit, every page touched: libxencall's buffers when
// /dev/xen/hypercall is missing.
func allocLocked(n int) ([]byte, error) {
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_LOCKED)
	if err != nil {
		return nil, fmt.Errorf("mmap hypercall buffer: %w", err)
	}
	if err := unix.Madvise(mem, unix.MADV_DONTFORK); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("madvise hypercall buffer: %w", err)
	}
	for i := 0; i < n; i += pageSize {
		mem[i] = 0 // fault every page in before Xen touches it
	}
	return mem, nil
}

// FreeBuffer unmaps a buffer from AllocBuffer.
func (d *Device) FreeBuffer(buf []byte) error { return unix.Munmap(buf) }

// MapForeign maps gfns of domain dom: mmap of privcmd to reserve the range,
// then IOCTL_PRIVCMD_MMAPBATCH_V2 over all of it, which fills errs with 0 or
// -errno per frame. Frames that report -ENOENT (paged out) are retried in
// contiguous runs, as libxenforeignmemory does.
func (d *Device) MapForeign(dom uint16, prot int, gfns []uint64, errs []int32) ([]byte, error) {
	if len(gfns) == 0 || len(errs) != len(gfns) {
		return nil, syscall.EINVAL
	}
	mprot := 0
	if prot&ProtRead != 0 {
		mprot |= unix.PROT_READ
	}
	if prot&ProtWrite != 0 {
		mprot |= unix.PROT_WRITE
	}
	rc, err := d.privcmd.SyscallConn()
	if err != nil {
		return nil, err
	}
	var mem []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		mem, merr = unix.Mmap(int(fd), 0, len(gfns)*pageSize, mprot, unix.MAP_SHARED)
	}); err != nil {
		return nil, err
	}
	if merr != nil {
		return nil, fmt.Errorf("mmap privcmd: %w", merr)
	}
	err = d.batch(dom, mem, gfns, errs)
	if errors.Is(err, syscall.ENOENT) {
		err = d.retryPaged(dom, mem, gfns, errs)
	}
	if err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("IOCTL_PRIVCMD_MMAPBATCH_V2: %w", err)
	}
	return mem, nil
}

func (d *Device) mmapBatch(dom uint16, mem []byte, gfns []uint64, errs []int32) error {
	b := abi.PrivcmdMmapbatchV2{
		Num:  uint32(len(gfns)),
		Dom:  dom,
		Addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem)))),
		Arr:  abi.NewPointer(unsafe.Pointer(unsafe.SliceData(gfns))),
		Err:  abi.NewPointer(unsafe.Pointer(unsafe.SliceData(errs))),
	}
	_, err := ioctl(d.privcmd, abi.IOCTL_PRIVCMD_MMAPBATCH_V2, unsafe.Pointer(&b))
	return err
}

// retryPaged re-issues MMAPBATCH_V2 for each run of frames still at
// -ENOENT until none is left or enoentRetryFor passes. Running out of time
// is not an error: those frames keep -ENOENT in errs.
func (d *Device) retryPaged(dom uint16, mem []byte, gfns []uint64, errs []int32) error {
	return d.retryPagedFor(dom, mem, gfns, errs, enoentRetryFor)
}

func (d *Device) retryPagedFor(dom uint16, mem []byte, gfns []uint64, errs []int32, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	enoent := -int32(syscall.ENOENT)
	for time.Now().Before(deadline) {
		time.Sleep(enoentRetryDelay)
		left := 0
		for i := 0; i < len(gfns); {
			if errs[i] != enoent {
				i++
				continue
			}
			j := i + 1
			for j < len(gfns) && errs[j] == enoent {
				j++
			}
			err := d.batch(dom, mem[i*pageSize:j*pageSize], gfns[i:j], errs[i:j])
			if err != nil && !errors.Is(err, syscall.ENOENT) {
				return err
			}
			for k := i; k < j; k++ {
				if errs[k] == enoent {
					left++
				}
			}
			i = j
		}
		if left == 0 {
			break
		}
	}
	return nil
}

// UnmapForeign unmaps a mapping from MapForeign.
func (d *Device) UnmapForeign(mem []byte) error { return unix.Munmap(mem) }

// Evtchn is an open /dev/xen/evtchn. Ioctl and Write are safe for
// concurrent use; run one Read at a time.
type Evtchn struct {
	f *os.File
}

// OpenEvtchn opens /dev/xen/evtchn, non-blocking so that Read can honour a
// context through the runtime poller.
func (d *Device) OpenEvtchn() (*Evtchn, error) {
	fd, err := unix.Open(evtchnPath, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", evtchnPath, err)
	}
	return &Evtchn{f: os.NewFile(uintptr(fd), evtchnPath)}, nil
}

// Ioctl issues an IOCTL_EVTCHN_* request with arg, the marshalled struct;
// it returns the ioctl's non-negative result (the local port for binds).
func (e *Evtchn) Ioctl(req uint32, arg []byte) (int, error) {
	var p unsafe.Pointer
	if len(arg) > 0 {
		p = unsafe.Pointer(unsafe.SliceData(arg))
	}
	r, err := ioctl(e.f, uintptr(req), p)
	return int(r), err
}

// Read reads pending ports (little-endian uint32s) and blocks until one is
// pending or ctx is done.
func (e *Evtchn) Read(ctx context.Context, p []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := e.f.SetReadDeadline(dl); err != nil {
			return 0, err
		}
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		e.f.SetReadDeadline(time.Unix(1, 0)) // wake the Read now
		close(fired)
	})
	n, err := e.f.Read(p)
	if !stop() {
		<-fired // the deadline is set; clear it only after that
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = ctx.Err()
		if err == nil { // the poller's deadline beat ctx's timer
			err = context.DeadlineExceeded
		}
	}
	e.f.SetReadDeadline(time.Time{})
	return n, err
}

// Write writes ports to unmask.
func (e *Evtchn) Write(p []byte) (int, error) { return e.f.Write(p) }

// Close closes the device, unbinding every port bound through it.
func (e *Evtchn) Close() error { return e.f.Close() }
