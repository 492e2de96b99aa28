// Package conformance is the xenstore conformance suite: one set of
// checks run against the embedded server (xenstoretest), Debian's
// cxenstored and oxenstored under the project's LD_PRELOAD shim, and the
// xenstored of a real Xen dom0, so neither the client nor the embedded
// server can drift from the real daemons.
//
// # Targets
//
// Run takes a Target: which daemon (Kind), how to open a raw frame
// connection (Dial) and, optionally, Clients (Client; DialSocket's take
// the client's direct path). RealXen marks a daemon under a real
// hypervisor (domain ids name real domains); Xenbus marks connections
// through the dom0 kernel's /dev/xen/xenbus, which answers WATCH and
// UNWATCH itself, caps request payloads at 4080 bytes and shares the
// kernel's own connection (RESET_WATCHES is never sent through it).
// Where daemons or transports differ, each check states the documented
// behaviour of each.
//
// # Users
//
// It imports testing and testify, so only tests use it: the tests of
// xenstore (cxenstored, oxenstored) and xenstoretest (embedded), and the
// lab's in-dom0 tests in the separate internal/e2e module
// (TestXenstoreConformance), which is why it is not internal.
package conformance
