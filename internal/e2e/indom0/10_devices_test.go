//go:build xenckpt_dom0

package indom0

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeviceNodes checks that the dom0 offers what a pure-Go toolstack
// needs: privcmd and its hypercall buffers, evtchn, grant devices, the
// xenbus device and xenstored's socket.
func TestDeviceNodes(t *testing.T) {
	requireDom0(t)
	for _, p := range []string{
		"/dev/xen/privcmd", "/dev/xen/hypercall", "/dev/xen/evtchn",
		"/dev/xen/gntdev", "/dev/xen/gntalloc", "/dev/xen/xenbus",
		"/dev/xen/xenbus_backend",
	} {
		st, err := os.Stat(p)
		if assert.NoError(t, err, p) {
			assert.Equal(t, os.ModeCharDevice|os.ModeDevice, st.Mode().Type(), "%s is not a character device", p)
		}
	}
	caps, err := os.ReadFile("/proc/xen/capabilities")
	require.NoError(t, err)
	assert.Equal(t, "control_d", strings.TrimSpace(string(caps)))
	st, err := os.Stat("/run/xenstored/socket")
	if assert.NoError(t, err) {
		assert.Equal(t, os.ModeSocket, st.Mode().Type())
	}
}
