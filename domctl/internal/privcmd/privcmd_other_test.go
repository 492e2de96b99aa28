//go:build !linux

package privcmd

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStubsReturnErrNotSupported(t *testing.T) {
	_, err := Open()
	assert.ErrorIs(t, err, ErrNotSupported)
	var d Device
	_, err = d.Hypercall(0, [5]uint64{})
	assert.ErrorIs(t, err, ErrNotSupported)
	_, err = d.AllocBuffer(1)
	assert.ErrorIs(t, err, ErrNotSupported)
	_, err = d.MapForeign(1, ProtRead, []uint64{1}, make([]int32, 1))
	assert.ErrorIs(t, err, ErrNotSupported)
	_, err = d.OpenEvtchn()
	assert.ErrorIs(t, err, ErrNotSupported)
	var e Evtchn
	_, err = e.Read(context.Background(), nil)
	assert.ErrorIs(t, err, ErrNotSupported)
}
