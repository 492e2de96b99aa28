// Package abi holds the Xen hypercall and Linux Xen-device ABI that domctl
// and xensim encode and decode: Go structs generated with cgo -godefs from
// the Xen 4.17 public headers (Debian libxen-dev, /usr/include/xen), the
// constants from the same headers, and a few hand-written helpers (Pointer,
// View, the xen_domctl union accessors).
//
// # Generation
//
// types_xen.go is the godefs input; mkpost.go post-processes the output
// (Go names, structs.HostLayout, Pointer for guest handles) into
// ztypes_le64.go and writes abicheck/zlayout.go, the C side of the layout
// test. Run go generate in this directory after changing either; the tests
// fail when the committed files are stale.
//
// # Layout
//
// The structs are those of a 64-bit little-endian dom0 (amd64, and arm64
// where the same fixed-width layouts hold); guest-width specific structures
// exist in both x86 flavours (VCPUGuestContextX86_64, ...X86_32). The layout
// test compares every size and field offset with the C compiler's.
//
// # Interface versions
//
// XEN_DOMCTL_INTERFACE_VERSION is the headers' value (0x15, Xen 4.17). The
// union payloads used here have the same layout in 4.18 (0x16) and
// 4.19/4.20 (0x17); domctl sets the version it negotiated in each call.
package abi
