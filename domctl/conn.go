package domctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// XEN_DOMCTL_INTERFACE_VERSION of the Xen releases this package speaks.
// The xen_domctl layout and every payload Conn uses are the same in all
// three; getdomaininfo's semantics differ (see Conn.DomainInfo).
const (
	InterfaceVersion417 uint32 = 0x15 // Xen 4.17
	InterfaceVersion418 uint32 = 0x16 // Xen 4.18
	InterfaceVersion419 uint32 = 0x17 // Xen 4.19 and 4.20
)

// DefaultInterfaceVersions is the order NewConn probes by default.
func DefaultInterfaceVersions() []uint32 {
	return []uint32{InterfaceVersion417, InterfaceVersion418, InterfaceVersion419}
}

// Config configures a Conn. A nil *Config means every default.
type Config struct {
	// InterfaceVersions are the XEN_DOMCTL_INTERFACE_VERSION values to
	// probe, in order. Nil or empty means DefaultInterfaceVersions.
	InterfaceVersions []uint32
}

// Conn issues typed hypervisor operations (domctl, memory_op, hvm_op,
// event_channel_op, xen_version) through a Backend. It is safe for
// concurrent use: each call marshals into its own hypercall buffers.
type Conn struct {
	b        Backend
	version  uint32
	closer   io.Closer // the backend, when the Conn owns it
	closed   atomic.Bool
	mappings atomic.Int64 // open foreign mappings

	mu   sync.Mutex
	pool [][]byte // free single-page hypercall buffers
}

// poolMax is how many free single-page buffers a Conn keeps.
const poolMax = 8

const pageSize = 1 << abi.XEN_PAGE_SHIFT

// NewConn returns a Conn over b after finding the domctl interface version
// the hypervisor speaks: it issues getdomaininfo for dom0 with each version
// of cfg.InterfaceVersions in turn; Xen answers EACCES to a wrong version.
// When every version is refused the error is an *InterfaceVersionError
// (errors.Is ErrInterfaceVersion). Any other failure (EPERM without
// privilege, ...) is returned as it is. The caller keeps ownership of b.
func NewConn(b Backend, cfg *Config) (*Conn, error) {
	if b == nil {
		return nil, errors.New("domctl: nil Backend")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	versions := c.InterfaceVersions
	if len(versions) == 0 {
		versions = DefaultInterfaceVersions()
	}
	conn := &Conn{b: b}
	var tried []uint32
	for _, v := range versions {
		tried = append(tried, v)
		conn.version = v
		_, err := conn.DomainInfo(context.Background(), 0)
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, syscall.EACCES) {
			conn.freePool()
			return nil, err
		}
	}
	conn.freePool()
	return nil, &InterfaceVersionError{Tried: tried}
}

// InterfaceVersion returns the negotiated XEN_DOMCTL_INTERFACE_VERSION.
func (c *Conn) InterfaceVersion() uint32 { return c.version }

// OpenMappings returns the number of foreign mappings made through c and
// not yet closed; tests use it to find leaks.
func (c *Conn) OpenMappings() int { return int(c.mappings.Load()) }

// Close releases c's cached hypercall buffers and, for a Conn made by Open,
// closes the backend. Calls made after Close fail with an error wrapping
// net.ErrClosed. Open mappings and event-channel devices stay usable until
// they are closed themselves.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	err := c.freePool()
	if c.closer != nil {
		err = errors.Join(err, c.closer.Close())
	}
	return err
}

func (c *Conn) freePool() error {
	c.mu.Lock()
	pool := c.pool
	c.pool = nil
	c.mu.Unlock()
	var err error
	for _, b := range pool {
		err = errors.Join(err, c.b.FreeBuffer(b))
	}
	return err
}

// alloc returns a zeroed hypercall buffer of at least size bytes.
func (c *Conn) alloc(size int) ([]byte, error) {
	if size <= pageSize {
		c.mu.Lock()
		if n := len(c.pool); n > 0 {
			b := c.pool[n-1]
			c.pool = c.pool[:n-1]
			c.mu.Unlock()
			clear(b)
			return b, nil
		}
		c.mu.Unlock()
		size = pageSize
	}
	b, err := c.b.AllocBuffer(size)
	if err != nil {
		return nil, fmt.Errorf("allocating hypercall buffer: %w", err)
	}
	if len(b) < size {
		c.b.FreeBuffer(b)
		return nil, fmt.Errorf("allocating hypercall buffer: backend returned %d bytes for %d", len(b), size)
	}
	return b, nil
}

// allocCopy returns a hypercall buffer holding a copy of b, for data the
// hypervisor reads; nil for an empty b (free takes nil).
func (c *Conn) allocCopy(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	buf, err := c.alloc(len(b))
	if err != nil {
		return nil, err
	}
	copy(buf, b)
	return buf, nil
}

// free returns a buffer from alloc.
func (c *Conn) free(b []byte) {
	if b == nil {
		return
	}
	if len(b) == pageSize {
		// Close sets closed before it empties the pool under mu, so a
		// buffer pooled here while closed is false is freed by Close.
		c.mu.Lock()
		if !c.closed.Load() && len(c.pool) < poolMax {
			c.pool = append(c.pool, b)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	c.b.FreeBuffer(b)
}

// hypercall checks ctx and c, then issues one hypercall.
func (c *Conn) hypercall(ctx context.Context, op uint64, args ...uint64) (uint64, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var a [5]uint64
	copy(a[:], args)
	return c.b.Hypercall(op, a)
}

// domctl issues one XEN_DOMCTL_* command for dom. fill, if not nil,
// encodes the payload into the union; decode, if not nil, reads the
// answer (the whole struct, so it can check the echoed domain).
func (c *Conn) domctl(ctx context.Context, cmd uint32, dom DomID, fill func(*abi.Domctl), decode func(*abi.Domctl) error) error {
	buf, err := c.alloc(int(unsafe.Sizeof(abi.Domctl{})))
	if err != nil {
		return err
	}
	defer c.free(buf)
	d := abi.View[abi.Domctl](buf)
	d.Cmd = cmd
	d.InterfaceVersion = c.version
	d.Domain = uint16(dom)
	if fill != nil {
		fill(d)
	}
	if _, err := c.hypercall(ctx, abi.HYPERVISOR_domctl, bufAddr(buf)); err != nil {
		return err
	}
	if decode != nil {
		return decode(d)
	}
	return nil
}

// bufAddr is the address of a hypercall buffer, as a hypercall argument.
func bufAddr(b []byte) uint64 { return abi.BufferPointer(b).Addr() }

// simple issues a domctl that has no payload.
func (c *Conn) simple(ctx context.Context, op string, cmd uint32, dom DomID) error {
	return newOpError(op, dom, c.domctl(ctx, cmd, dom, nil, nil))
}
