package domctl

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// Mapping is a mapping of guest frames into this process, from
// Conn.MapForeign. Page i shows the i-th frame asked for, unless Err(i)
// reports that frame failed (its page must not be touched then).
//
// Close it when done. A Mapping that becomes unreachable unclosed is
// unmapped by a cleanup as a safety net, but counts as a leak until then
// (Conn.OpenMappings). Bytes, Page, Err and Len may be called concurrently;
// Close must not race with them.
type Mapping struct {
	mem     []byte
	errs    []int32
	state   *mappingState
	cleanup runtime.Cleanup
}

// mappingState is what Close and the cleanup share; it must not refer to
// the Mapping.
type mappingState struct {
	once   sync.Once
	b      Backend
	mem    []byte
	live   *atomic.Int64
	err    error
	closed atomic.Bool
}

func (s *mappingState) unmap() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.err = s.b.UnmapForeign(s.mem)
		s.live.Add(-1)
	})
	return s.err
}

// MapForeign maps the frames gfns of dom with protection prot
// (IOCTL_PRIVCMD_MMAPBATCH_V2 on Linux). Frames that fail individually do
// not fail the call: check Err(i). The caller closes the Mapping.
func (c *Conn) MapForeign(ctx context.Context, dom DomID, prot Prot, gfns []uint64) (*Mapping, error) {
	if c.closed.Load() {
		return nil, newOpError(OpMapForeign, dom, net.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, newOpError(OpMapForeign, dom, err)
	}
	if len(gfns) == 0 {
		return nil, newOpError(OpMapForeign, dom, fmt.Errorf("no frames to map: %w", syscall.EINVAL))
	}
	errs := make([]int32, len(gfns))
	mem, err := c.b.MapForeign(dom, prot, gfns, errs)
	if err != nil {
		return nil, newOpError(OpMapForeign, dom, err)
	}
	if len(mem) < len(gfns)*pageSize {
		c.b.UnmapForeign(mem)
		return nil, newOpError(OpMapForeign, dom, fmt.Errorf("backend mapped %d bytes for %d frames", len(mem), len(gfns)))
	}
	c.mappings.Add(1)
	st := &mappingState{b: c.b, mem: mem, live: &c.mappings}
	m := &Mapping{mem: mem[:len(gfns)*pageSize], errs: errs, state: st}
	m.cleanup = runtime.AddCleanup(m, func(s *mappingState) { s.unmap() }, st)
	return m, nil
}

// Bytes returns the whole mapping: Len() pages of 4096 bytes.
func (m *Mapping) Bytes() []byte { return m.mem }

// Len returns the number of frames (pages) in the mapping.
func (m *Mapping) Len() int { return len(m.errs) }

// Page returns page i of the mapping.
func (m *Mapping) Page(i int) []byte { return m.mem[i*pageSize : (i+1)*pageSize : (i+1)*pageSize] }

// Err returns nil if frame i is mapped, else its error as a syscall.Errno
// (ENOENT: paged out; EINVAL or EFAULT: no such frame...).
func (m *Mapping) Err(i int) error {
	e := m.errs[i]
	if e == 0 {
		return nil
	}
	if e < 0 {
		e = -e
	}
	return syscall.Errno(e)
}

// Close unmaps the mapping. Using its memory afterwards faults. A second
// Close returns net.ErrClosed.
func (m *Mapping) Close() error {
	if m.state.closed.Load() {
		return net.ErrClosed
	}
	m.cleanup.Stop()
	err := m.state.unmap()
	m.mem = nil
	return err
}
