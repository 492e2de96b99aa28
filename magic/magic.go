package magic

import (
	"bytes"
	"fmt"
	"strings"
)

// Platform is the platform part of a Xen guest-type string.
type Platform string

// The guest types libxenguest writes (tools/libs/guest/xg_dom_*.c).
const (
	PlatformX86_64  Platform = "x86_64"  // 64-bit x86 PV
	PlatformX86_32P Platform = "x86_32p" // 32-bit x86 PV, PAE
	PlatformX86_32  Platform = "x86_32"  // 32-bit x86 PV, non-PAE (historic)
	PlatformAArch64 Platform = "aarch64"
	PlatformARMv7l  Platform = "armv7l"
)

// platforms is ordered so that no entry is a prefix of a later one
// ("x86_32p" before "x86_32").
var platforms = [...]Platform{PlatformX86_64, PlatformX86_32P, PlatformX86_32, PlatformAArch64, PlatformARMv7l}

// Known reports whether p is one of the Platform constants.
func (p Platform) Known() bool {
	for _, k := range platforms {
		if p == k {
			return true
		}
	}
	return false
}

// Width is the guest word size in bytes (8 or 4), 0 for an unknown platform.
// It is the width DecodeStartInfo takes for the x86 platforms.
func (p Platform) Width() int {
	switch p {
	case PlatformX86_64, PlatformAArch64:
		return 8
	case PlatformX86_32P, PlatformX86_32, PlatformARMv7l:
		return 4
	}
	return 0
}

// TokenSuspendCancel is the capability token of the seed protocol: the
// guest handles a cancelled suspend, and HYPERVISOR_suspend returning 0 in
// the old domain means "cancelled" (see the package doc).
const TokenSuspendCancel = "sc"

// Magic is a parsed start_info.magic[] string: the standard guest type
// "xen-<Major>.<Minor>-<Platform>" plus the seed protocol's capability
// tokens. The zero value is not valid; a typical value is
// Magic{Major: 3, Minor: 0, Platform: PlatformX86_64, SuspendCancel: true}.
type Magic struct {
	Major, Minor int      // interface version, 0..999 (always 3.0 today)
	Platform     Platform // one of the Platform constants
	// SuspendCancel is the "sc" token: the guest implements the seed
	// suspend-cancel convention (cancel = eax 0).
	SuspendCancel bool
	// Extensions are the other tokens, verbatim ("name" or "name=value"),
	// in the order they appear. Readers must ignore tokens they do not know.
	Extensions []string
}

// Parse parses a start_info.magic[] field. It examines at most the first
// MagicSize bytes of b; the string ends at the first NUL, which must occur
// within them, and anything after that NUL is ignored. Errors are
// *ParseError wrapping ErrNoNUL, ErrBadMagic, ErrBadVersion,
// ErrUnknownPlatform, ErrBadToken or ErrDuplicateToken.
func Parse(b []byte) (Magic, error) {
	if len(b) > MagicSize {
		b = b[:MagicSize]
	}
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return Magic{}, &ParseError{Offset: len(b), Input: string(b), Err: ErrNoNUL}
	}
	return parse(string(b[:i]))
}

// ParseString parses a magic string without its NUL, such as
// StartInfo.Magic. It must be at most MagicSize-1 bytes and contain no NUL.
func ParseString(s string) (Magic, error) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return Magic{}, &ParseError{Offset: i, Input: s, Err: ErrBadToken}
	}
	if len(s) > MagicSize-1 {
		return Magic{}, &ParseError{Offset: MagicSize - 1, Input: s, Err: ErrNoNUL}
	}
	return parse(s)
}

const prefix = "xen-"

func parse(s string) (Magic, error) {
	fail := func(off int, err error) (Magic, error) {
		return Magic{}, &ParseError{Offset: off, Input: s, Err: err}
	}
	if !strings.HasPrefix(s, prefix) {
		return fail(0, ErrBadMagic)
	}
	var m Magic
	pos := len(prefix)
	var ok bool
	if m.Major, pos, ok = number(s, pos); !ok {
		return fail(pos, ErrBadVersion)
	}
	if pos >= len(s) || s[pos] != '.' {
		return fail(pos, ErrBadVersion)
	}
	if m.Minor, pos, ok = number(s, pos+1); !ok {
		return fail(pos, ErrBadVersion)
	}
	if pos >= len(s) || s[pos] != '-' {
		return fail(pos, ErrBadVersion)
	}
	pos++
	end := strings.IndexByte(s[pos:], ' ')
	if end < 0 {
		end = len(s)
	} else {
		end += pos
	}
	m.Platform = Platform(s[pos:end])
	if !m.Platform.Known() {
		return fail(pos, ErrUnknownPlatform)
	}
	pos = end
	seen := map[string]bool{}
	for pos < len(s) {
		pos++ // the SP
		end := strings.IndexByte(s[pos:], ' ')
		if end < 0 {
			end = len(s)
		} else {
			end += pos
		}
		tok := s[pos:end]
		name, err := checkToken(tok)
		if err != nil {
			return fail(pos, err)
		}
		if seen[name] {
			return fail(pos, ErrDuplicateToken)
		}
		seen[name] = true
		if tok == TokenSuspendCancel {
			m.SuspendCancel = true
		} else {
			m.Extensions = append(m.Extensions, tok)
		}
		pos = end
	}
	return m, nil
}

// number parses 0..999 without leading zeros at s[pos:].
func number(s string, pos int) (n, next int, ok bool) {
	start := pos
	for pos < len(s) && s[pos] >= '0' && s[pos] <= '9' && pos-start < 4 {
		n = n*10 + int(s[pos]-'0')
		pos++
	}
	digits := pos - start
	if digits == 0 || digits > 3 || (digits > 1 && s[start] == '0') {
		return 0, start, false
	}
	return n, pos, true
}

func lcalpha(c byte) bool { return c >= 'a' && c <= 'z' }
func digit(c byte) bool   { return c >= '0' && c <= '9' }

// checkToken validates one token and returns its name.
func checkToken(tok string) (string, error) {
	name, value, hasValue := strings.Cut(tok, "=")
	if name == "" || !lcalpha(name[0]) {
		return "", ErrBadToken
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !lcalpha(c) && !digit(c) && c != '-' {
			return "", ErrBadToken
		}
	}
	if hasValue {
		if value == "" || name == TokenSuspendCancel {
			return "", ErrBadToken
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; !lcalpha(c) && !digit(c) && c != '-' && c != '.' && c != '_' {
				return "", ErrBadToken
			}
		}
	}
	return name, nil
}

// String returns the magic string without its NUL, in canonical order
// (guest type, "sc" if set, then Extensions). It does not validate: use
// Format for that.
func (m Magic) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s%d.%d-%s", prefix, m.Major, m.Minor, m.Platform)
	if m.SuspendCancel {
		b.WriteString(" " + TokenSuspendCancel)
	}
	for _, e := range m.Extensions {
		b.WriteString(" " + e)
	}
	return b.String()
}

// GuestType returns the standard part "xen-<major>.<minor>-<platform>",
// what libxenguest writes and what old tools compare.
func (m Magic) GuestType() string {
	return fmt.Sprintf("%s%d.%d-%s", prefix, m.Major, m.Minor, m.Platform)
}

// Format validates m and returns the magic[] field: the String form,
// NUL-terminated and NUL-padded to MagicSize bytes. Errors are *ParseError
// wrapping ErrBadVersion, ErrUnknownPlatform, ErrBadToken (also for an
// extension named "sc": set SuspendCancel instead), ErrDuplicateToken or
// ErrTooLong.
func (m Magic) Format() ([MagicSize]byte, error) {
	var out [MagicSize]byte
	s := m.String()
	fail := func(err error) ([MagicSize]byte, error) {
		return [MagicSize]byte{}, &ParseError{Offset: 0, Input: s, Err: err}
	}
	if m.Major < 0 || m.Major > 999 || m.Minor < 0 || m.Minor > 999 {
		return fail(ErrBadVersion)
	}
	if !m.Platform.Known() {
		return fail(ErrUnknownPlatform)
	}
	seen := map[string]bool{TokenSuspendCancel: true}
	for _, e := range m.Extensions {
		name, err := checkToken(e)
		if err != nil {
			return fail(err)
		}
		if seen[name] {
			if name == TokenSuspendCancel {
				return fail(ErrBadToken)
			}
			return fail(ErrDuplicateToken)
		}
		seen[name] = true
	}
	if len(s) > MagicSize-1 {
		return fail(ErrTooLong)
	}
	copy(out[:], s)
	return out, nil
}
