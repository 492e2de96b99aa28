package xenstore

import (
	"fmt"
	"strconv"
)

// Access is the access a Perm grants: one of the letters n, r, w, b.
type Access byte

// Access values, as the wire spells them.
const (
	AccessNone  Access = 'n'
	AccessRead  Access = 'r'
	AccessWrite Access = 'w'
	AccessBoth  Access = 'b'
)

// CanRead reports whether a grants reading.
func (a Access) CanRead() bool { return a == AccessRead || a == AccessBoth }

// CanWrite reports whether a grants writing.
func (a Access) CanWrite() bool { return a == AccessWrite || a == AccessBoth }

// Perm is one entry of a node's permission list. The first entry names the
// owner (who has full access) and the access of every domain not listed
// after it; later entries grant Access to Dom.
type Perm struct {
	Dom    uint32
	Access Access
}

// String returns the wire form, e.g. "r5".
func (p Perm) String() string {
	return string(rune(p.Access)) + strconv.FormatUint(uint64(p.Dom), 10)
}

// ParsePerm parses the wire form "r5". The access letter must be n, r, w
// or b and the domain a decimal uint32.
func ParsePerm(s string) (Perm, error) {
	if len(s) < 2 {
		return Perm{}, fmt.Errorf("%w: permission %q", ErrProtocol, s)
	}
	a := Access(s[0])
	switch a {
	case AccessNone, AccessRead, AccessWrite, AccessBoth:
	default:
		return Perm{}, fmt.Errorf("%w: permission %q has access %q", ErrProtocol, s, s[0])
	}
	d, err := strconv.ParseUint(s[1:], 10, 32)
	if err != nil {
		return Perm{}, fmt.Errorf("%w: permission %q: bad domain", ErrProtocol, s)
	}
	return Perm{Dom: uint32(d), Access: a}, nil
}
