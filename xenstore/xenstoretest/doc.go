// Package xenstoretest is an embedded xenstored speaking the real
// xs_wire.h protocol, for the simulator and for users' own tests of code
// that talks to xenstore. It imports no testing package.
//
// # Transports
//
// Serve answers on any net.Listener (usually a unix socket, so the C tools
// reach it with XENSTORED_PATH); those clients are privileged dom0, as on
// cxenstored's socket. Connect and Client make in-memory connections as any
// introduced domain, which is how permissions and quotas are exercised.
//
// # Semantics
//
// The server follows cxenstored 4.17: children listed in insertion order,
// DIRECTORY answering E2BIG past 4096 bytes (DIRECTORY_PART is
// implemented), RM of "/" refused with EINVAL, oversized request frames
// closing the connection, transactions on a private copy of the tree with
// conflicts detected at commit (EAGAIN), watch events for the node and
// its subtree (and for watches below a removed node), relative watch
// paths, and @introduceDomain/@releaseDomain on XS_INTRODUCE, XS_RELEASE
// and DomainChanged. Unknown requests fail with ENOSYS.
//
// Permissions follow cxenstored's perm_for_conn (owner, then the entry
// naming the connection's domain, else the owner entry's default). A
// non-owner entry naming a domain that does not exist when SET_PERMS sets
// it, or a domain that goes away later (XS_RELEASE, or gone at
// DomainChanged), grants nothing from then on, even to a new domain with
// the same id, as cxenstored 4.17 marks it XS_PERM_IGNORE; GET_PERMS still
// lists it. Which domains exist comes from Config.Domains; without it
// every id exists except the reserved ones from 0x7ff0 on, as under the
// project's shim, so only the XS_RELEASE case applies there. When a
// domain goes away, the nodes it owns are removed with their subtrees,
// as both daemons do, and it is dropped from the permissions of
// @introduceDomain and @releaseDomain. Those can be set (SET_PERMS
// checks their owner as for a node) but not read: GET_PERMS of a special
// path is EINVAL, as in cxenstored 4.17 (oxenstored answers it).
//
// # Testing without Xen
//
//	srv := xenstoretest.NewServer(nil)
//	defer srv.Close()
//	c, _ := srv.Client(0)
//	defer c.Close()
//	_ = c.Write(ctx, "/local/domain/1/name", []byte("guest"))
package xenstoretest
