// Package xenstore is a client for xenstored, the Xen configuration
// database, speaking the xs_wire.h protocol.
//
// # Transports
//
// Dial connects the way libxenstore's xs_open does: the unix socket
// $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else
// /var/run/xenstored/socket, and if that fails the kernel device
// /dev/xen/xenbus. DialSocket and DialXenbus force one transport, and
// NewClient runs the protocol over any io.ReadWriteCloser, such as an
// in-memory connection to the embedded server in package xenstoretest.
//
// # Concurrency
//
// A Client is safe for concurrent use. Requests are pipelined: each carries
// its own req_id, and one reader goroutine routes replies by req_id and
// watch events to their Watch, so many goroutines share one connection
// without waiting for each other's round trips. Every operation takes a
// context; cancelling it stops the wait but not the request, which has
// already been sent. Close unblocks every pending call.
//
// On a unix socket (Dial, DialSocket) a call made while no other call is
// in flight, no watch is registered and no call overlapped another in the
// last 64 calls takes the direct path: it writes
// its request and reads its own reply itself, with raw syscalls, as
// libxenstore does, without waking the reader goroutine. Such a read
// keeps its thread for at most 2 ms (a socket timeout); then, or as soon
// as other calls or watches need the reader, the reader goroutine takes
// over. A ctx cancelled during a direct read is therefore noticed within
// 2 ms.
//
// While several calls are in flight on a unix socket, requests made
// while the reader goroutine hands out replies are written together in
// one write(2), and on Linux the reader waits for their replies with its
// thread in SCHED_BATCH (an ordinary SCHED_OTHER thread only, restored
// after the wait): its wake-up then does not preempt a daemon sharing
// its CPU, which answers the whole batch first. Set
// Config.PreemptingWaits to keep ordinary waits; see
// docs/bench-xenstore.md for the measurements.
//
// Through /dev/xen/xenbus requests are not pipelined: Linux's device
// mixes up requests in flight together on one open file, so the Client
// sends the next request only when the previous one is answered, as
// libxenstore does.
//
// The client enforces the daemons' limits before sending: request payloads
// of at most 4096 bytes including NULs (cxenstored drops the connection
// past that; 4080 through /dev/xen/xenbus, whose buffer holds the header
// too), node paths of [A-Za-z0-9_@/-] without "//" or a trailing "/",
// and never an empty payload (oxenstored stalls on one). Replies larger
// than 4096 bytes are accepted, because oxenstored sends them for big
// directories; cxenstored answers E2BIG instead and List falls back to
// DIRECTORY_PART.
//
// # Errors
//
// Failed operations return *OpError naming the operation and path. The
// daemon's XS_ERROR names become syscall.Errno values, so
// errors.Is(err, fs.ErrNotExist) and errors.Is(err, syscall.EAGAIN) work.
// After Close, errors wrap net.ErrClosed.
//
// # Testing without Xen
//
// Package xenstoretest is an embedded xenstored speaking the same frames,
// over in-memory connections (as any domain) or a unix socket. Its
// behaviour is checked against Debian's cxenstored and oxenstored by the
// same conformance suite (package xenstoretest/conformance), which the
// QEMU lab also runs against the xenstored of a real Xen dom0, over its
// socket and over /dev/xen/xenbus.
package xenstore
