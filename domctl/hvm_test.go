package domctl_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
)

// hvmBlob builds an HVM context: HEADER, CPU records for vcpus 0 and 1,
// END, with each CPU record's rax set to 0x100+vcpu.
func hvmBlob() []byte {
	rec := func(typ, inst uint16, body []byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, typ)
		b = binary.LittleEndian.AppendUint16(b, inst)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
		return append(b, body...)
	}
	var hc []byte
	hc = append(hc, rec(1, 0, make([]byte, 24))...)
	for v := range uint16(2) {
		cpu := make([]byte, 1024) // a compat-sized record; 4.17 writes 1032 bytes
		binary.LittleEndian.PutUint64(cpu[512:], 0x100+uint64(v))
		hc = append(hc, rec(2, v, cpu)...)
	}
	return append(hc, rec(0, 0, nil)...)
}

func TestHVMContextRAX(t *testing.T) {
	hc := hvmBlob()
	rax, err := domctl.HVMContextRAX(hc, 1)
	require.NoError(t, err)
	assert.EqualValues(t, 0x101, rax)
	require.NoError(t, domctl.SetHVMContextRAX(hc, 1, 1))
	assert.EqualValues(t, 1, binary.LittleEndian.Uint64(hc[8+24+8+1024+8+512:]))
	rax, err = domctl.HVMContextRAX(hc, 0)
	require.NoError(t, err)
	assert.EqualValues(t, 0x100, rax, "vCPU 0 untouched")

	_, err = domctl.HVMContextRAX(hc, 2)
	assert.ErrorIs(t, err, domctl.ErrBadHVMContext)
	_, err = domctl.HVMContextRAX(hc[:100], 1)
	assert.ErrorIs(t, err, domctl.ErrBadHVMContext)
	_, err = domctl.HVMContextRAX(nil, 0)
	assert.ErrorIs(t, err, domctl.ErrBadHVMContext)
}
