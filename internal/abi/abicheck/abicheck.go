// Package abicheck exposes the C compiler's view of the structs in package
// abi: sizeof and, per field, offsetof and sizeof, compiled with cgo against
// the same Xen headers (libxen-dev). It exists for abi's layout test; the
// table comes from zlayout.go, which mkpost generates with the Go types.
package abicheck

// Row is one entry of the C layout table: the whole struct when Index is -1,
// else field Index of the Go struct (counting the structs.HostLayout field
// as 0), whose C name is CField.
type Row struct {
	GoType string
	Index  int
	CField string
	Offset uintptr
	Size   uintptr
}

// Table returns the C layout table, or nil when built without cgo.
func Table() []Row { return table() }
