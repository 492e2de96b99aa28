package xensim

import (
	"fmt"
	"syscall"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// Version is the Xen release a Host simulates. It decides the domctl
// interface version the hypervisor accepts (others get EACCES) and the
// semantics of getdomaininfo for a missing domain.
type Version int

// Supported versions. The zero Version means Xen417.
const (
	Xen417 Version = iota
	Xen418
	Xen419
)

func (v Version) String() string {
	maj, minor := v.numbers()
	return fmt.Sprintf("%d.%d", maj, minor)
}

func (v Version) numbers() (major, minor int) {
	switch v {
	case Xen418:
		return 4, 18
	case Xen419:
		return 4, 19
	}
	return 4, 17
}

// DomctlInterfaceVersion is the XEN_DOMCTL_INTERFACE_VERSION the release
// accepts: 0x15 (4.17, from the generated ABI), 0x16 (4.18), 0x17 (4.19).
func (v Version) DomctlInterfaceVersion() uint32 { return v.domctlInterface() }

func (v Version) domctlInterface() uint32 {
	switch v {
	case Xen418:
		return 0x16 // TODO(abi): xen 4.18 domctl.h XEN_DOMCTL_INTERFACE_VERSION
	case Xen419:
		return 0x17 // TODO(abi): xen 4.19 domctl.h XEN_DOMCTL_INTERFACE_VERSION
	}
	return abi.XEN_DOMCTL_INTERFACE_VERSION
}

// nextDomainSemantics: before 4.18, getdomaininfo of a missing domain
// returns the next domain (c/s 31c6554974 changed it).
func (v Version) nextDomainSemantics() bool { return v == Xen417 }

var (
	errEEXIST    = syscall.EEXIST
	errEOVERFLOW = syscall.EOVERFLOW
	errENOSPC    = syscall.ENOSPC
	errENOTCONN  = syscall.ENOTCONN
)
