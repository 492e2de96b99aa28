// Package setup is the few lines every example starts with: a checkpoint
// Controller on this machine's Xen (dom0, as root), or on an in-process
// simulated Xen host with a guest booted for the example.
package setup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/xensim"
	"github.com/xenckpt/xenckpt/xenstore"
)

// Flags are the command-line flags every example takes.
type Flags struct {
	// Dom0 runs against this machine's hypervisor instead of the simulator.
	Dom0 bool
	// DomID is the guest to work on with Dom0.
	DomID uint
}

// Register adds -dom0 and -domid to the default flag set.
func (f *Flags) Register() {
	flag.BoolVar(&f.Dom0, "dom0", false, "run on this machine's Xen (root in dom0) instead of a simulated host")
	flag.UintVar(&f.DomID, "domid", 0, "with -dom0: the guest domain to work on")
}

// Host is one Xen host with a toolstack Controller on it.
type Host struct {
	Conn  *domctl.Conn
	Store *xenstore.Client
	Ctl   *checkpoint.Controller
	// Sim is the simulated host, nil with -dom0.
	Sim *xensim.Host

	lockDir string
}

// Open connects to this machine's Xen (dom0) or boots a simulated host.
// cfg may be nil.
func Open(ctx context.Context, dom0 bool, cfg *checkpoint.Config) (*Host, error) {
	h := &Host{}
	var c checkpoint.Config
	if cfg != nil {
		c = *cfg
	}
	if dom0 {
		// The real thing: privcmd for hypercalls, xenstored's socket (or
		// /dev/xen/xenbus) for the store.
		var err error
		if h.Conn, err = domctl.Open(ctx); err != nil {
			return nil, fmt.Errorf("opening the hypervisor: %w", err)
		}
		if h.Store, err = xenstore.Dial(ctx, nil); err != nil {
			h.Close()
			return nil, fmt.Errorf("connecting to xenstored: %w", err)
		}
	} else {
		// The same Controller over a simulated hypervisor: domctl.NewConn
		// takes any Backend; the simulator brings its own xenstored.
		var err error
		if h.Sim, err = xensim.NewHost(nil); err != nil {
			return nil, err
		}
		if h.Conn, err = domctl.NewConn(h.Sim.Backend(), nil); err != nil {
			h.Close()
			return nil, err
		}
		if h.Store, err = h.Sim.Store(0); err != nil {
			h.Close()
			return nil, err
		}
		// Suspend event-channel lock files of a simulated host stay private.
		if h.lockDir, err = os.MkdirTemp("", "example-lock-"); err != nil {
			h.Close()
			return nil, err
		}
		c.LockDir = h.lockDir
	}
	h.Ctl = checkpoint.New(h.Conn, h.Store, &c)
	return h, nil
}

// Guest returns the domain to work on: -domid with -dom0, else a freshly
// booted simulated guest of config g (nil for the real host).
func (h *Host) Guest(ctx context.Context, f *Flags, g xensim.GuestConfig) (domctl.DomID, *xensim.Guest, error) {
	if h.Sim == nil {
		if f.DomID == 0 {
			return 0, nil, errors.New("-dom0 needs -domid")
		}
		return domctl.DomID(f.DomID), nil, nil
	}
	guest, err := h.Sim.CreateGuest(ctx, g)
	if err != nil {
		return 0, nil, err
	}
	return guest.Domain(), guest, guest.WaitCounter(ctx, 2)
}

// Close releases everything Open made.
func (h *Host) Close() error {
	var errs []error
	if h.Store != nil {
		errs = append(errs, h.Store.Close())
	}
	if h.Conn != nil {
		errs = append(errs, h.Conn.Close())
	}
	if h.Sim != nil {
		errs = append(errs, h.Sim.Close())
	}
	if h.lockDir != "" {
		errs = append(errs, os.RemoveAll(h.lockDir))
	}
	return errors.Join(errs...)
}

// Receiver is a second simulated host that accepts one TCP connection on
// loopback and hands it to a receiving function (Controller.Receive or
// RemusBackup): the other end of a migration in the examples.
type Receiver struct {
	Host *Host
	// Addr is where to connect (127.0.0.1:port).
	Addr string

	ln   net.Listener
	done chan received
}

type received struct {
	dom domctl.DomID
	err error
}

// StartReceiver boots the receiving host and starts accepting.
func StartReceiver(ctx context.Context, fn func(ctx context.Context, c *checkpoint.Controller, conn net.Conn) (domctl.DomID, error)) (*Receiver, error) {
	h, err := Open(ctx, false, nil)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		h.Close()
		return nil, err
	}
	r := &Receiver{Host: h, Addr: ln.Addr().String(), ln: ln, done: make(chan received, 1)}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			r.done <- received{err: err}
			return
		}
		defer conn.Close()
		d, err := fn(ctx, h.Ctl, conn)
		r.done <- received{d, err}
	}()
	return r, nil
}

// Wait returns what the receiving function returned.
func (r *Receiver) Wait() (domctl.DomID, error) {
	res := <-r.done
	return res.dom, res.err
}

// Close stops listening and closes the receiving host.
func (r *Receiver) Close() error {
	return errors.Join(r.ln.Close(), r.Host.Close())
}

// WaitRunning waits (at most ten seconds) until the simulated guest g is
// connected to xenstore and its counter has passed n: proof that it runs.
func WaitRunning(ctx context.Context, g *xensim.Guest, n uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.WaitConnected(ctx); err != nil {
		return fmt.Errorf("guest of domain %d did not connect (state %v): %w", g.Domain(), g.State(), err)
	}
	if err := g.WaitCounter(ctx, n); err != nil {
		return fmt.Errorf("guest of domain %d does not count (state %v): %w", g.Domain(), g.State(), err)
	}
	return nil
}
