package xenstore

import (
	"context"
	"strconv"
)

// Node is a xenstore node to create: its path, value and permissions.
type Node struct {
	Path  string
	Value string
	Perms []Perm
}

// DomainNodes returns the nodes a toolstack creates under path (the
// domain's home, /local/domain/<dom>) before the guest connects, with
// libxl's permissions: name, domid and control/ are dom0's and readable by
// the guest; control/shutdown, control/feature-suspend, device/,
// device/suspend/event-channel and data/ are the guest's to write.
func DomainNodes(path string, dom uint32, name string) []Node {
	ro := []Perm{{Dom: 0, Access: AccessNone}, {Dom: dom, Access: AccessRead}}
	rw := []Perm{{Dom: dom, Access: AccessNone}}
	return []Node{
		{path, "", ro},
		{path + "/name", name, ro},
		{path + "/domid", strconv.FormatUint(uint64(dom), 10), ro},
		{path + "/control", "", ro},
		{path + "/control/shutdown", "", rw},
		{path + "/control/feature-suspend", "", rw},
		{path + "/device", "", rw},
		{path + "/device/suspend", "", rw},
		{path + "/device/suspend/event-channel", "", rw},
		{path + "/data", "", rw},
	}
}

// WriteNodes writes each node and sets its permissions, in order, inside
// the transaction.
func (t *Tx) WriteNodes(ctx context.Context, nodes []Node) error {
	for _, n := range nodes {
		if err := t.Write(ctx, n.Path, []byte(n.Value)); err != nil {
			return err
		}
		if err := t.SetPerms(ctx, n.Path, n.Perms); err != nil {
			return err
		}
	}
	return nil
}
