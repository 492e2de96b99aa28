package domctl

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// Evtchn is an open event-channel device (/dev/xen/evtchn on Linux): bind
// ports, notify them, and wait for them to fire. Ioctl-based methods may be
// called concurrently; run one Wait at a time.
type Evtchn struct {
	dev    EvtchnDevice
	closed atomic.Bool
}

// OpenEvtchn opens an event-channel device through the backend.
func (c *Conn) OpenEvtchn(ctx context.Context) (*Evtchn, error) {
	if c.closed.Load() {
		return nil, newOpError(OpEvtchn, DomIDInvalid, net.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, newOpError(OpEvtchn, DomIDInvalid, err)
	}
	dev, err := c.b.OpenEvtchn()
	if err != nil {
		return nil, newOpError(OpEvtchn, DomIDInvalid, err)
	}
	return &Evtchn{dev: dev}, nil
}

func (e *Evtchn) ioctl(op string, dom DomID, req uint32, arg []byte) (int, error) {
	if e.closed.Load() {
		return 0, newOpError(op, dom, net.ErrClosed)
	}
	r, err := e.dev.Ioctl(req, arg)
	return r, newOpError(op, dom, err)
}

// BindInterdomain is IOCTL_EVTCHN_BIND_INTERDOMAIN: bind a local port to
// remotePort of dom. It returns the local port.
func (e *Evtchn) BindInterdomain(ctx context.Context, dom DomID, remotePort uint32) (uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, newOpError("evtchn bind_interdomain", dom, err)
	}
	a := abi.IoctlEvtchnBindInterdomain{RemoteDomain: uint32(dom), RemotePort: remotePort}
	r, err := e.ioctl("evtchn bind_interdomain", dom, abi.IOCTL_EVTCHN_BIND_INTERDOMAIN, abi.Bytes(&a))
	return uint32(r), err
}

// Notify is IOCTL_EVTCHN_NOTIFY: signal the remote end of local port.
func (e *Evtchn) Notify(port uint32) error {
	a := abi.IoctlEvtchnNotify{Port: port}
	_, err := e.ioctl("evtchn notify", DomIDInvalid, abi.IOCTL_EVTCHN_NOTIFY, abi.Bytes(&a))
	return err
}

// Unbind is IOCTL_EVTCHN_UNBIND.
func (e *Evtchn) Unbind(port uint32) error {
	a := abi.IoctlEvtchnUnbind{Port: port}
	_, err := e.ioctl("evtchn unbind", DomIDInvalid, abi.IOCTL_EVTCHN_UNBIND, abi.Bytes(&a))
	return err
}

// Wait blocks until a bound port fires or ctx is done, and returns the
// port. The port stays masked until Unmask.
func (e *Evtchn) Wait(ctx context.Context) (uint32, error) {
	if e.closed.Load() {
		return 0, newOpError("evtchn wait", DomIDInvalid, net.ErrClosed)
	}
	var b [4]byte
	n, err := e.dev.Read(ctx, b[:])
	if err != nil {
		return 0, newOpError("evtchn wait", DomIDInvalid, err)
	}
	if n != 4 {
		return 0, newOpError("evtchn wait", DomIDInvalid, fmt.Errorf("read %d bytes, want a 4-byte port", n))
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// Unmask re-enables delivery of port after Wait returned it.
func (e *Evtchn) Unmask(port uint32) error {
	if e.closed.Load() {
		return newOpError("evtchn unmask", DomIDInvalid, net.ErrClosed)
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], port)
	n, err := e.dev.Write(b[:])
	if err == nil && n != 4 {
		err = fmt.Errorf("wrote %d of 4 bytes", n)
	}
	return newOpError("evtchn unmask", DomIDInvalid, err)
}

// Close closes the device; the ports bound through it are unbound.
func (e *Evtchn) Close() error {
	if e.closed.Swap(true) {
		return net.ErrClosed
	}
	return e.dev.Close()
}
