// Package privcmd is domctl's Linux backend: hypercalls through
// /dev/xen/privcmd (IOCTL_PRIVCMD_HYPERCALL), hypercall buffers mmapped from
// /dev/xen/hypercall, foreign mappings with IOCTL_PRIVCMD_MMAPBATCH_V2 and
// event channels through /dev/xen/evtchn. It works in plain types (no
// domctl import, to avoid a cycle); domctl adapts it to its Backend.
//
// Off Linux every entry point returns ErrNotSupported.
package privcmd

import "errors"

// ErrNotSupported is returned off Linux, where there is no privcmd driver.
var ErrNotSupported = errors.New("xen privcmd is not supported on this platform")

// Protection bits for MapForeign (the values of domctl.Prot).
const (
	ProtRead  = 1
	ProtWrite = 2
)
