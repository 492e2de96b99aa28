package magic_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/magic"
)

func field(s string) []byte {
	b := make([]byte, magic.MagicSize)
	copy(b, s)
	return b
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		in   string
		want magic.Magic
	}{
		{"xen-3.0-x86_64", magic.Magic{Major: 3, Minor: 0, Platform: magic.PlatformX86_64}},
		{"xen-3.0-x86_32p", magic.Magic{Major: 3, Platform: magic.PlatformX86_32P}},
		{"xen-3.0-x86_32", magic.Magic{Major: 3, Platform: magic.PlatformX86_32}},
		{"xen-3.0-aarch64", magic.Magic{Major: 3, Platform: magic.PlatformAArch64}},
		{"xen-3.0-armv7l", magic.Magic{Major: 3, Platform: magic.PlatformARMv7l}},
		{"xen-3.0-x86_64 sc", magic.Magic{Major: 3, Platform: magic.PlatformX86_64, SuspendCancel: true}},
		{"xen-3.0-x86_32p sc", magic.Magic{Major: 3, Platform: magic.PlatformX86_32P, SuspendCancel: true}},
		{"xen-10.999-x86_64 foo=1.2 sc", magic.Magic{Major: 10, Minor: 999, Platform: magic.PlatformX86_64,
			SuspendCancel: true, Extensions: []string{"foo=1.2"}}},
		{"xen-3.0-x86_64 a b-2 c", magic.Magic{Major: 3, Platform: magic.PlatformX86_64, Extensions: []string{"a", "b-2", "c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := magic.Parse(field(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			got2, err := magic.ParseString(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got2)
		})
	}
}

func TestParseIgnoresBytesAfterNUL(t *testing.T) {
	b := field("xen-3.0-x86_64 sc")
	copy(b[20:], "garbage\xff")
	m, err := magic.Parse(b)
	require.NoError(t, err)
	assert.True(t, m.SuspendCancel)
	// A longer slice: only the first 32 bytes count.
	long := append(field("xen-3.0-x86_64"), []byte("more bytes without NUL")...)
	_, err = magic.Parse(long)
	require.NoError(t, err)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in  []byte
		err error
		off int
	}{
		{[]byte("xen-3.0-x86_64"), magic.ErrNoNUL, 14}, // short, no NUL
		{[]byte("xen-3.0-x86_64 sc abcdefghijklmnop"), magic.ErrNoNUL, 32},
		{nil, magic.ErrNoNUL, 0},
		{field(""), magic.ErrBadMagic, 0},
		{field("XEN-3.0-x86_64"), magic.ErrBadMagic, 0},
		{field("hvm-3.0-x86_64"), magic.ErrBadMagic, 0},
		{field("xen-"), magic.ErrBadVersion, 4},
		{field("xen-3"), magic.ErrBadVersion, 5},
		{field("xen-3.-x86_64"), magic.ErrBadVersion, 6},
		{field("xen-03.0-x86_64"), magic.ErrBadVersion, 4},
		{field("xen-1000.0-x86_64"), magic.ErrBadVersion, 4},
		{field("xen-3.0x86_64"), magic.ErrBadVersion, 7},
		{field("xen-3.0-"), magic.ErrUnknownPlatform, 8},
		{field("xen-3.0-x86_64p"), magic.ErrUnknownPlatform, 8},
		{field("xen-3.0-riscv64"), magic.ErrUnknownPlatform, 8},
		{field("xen-3.0-x86_64 "), magic.ErrBadToken, 15},
		{field("xen-3.0-x86_64  sc"), magic.ErrBadToken, 15},
		{field("xen-3.0-x86_64 SC"), magic.ErrBadToken, 15},
		{field("xen-3.0-x86_64 sc=0"), magic.ErrBadToken, 15},
		{field("xen-3.0-x86_64 1a"), magic.ErrBadToken, 15},
		{field("xen-3.0-x86_64 a="), magic.ErrBadToken, 15},
		{field("xen-3.0-x86_64 a=B"), magic.ErrBadToken, 15},
		{field("xen-3.0-x86_64 a\tb"), magic.ErrBadToken, 15},
		{field("xen-3.0-x86_64 sc sc"), magic.ErrDuplicateToken, 18},
		{field("xen-3.0-x86_64 a=1 a=2"), magic.ErrDuplicateToken, 19},
	}
	for _, tt := range tests {
		t.Run(string(tt.in), func(t *testing.T) {
			m, err := magic.Parse(tt.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.err)
			var pe *magic.ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.off, pe.Offset)
			assert.Equal(t, magic.Magic{}, m)
		})
	}
}

func TestParseStringErrors(t *testing.T) {
	_, err := magic.ParseString("xen-3.0-x86_64\x00sc")
	assert.ErrorIs(t, err, magic.ErrBadToken)
	_, err = magic.ParseString("xen-3.0-x86_64 sc abcdefghijklmn") // 32 bytes
	assert.ErrorIs(t, err, magic.ErrNoNUL)
}

func TestFormat(t *testing.T) {
	m := magic.Magic{Major: 3, Platform: magic.PlatformX86_64, SuspendCancel: true, Extensions: []string{"v=2"}}
	b, err := m.Format()
	require.NoError(t, err)
	assert.Equal(t, field("xen-3.0-x86_64 sc v=2"), b[:])
	got, err := magic.Parse(b[:])
	require.NoError(t, err)
	assert.Equal(t, m, got)
	assert.Equal(t, "xen-3.0-x86_64", m.GuestType())

	// The longest standard guest type still fits the token: 18 bytes + NUL.
	m = magic.Magic{Major: 3, Platform: magic.PlatformX86_32P, SuspendCancel: true}
	b, err = m.Format()
	require.NoError(t, err)
	assert.Equal(t, "xen-3.0-x86_32p sc", m.String())
	assert.Equal(t, byte(0), b[18])
}

func TestFormatErrors(t *testing.T) {
	tests := []struct {
		name string
		m    magic.Magic
		err  error
	}{
		{"zero", magic.Magic{}, magic.ErrUnknownPlatform},
		{"platform", magic.Magic{Major: 3, Platform: "x86"}, magic.ErrUnknownPlatform},
		{"major", magic.Magic{Major: -1, Platform: magic.PlatformX86_64}, magic.ErrBadVersion},
		{"minor", magic.Magic{Major: 3, Minor: 1000, Platform: magic.PlatformX86_64}, magic.ErrBadVersion},
		{"badext", magic.Magic{Major: 3, Platform: magic.PlatformX86_64, Extensions: []string{"A"}}, magic.ErrBadToken},
		{"spaceext", magic.Magic{Major: 3, Platform: magic.PlatformX86_64, Extensions: []string{"a b"}}, magic.ErrBadToken},
		{"scext", magic.Magic{Major: 3, Platform: magic.PlatformX86_64, Extensions: []string{"sc"}}, magic.ErrBadToken},
		{"dup", magic.Magic{Major: 3, Platform: magic.PlatformX86_64, Extensions: []string{"a", "a=1"}}, magic.ErrDuplicateToken},
		{"long", magic.Magic{Major: 3, Platform: magic.PlatformX86_64, SuspendCancel: true,
			Extensions: []string{"abcdefghijklmn"}}, magic.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.Format()
			assert.ErrorIs(t, err, tt.err)
			assert.Equal(t, [magic.MagicSize]byte{}, b)
		})
	}
}

func TestPlatform(t *testing.T) {
	assert.Equal(t, 8, magic.PlatformX86_64.Width())
	assert.Equal(t, 4, magic.PlatformX86_32P.Width())
	assert.Equal(t, 4, magic.PlatformX86_32.Width())
	assert.Equal(t, 8, magic.PlatformAArch64.Width())
	assert.Equal(t, 4, magic.PlatformARMv7l.Width())
	assert.Equal(t, 0, magic.Platform("sparc").Width())
	assert.False(t, magic.Platform("").Known())
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"xen-3.0-x86_64", "xen-3.0-x86_32p sc", "xen-3.0-aarch64 sc x=1", "xen-", "hvm-3.0-x86_64 sc"} {
		f.Add(field(s))
	}
	f.Add([]byte("xen-3.0-x86_64 sc abcdefghijklmnopqrstuvw"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := magic.Parse(b)
		if err != nil {
			var pe *magic.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if m.Platform != "" || m.Extensions != nil {
				t.Fatalf("non-zero Magic %+v with error", m)
			}
			return
		}
		out, err := m.Format()
		if err != nil {
			t.Fatalf("Format of parsed %+v: %v", m, err)
		}
		m2, err := magic.Parse(out[:])
		if err != nil {
			t.Fatalf("re-Parse of %q: %v", out, err)
		}
		assert.Equal(t, m, m2)
		out2, err := m2.Format()
		require.NoError(t, err)
		if out != out2 {
			t.Fatalf("Format not stable: %q vs %q", out, out2)
		}
	})
}

// TestOldToolCompatibility checks the three ways pre-token tools find the
// guest type (package doc, "Why a space") against every formatted string.
func TestOldToolCompatibility(t *testing.T) {
	for _, p := range []magic.Platform{magic.PlatformX86_64, magic.PlatformX86_32P, magic.PlatformX86_32, magic.PlatformAArch64, magic.PlatformARMv7l} {
		m := magic.Magic{Major: 3, Platform: p, SuspendCancel: true, Extensions: []string{"v=1"}}
		b, err := m.Format()
		require.NoError(t, err, p)
		s := string(b[:bytes.IndexByte(b[:], 0)])
		gt := "xen-3.0-" + string(p)
		assert.True(t, strings.HasPrefix(s, gt), "strncmp prefix: %q", s)
		assert.Equal(t, gt, strings.Fields(s)[0], "sscanf %%s / whitespace split: %q", s)
		assert.Equal(t, gt, strings.Split(s, " ")[0], "strtok(\" \"): %q", s)
		assert.Equal(t, gt, m.GuestType())
	}
}
