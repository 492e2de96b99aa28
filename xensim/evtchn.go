package xensim

import (
	"context"
	"encoding/binary"
	"net"
	"sync"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

const (
	portUnbound = iota
	portInterdomain
	portVIRQ
)

// evtPort is one event-channel port of a domain.
type evtPort struct {
	port       uint32
	state      int
	remoteDom  domctl.DomID // unbound: who may bind; interdomain: the peer
	remotePort uint32
	dev        *evtchnDev // dom0 ports bound through a device
	handler    func()     // ports of simulated kernels
}

func (d *domain) allocPortLocked() *evtPort {
	for d.ports[d.nextPort] != nil {
		d.nextPort++
	}
	p := &evtPort{port: d.nextPort}
	d.ports[p.port] = p
	d.nextPort++
	return p
}

// allocUnbound implements EVTCHNOP_alloc_unbound.
func (x *xen) allocUnbound(dom, remote domctl.DomID) (uint32, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(dom)
	if err != nil {
		return 0, err
	}
	if remote == domctl.DomIDSelf {
		remote = dom
	}
	if _, err := x.lookupLocked(remote); err != nil {
		return 0, err
	}
	p := d.allocPortLocked()
	p.state = portUnbound
	p.remoteDom = remote
	return p.port, nil
}

// setPortHandler installs the delivery function for a kernel's port.
func (x *xen) setPortHandler(dom domctl.DomID, port uint32, h func()) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if d := x.doms[dom]; d != nil {
		if p := d.ports[port]; p != nil {
			p.handler = h
		}
	}
}

// send implements EVTCHNOP_send from (d, port).
func (x *xen) send(d *domain, port uint32) {
	x.mu.Lock()
	p := d.ports[port]
	if p == nil || p.state != portInterdomain {
		x.mu.Unlock()
		return
	}
	rd := x.doms[p.remoteDom]
	var rp *evtPort
	if rd != nil {
		rp = rd.ports[p.remotePort]
	}
	x.mu.Unlock()
	x.deliver(rp)
}

func (x *xen) deliver(p *evtPort) {
	if p == nil {
		return
	}
	if p.dev != nil {
		p.dev.fire(p.port)
	}
	if p.handler != nil {
		p.handler()
	}
}

func (x *xen) closePortsLocked(d *domain) {
	for _, p := range d.ports {
		x.unbindLocked(d, p)
	}
}

// unbindLocked closes p; an interdomain peer reverts to unbound, as
// evtchn_close does.
func (x *xen) unbindLocked(d *domain, p *evtPort) {
	if p.state == portInterdomain {
		if rd := x.doms[p.remoteDom]; rd != nil {
			if rp := rd.ports[p.remotePort]; rp != nil && rp.state == portInterdomain {
				rp.state = portUnbound
				rp.remoteDom = d.id
				rp.remotePort = 0
			}
		}
	}
	delete(d.ports, p.port)
}

// evtchnDev is one open /dev/xen/evtchn: dom0 ports it bound, and the
// queue of ports that fired. As in the Linux driver, a port that fired is
// masked until the reader writes it back.
type evtchnDev struct {
	x       *xen
	mu      sync.Mutex
	ports   map[uint32]bool
	masked  map[uint32]bool
	again   map[uint32]bool
	pending []uint32
	wake    chan struct{}
	closed  bool
}

var _ domctl.EvtchnDevice = (*evtchnDev)(nil)

func (x *xen) openEvtchn() *evtchnDev {
	return &evtchnDev{
		x:      x,
		ports:  map[uint32]bool{},
		masked: map[uint32]bool{},
		again:  map[uint32]bool{},
		wake:   make(chan struct{}, 1),
	}
}

func (e *evtchnDev) fire(port uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || !e.ports[port] {
		return
	}
	if e.masked[port] {
		e.again[port] = true
		return
	}
	e.masked[port] = true
	e.pending = append(e.pending, port)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Ioctl implements the IOCTL_EVTCHN_* requests on their marshalled structs.
func (e *evtchnDev) Ioctl(req uint32, arg []byte) (int, error) {
	x := e.x
	switch req {
	case abi.IOCTL_EVTCHN_BIND_VIRQ:
		a, err := view[abi.IoctlEvtchnBindVirq](arg)
		if err != nil {
			return 0, err
		}
		if a.Virq != abi.VIRQ_DOM_EXC {
			return 0, errEINVAL
		}
		x.mu.Lock()
		d0 := x.doms[0]
		if d0 == nil {
			x.mu.Unlock()
			return 0, ErrClosed
		}
		p := d0.allocPortLocked()
		p.state = portVIRQ
		p.dev = e
		x.mu.Unlock()
		e.addPort(p.port)
		x.devMu.Lock()
		x.virqDev[e] = p.port
		x.devMu.Unlock()
		return int(p.port), nil
	case abi.IOCTL_EVTCHN_BIND_INTERDOMAIN:
		a, err := view[abi.IoctlEvtchnBindInterdomain](arg)
		if err != nil {
			return 0, err
		}
		x.mu.Lock()
		rd, err := x.lookupLocked(domctl.DomID(a.RemoteDomain))
		if err != nil {
			x.mu.Unlock()
			return 0, err
		}
		rp := rd.ports[a.RemotePort]
		if rp == nil || rp.state != portUnbound || rp.remoteDom != 0 {
			x.mu.Unlock()
			return 0, errEINVAL
		}
		d0 := x.doms[0]
		if d0 == nil {
			x.mu.Unlock()
			return 0, ErrClosed
		}
		lp := d0.allocPortLocked()
		lp.state = portInterdomain
		lp.remoteDom = rd.id
		lp.remotePort = rp.port
		lp.dev = e
		rp.state = portInterdomain
		rp.remoteDom = 0
		rp.remotePort = lp.port
		x.mu.Unlock()
		e.addPort(lp.port)
		// evtchn_bind_interdomain marks the local port pending.
		e.fire(lp.port)
		return int(lp.port), nil
	case abi.IOCTL_EVTCHN_BIND_UNBOUND_PORT:
		a, err := view[abi.IoctlEvtchnBindUnboundPort](arg)
		if err != nil {
			return 0, err
		}
		port, err := x.allocUnbound(0, domctl.DomID(a.RemoteDomain))
		if err != nil {
			return 0, err
		}
		x.mu.Lock()
		if d0 := x.doms[0]; d0 != nil && d0.ports[port] != nil {
			d0.ports[port].dev = e
		}
		x.mu.Unlock()
		e.addPort(port)
		return int(port), nil
	case abi.IOCTL_EVTCHN_UNBIND:
		a, err := view[abi.IoctlEvtchnUnbind](arg)
		if err != nil {
			return 0, err
		}
		if !e.ownsPort(a.Port) {
			return 0, errENOTCONN
		}
		e.unbind(a.Port)
		return 0, nil
	case abi.IOCTL_EVTCHN_NOTIFY:
		a, err := view[abi.IoctlEvtchnNotify](arg)
		if err != nil {
			return 0, err
		}
		if !e.ownsPort(a.Port) {
			return 0, errENOTCONN
		}
		x.mu.Lock()
		d0 := x.doms[0]
		x.mu.Unlock()
		if d0 == nil {
			return 0, ErrClosed
		}
		x.send(d0, a.Port)
		return 0, nil
	}
	return 0, errENOSYS
}

func (e *evtchnDev) addPort(p uint32) {
	e.mu.Lock()
	e.ports[p] = true
	e.mu.Unlock()
}

func (e *evtchnDev) ownsPort(p uint32) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ports[p]
}

func (e *evtchnDev) unbind(port uint32) {
	e.mu.Lock()
	delete(e.ports, port)
	delete(e.masked, port)
	delete(e.again, port)
	e.mu.Unlock()
	x := e.x
	x.devMu.Lock()
	if x.virqDev[e] == port {
		delete(x.virqDev, e)
	}
	x.devMu.Unlock()
	x.mu.Lock()
	if d0 := x.doms[0]; d0 != nil {
		if p := d0.ports[port]; p != nil {
			x.unbindLocked(d0, p)
		}
	}
	x.mu.Unlock()
}

// Read returns fired ports as little-endian uint32s, blocking until one is
// pending or ctx is done.
func (e *evtchnDev) Read(ctx context.Context, p []byte) (int, error) {
	if len(p) < 4 {
		return 0, errEINVAL
	}
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(e.pending) > 0 {
			n := 0
			for len(e.pending) > 0 && n+4 <= len(p) {
				binary.LittleEndian.PutUint32(p[n:], e.pending[0])
				e.pending = e.pending[1:]
				n += 4
			}
			if len(e.pending) > 0 {
				select {
				case e.wake <- struct{}{}:
				default:
				}
			}
			e.mu.Unlock()
			return n, nil
		}
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-e.wake:
		}
	}
}

// Write unmasks the little-endian uint32 ports in p; a port that fired
// while masked is delivered again.
func (e *evtchnDev) Write(p []byte) (int, error) {
	if len(p)%4 != 0 {
		return 0, errEINVAL
	}
	var refire []uint32
	e.mu.Lock()
	for i := 0; i+4 <= len(p); i += 4 {
		port := binary.LittleEndian.Uint32(p[i:])
		delete(e.masked, port)
		if e.again[port] {
			delete(e.again, port)
			refire = append(refire, port)
		}
	}
	e.mu.Unlock()
	for _, port := range refire {
		e.fire(port)
	}
	return len(p), nil
}

// Close unbinds every port of the device.
func (e *evtchnDev) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ports := make([]uint32, 0, len(e.ports))
	for p := range e.ports {
		ports = append(ports, p)
	}
	e.mu.Unlock()
	for _, p := range ports {
		e.unbind(p)
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}
