package checkpoint

import (
	"strconv"

	"github.com/xenckpt/xenckpt/xenstore"
)

// xenconsoleLimit is LIBXL_XENCONSOLE_LIMIT: the bytes xenconsoled buffers
// for a guest's console.
const xenconsoleLimit = "1048576"

// consoleNodes returns the frontend nodes of dom's primary console,
// <domPath>/console, as libxl__device_console_add writes them when it knows
// the ring (after building or restoring a domain), which is what
// xenconsoled reads to connect it: the directory and backend-id belong to
// the guest (dom0 may read them); limit, type, output, tty, port and
// ring-ref are dom0's and read-only to the guest. ring.frame is the ring's
// frame as xenconsoled maps it (an MFN for PV, a gfn for HVM); callers
// with no console (ring.frame 0) should not call it. Backend-side nodes
// are not written: xenconsoled needs none.
func consoleNodes(domPath string, dom uint32, ring consoleRing) []xenstore.Node {
	guest := []xenstore.Perm{{Dom: dom, Access: xenstore.AccessNone}, {Dom: 0, Access: xenstore.AccessRead}}
	ro := []xenstore.Perm{{Dom: 0, Access: xenstore.AccessNone}, {Dom: dom, Access: xenstore.AccessRead}}
	p := domPath + "/console"
	return []xenstore.Node{
		{Path: p, Perms: guest},
		{Path: p + "/backend-id", Value: "0", Perms: guest},
		{Path: p + "/limit", Value: xenconsoleLimit, Perms: ro},
		{Path: p + "/type", Value: "xenconsoled", Perms: ro},
		{Path: p + "/output", Value: "pty", Perms: ro},
		{Path: p + "/tty", Perms: ro},
		{Path: p + "/port", Value: strconv.FormatUint(uint64(ring.port), 10), Perms: ro},
		{Path: p + "/ring-ref", Value: strconv.FormatUint(ring.frame, 10), Perms: ro},
	}
}
