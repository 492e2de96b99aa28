// Package wire is the xsd_sockmsg frame codec shared by the xenstore client
// and the embedded server in xenstoretest.
//
// A frame is a 16-byte header {type, req_id, tx_id, len} in host byte order
// (xen/include/public/io/xs_wire.h) followed by len payload bytes. The
// package is pure: it does no I/O beyond the io.Reader and io.Writer it is
// given, and keeps no state.
//
// # Limits
//
// ReadMsg caps the payload length before allocating; CheckPath applies
// the daemons' path rules (characters, "//", trailing "/", lengths) so
// that the client and the embedded server refuse exactly what
// cxenstored and oxenstored refuse.
package wire
