package magic

import (
	"bytes"
	"context"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/testutil"
	"github.com/xenckpt/xenckpt/magic/internal/xenhdr"
)

// TestLayoutFieldSizes pins what the codec assumes of the generated
// layouts: integers are 4 or 8 bytes, strings as in the header.
func TestLayoutFieldSizes(t *testing.T) {
	for _, l := range []startInfoLayout{layoutX86_64, layoutX86_32} {
		v := reflect.ValueOf(l)
		for i := range v.NumField() {
			f, ok := v.Field(i).Interface().(field)
			if !ok {
				continue
			}
			name := v.Type().Field(i).Name
			switch name {
			case "Magic":
				assert.Equal(t, MagicSize, f.Size)
			case "CmdLine":
				assert.Equal(t, MaxCmdLine, f.Size)
			default:
				assert.Contains(t, []int{4, 8}, f.Size, name)
			}
			assert.LessOrEqual(t, f.Off+f.Size, l.Size, name)
		}
	}
	assert.Equal(t, StartInfoSize64, layoutX86_64.Size)
	assert.Equal(t, StartInfoSize32, layoutX86_32.Size)
}

// TestGeneratedMatchesHeaders regenerates zabi.go from /usr/include/xen
// with the C compiler and requires it to equal the committed file.
func TestGeneratedMatchesHeaders(t *testing.T) {
	testutil.RequireFile(t, "/usr/include/xen/foreign/x86_64.h", "apt-get install libxen-dev")
	v, err := xenhdr.Probe(context.Background(), "")
	if errors.Is(err, xenhdr.ErrNoCompiler) {
		testutil.SkipOrFail(t, err.Error(), "apt-get install gcc")
	}
	require.NoError(t, err)
	src, err := xenhdr.Render(v)
	require.NoError(t, err)
	committed, err := os.ReadFile("zabi.go")
	require.NoError(t, err)
	if !bytes.Equal(src, committed) {
		t.Errorf("zabi.go is stale: run go generate ./magic\n--- generated ---\n%s", src)
	}
	// And the facts the rest of the project relies on (XEN-NOTES §1.6).
	assert.Equal(t, 1168, StartInfoSize64)
	assert.Equal(t, 1112, StartInfoSize32)
	assert.Equal(t, NoteType(14), NoteSuspendCancel)
}
