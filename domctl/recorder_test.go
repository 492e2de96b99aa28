package domctl_test

import (
	"context"
	"encoding/binary"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// call is one recorded hypercall: the op, its arguments, and a copy of
// every hypercall buffer an argument pointed at (keyed by argument index).
type call struct {
	op   uint64
	args [5]uint64
	bufs map[int][]byte
}

// recorder is a byte-level Backend for golden tests: it records each
// hypercall and lets the test script the hypervisor's answer by editing
// the buffers (respond gets them live, by address). Buffers are anonymous
// mmaps, never Go heap, as a real backend's are.
type recorder struct {
	t       testing.TB
	mu      sync.Mutex
	calls   []call
	bufs    map[uint64][]byte // live buffers by address
	respond func(op uint64, args [5]uint64, mem func(addr uint64, n int) []byte) (uint64, error)

	mapped  map[uintptr][]byte
	mapErrs []int32 // per-frame errors MapForeign reports, if set
	dev     *fakeEvtchn
}

func newRecorder(t testing.TB) *recorder {
	r := &recorder{t: t, bufs: map[uint64][]byte{}, mapped: map[uintptr][]byte{}}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, b := range r.bufs {
			syscall.Munmap(b)
		}
	})
	return r
}

func (r *recorder) AllocBuffer(size int) ([]byte, error) {
	n := (size + 4095) &^ 4095
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bufs[abi.BufferPointer(b).Addr()] = b
	r.mu.Unlock()
	return b, nil
}

func (r *recorder) FreeBuffer(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := abi.BufferPointer(b).Addr()
	if _, ok := r.bufs[a]; !ok {
		r.t.Errorf("FreeBuffer of unknown buffer %#x", a)
		return syscall.EINVAL
	}
	delete(r.bufs, a)
	return syscall.Munmap(b)
}

// mem returns n bytes of hypercall-buffer memory at addr; the test fails
// if addr is not inside a buffer.
func (r *recorder) memLocked(addr uint64, n int) []byte {
	for a, b := range r.bufs {
		if addr >= a && addr+uint64(n) <= a+uint64(len(b)) {
			off := addr - a
			return b[off : off+uint64(n)]
		}
	}
	r.t.Errorf("address %#x (+%d) is not in a hypercall buffer", addr, n)
	return make([]byte, n)
}

func (r *recorder) Hypercall(op uint64, args [5]uint64) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := call{op: op, args: args, bufs: map[int][]byte{}}
	for i, a := range args {
		if b, ok := r.bufs[a]; ok {
			c.bufs[i] = append([]byte(nil), b...)
		}
	}
	r.calls = append(r.calls, c)
	if r.respond == nil {
		return 0, nil
	}
	return r.respond(op, args, r.memLocked)
}

func (r *recorder) MapForeign(dom domctl.DomID, prot domctl.Prot, gfns []uint64, errs []int32) ([]byte, error) {
	mem, err := syscall.Mmap(-1, 0, len(gfns)*4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, err
	}
	copy(errs, r.mapErrs)
	for i, g := range gfns {
		binary.LittleEndian.PutUint64(mem[i*4096:], g) // page i shows its gfn
	}
	r.mu.Lock()
	r.mapped[uintptr(unsafe.Pointer(&mem[0]))] = mem
	r.mu.Unlock()
	return mem, nil
}

func (r *recorder) UnmapForeign(mem []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := uintptr(unsafe.Pointer(&mem[0]))
	if _, ok := r.mapped[k]; !ok {
		return syscall.EINVAL
	}
	delete(r.mapped, k)
	return syscall.Munmap(mem)
}

func (r *recorder) OpenEvtchn() (domctl.EvtchnDevice, error) {
	r.dev = &fakeEvtchn{pending: make(chan uint32, 4)}
	return r.dev, nil
}

// fakeEvtchn records ioctls and unmask writes; Read returns queued ports.
type fakeEvtchn struct {
	mu      sync.Mutex
	ioctls  []ioctlCall
	unmasks []byte
	pending chan uint32
	closed  bool
}

type ioctlCall struct {
	req uint32
	arg []byte
}

func (f *fakeEvtchn) Ioctl(req uint32, arg []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ioctls = append(f.ioctls, ioctlCall{req, append([]byte(nil), arg...)})
	if req == abi.IOCTL_EVTCHN_BIND_INTERDOMAIN {
		return 42, nil
	}
	return 0, nil
}

func (f *fakeEvtchn) Read(ctx context.Context, p []byte) (int, error) {
	select {
	case port := <-f.pending:
		binary.LittleEndian.PutUint32(p, port)
		return 4, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (f *fakeEvtchn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unmasks = append(f.unmasks, p...)
	return len(p), nil
}

func (f *fakeEvtchn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// domctlOf decodes a recorded domctl hypercall's struct.
func domctlOf(t testing.TB, c call) *abi.Domctl {
	t.Helper()
	require.EqualValues(t, abi.HYPERVISOR_domctl, c.op)
	b, ok := c.bufs[0]
	require.True(t, ok, "domctl argument is not a hypercall buffer")
	return abi.View[abi.Domctl](b)
}

type handler func(op uint64, args [5]uint64, mem func(addr uint64, n int) []byte) (uint64, error)

// newConn returns a Conn over a recorder whose hypervisor speaks 4.17:
// wrong domctl versions get EACCES, getdomaininfo on dom0 succeeds (the
// version probe), everything else goes to h (ENOSYS when h is nil). The
// probe's calls are dropped from the record.
func newConn(t testing.TB, h handler) (*domctl.Conn, *recorder) {
	t.Helper()
	r := newRecorder(t)
	r.respond = func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op == abi.HYPERVISOR_domctl {
			d := abi.View[abi.Domctl](mem(args[0], int(unsafe.Sizeof(abi.Domctl{}))))
			if d.InterfaceVersion != abi.XEN_DOMCTL_INTERFACE_VERSION {
				return 0, syscall.EACCES
			}
			if d.Cmd == abi.XEN_DOMCTL_getdomaininfo && d.Domain == 0 {
				abi.DomctlPayload[abi.DomctlGetDomainInfo](d).Domain = 0
				return 0, nil
			}
		}
		if h == nil {
			return 0, syscall.ENOSYS
		}
		return h(op, args, mem)
	}
	c, err := domctl.NewConn(r, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		if c.OpenMappings() != 0 {
			t.Errorf("%d foreign mappings leaked", c.OpenMappings())
		}
		c.Close()
	})
	r.mu.Lock()
	r.calls = nil
	r.mu.Unlock()
	return c, r
}

// domctlIn views the domctl struct a handler was called with.
func domctlIn(args [5]uint64, mem func(uint64, int) []byte) *abi.Domctl {
	return abi.View[abi.Domctl](mem(args[0], int(unsafe.Sizeof(abi.Domctl{}))))
}
