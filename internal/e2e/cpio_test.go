package e2e

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readNewc decodes a newc archive into name -> (mode, rdev major, body).
func readNewc(t *testing.T, b []byte) map[string][3]string {
	t.Helper()
	out := map[string][3]string{}
	hex := func(f []byte) uint64 {
		n, err := strconv.ParseUint(string(f), 16, 32)
		require.NoError(t, err)
		return n
	}
	for off := 0; ; {
		require.GreaterOrEqual(t, len(b)-off, 110)
		h := b[off : off+110]
		require.Equal(t, "070701", string(h[:6]))
		mode, size, major, nameLen := hex(h[14:22]), hex(h[54:62]), hex(h[78:86]), hex(h[94:102])
		name := string(b[off+110 : off+110+int(nameLen)-1])
		off += (110 + int(nameLen) + 3) &^ 3
		body := string(b[off : off+int(size)])
		off += (int(size) + 3) &^ 3
		if name == "TRAILER!!!" {
			return out
		}
		out[name] = [3]string{strconv.FormatUint(mode, 8), strconv.FormatUint(major, 10), body}
	}
}

func TestArchiveNewc(t *testing.T) {
	a := newArchive()
	a.bytes("usr/lib/x", []byte("hello"), 0o755)
	a.symlink("bin/sh", "busybox")
	a.chardev("dev/console", 5, 1)
	var buf bytes.Buffer
	require.NoError(t, a.writeTo(&buf))
	got := readNewc(t, buf.Bytes())
	assert.Equal(t, [3]string{"100755", "0", "hello"}, got["usr/lib/x"])
	assert.Equal(t, [3]string{"120777", "0", "busybox"}, got["bin/sh"])
	assert.Equal(t, [3]string{"20600", "5", ""}, got["dev/console"])
	for _, d := range []string{"usr", "usr/lib", "bin", "dev"} {
		assert.Equal(t, "40755", got[d][0], "parent directory %s", d)
	}
	assert.Len(t, got, 7)
}
