// Package domctl talks to the Xen hypervisor from dom0: domain control
// (XEN_DOMCTL_*), guest memory (XENMEM_*, foreign mappings), HVM
// parameters, event channels and the version query — what a toolstack
// needs to checkpoint, save, restore and migrate a guest. *Conn implements
// checkpoint.Hypervisor.
//
// # Transports
//
// A Conn runs over a Backend, a narrow byte-level seam: Conn marshals every
// argument into the generated ABI structs (package internal/abi) inside
// hypercall buffers the Backend allocates, and passes their addresses, as
// libxencall does. Open uses the Linux privcmd driver (/dev/xen/privcmd,
// /dev/xen/hypercall, /dev/xen/evtchn); off Linux it returns
// ErrNotSupported. NewConn takes any Backend, such as the simulated
// hypervisor of package xensim.
//
// NewConn and Open probe the domctl interface version (XEN_DOMCTL_INTERFACE_
// VERSION 0x15 for Xen 4.17, then 0x16 for 4.18, 0x17 for 4.19 and 4.20)
// with a getdomaininfo on dom0; Xen refuses a wrong version with EACCES.
//
// # Concurrency
//
// A Conn is safe for concurrent use. Each call allocates its own hypercall
// buffers (a few single-page buffers are cached). Hypercalls cannot be
// interrupted: ctx is checked before each one, and a cancelled ctx stops a
// multi-hypercall operation between hypercalls. Mappings and Evtchn
// document their own rules.
//
// # Errors
//
// Failures are *OpError values naming the operation and domain; the
// hypervisor's -errno is a syscall.Errno inside, so errors.Is(err,
// syscall.EPERM) works. A missing domain matches ErrNoDomain (ESRCH, or
// Xen 4.17's getdomaininfo answering for the next domain). NewConn returns
// an *InterfaceVersionError (ErrInterfaceVersion) when no version fits.
// After Close, calls fail with net.ErrClosed.
//
// # Testing without Xen
//
// xensim.NewHost(nil).Backend() is a Backend that behaves like Xen 4.17,
// byte for byte, so the encoders and decoders here run in ordinary unit
// tests. Conn.OpenMappings counts unclosed foreign mappings for leak checks.
package domctl
