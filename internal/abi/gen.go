package abi

// Regenerate ztypes_le64.go and abicheck/zlayout.go from the Xen headers
// installed by Debian's libxen-dev 4.17 (needs cgo and gcc). The tests
// fail when the committed files are stale.
//go:generate bash mkabi.sh
