package domctl

import "context"

// Backend is the one seam between domctl and a hypervisor. It works at the
// level of marshalled bytes: Conn encodes every hypercall argument (a
// struct xen_domctl, a vCPU context, a dirty bitmap...) into memory obtained
// from AllocBuffer and passes the addresses of those buffers as hypercall
// arguments, exactly as libxencall does. A Backend therefore never sees Go
// types; the real encoders and decoders run whichever backend is in use.
//
// Two implementations exist: the Linux privcmd backend (Open, in this
// package, over /dev/xen/privcmd, /dev/xen/hypercall and /dev/xen/evtchn)
// and the simulated hypervisor in package xensim.
//
// Implementations must be safe for concurrent use.
type Backend interface {
	// Hypercall issues hypercall op (for example __HYPERVISOR_domctl = 36)
	// with up to five arguments, as IOCTL_PRIVCMD_HYPERCALL does. Arguments
	// that Xen treats as guest handles are virtual addresses inside memory
	// returned by AllocBuffer. A negative hypervisor return value -errno is
	// reported as a syscall.Errno error; otherwise the value is returned.
	Hypercall(op uint64, args [5]uint64) (uint64, error)

	// AllocBuffer returns zeroed, page-aligned memory of at least size
	// bytes that the hypervisor may read and write while a hypercall runs
	// (on Linux: an mmap of /dev/xen/hypercall, never the Go heap).
	// Conn writes the addresses of other buffers (guest handles) into
	// buffers, so the memory must stay where it is until FreeBuffer;
	// non-heap memory (an mmap) also keeps checkptr quiet under -race.
	// Conn keeps a few single-page buffers for reuse and frees them on
	// Close.
	AllocBuffer(size int) ([]byte, error)
	// FreeBuffer releases memory returned by AllocBuffer.
	FreeBuffer(buf []byte) error

	// MapForeign maps the guest frames gfns of domain dom into this
	// process, as mmap on privcmd followed by IOCTL_PRIVCMD_MMAPBATCH_V2.
	// errs receives, per frame, 0 on success or a negative errno (as
	// IOCTL_PRIVCMD_MMAPBATCH_V2 reports it, e.g. -ENOENT for a paged-out
	// frame that could not be brought in) and must have len(gfns) elements. The mapping is len(gfns) pages long; page i shows
	// gfns[i]. A frame that fails leaves its page inaccessible (reading it
	// is the caller's bug); the call itself fails only if nothing could be
	// attempted.
	MapForeign(dom DomID, prot Prot, gfns []uint64, errs []int32) ([]byte, error)
	// UnmapForeign releases a mapping made by MapForeign.
	UnmapForeign(mem []byte) error

	// OpenEvtchn opens an event-channel device (/dev/xen/evtchn).
	OpenEvtchn() (EvtchnDevice, error)
}

// EvtchnDevice is one open event-channel device: the byte-level view of
// /dev/xen/evtchn. Ioctl takes a request number (IOCTL_EVTCHN_*) and the
// marshalled ioctl struct, which it may update in place; Read and Write move
// little-endian uint32 port numbers as the Linux driver does (read: ports
// that fired; write: ports to unmask).
type EvtchnDevice interface {
	Ioctl(req uint32, arg []byte) (int, error)
	// Read blocks until at least one port is pending or ctx is done.
	Read(ctx context.Context, p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// Prot is the protection of a foreign mapping.
type Prot int

// Protections for MapForeign.
const (
	ProtRead      Prot = 1
	ProtWrite     Prot = 2
	ProtReadWrite Prot = ProtRead | ProtWrite
)
