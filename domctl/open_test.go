package domctl_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
)

// TestOpenWithoutXen: off Linux Open is ErrNotSupported; on a Linux
// machine that is not a Xen dom0 it fails cleanly.
func TestOpenWithoutXen(t *testing.T) {
	if _, err := os.Stat("/dev/xen/privcmd"); err == nil {
		t.Skip("this machine has privcmd; the QEMU lab tests Open")
	}
	c, err := domctl.Open(context.Background())
	require.Error(t, err)
	assert.Nil(t, c)
	if runtime.GOOS != "linux" {
		assert.ErrorIs(t, err, domctl.ErrNotSupported)
	} else {
		assert.False(t, errors.Is(err, domctl.ErrNotSupported), "%v", err)
	}
}
