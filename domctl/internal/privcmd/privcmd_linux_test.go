//go:build linux

package privcmd

import (
	"context"
	"encoding/binary"
	"io/fs"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// requireXen skips unless this is a Xen dom0 (privcmd present); with
// XENGO_REQUIRE_XEN=1 (set in the end-to-end jobs) it fails instead.
func requireXen(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(privcmdPaths[0]); err != nil {
		if os.Getenv("XENGO_REQUIRE_XEN") == "1" {
			t.Fatalf("XENGO_REQUIRE_XEN=1 but %s: %v", privcmdPaths[0], err)
		}
		t.Skipf("not a Xen dom0 (%v); try: modprobe xen-privcmd, or run in the QEMU lab", err)
	}
}

func TestOpenWithoutXen(t *testing.T) {
	if _, err := os.Stat(privcmdPaths[0]); err == nil {
		t.Skip("this machine has privcmd; see TestIntegrationHypercall")
	}
	_, err := Open()
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestIntegrationHypercall(t *testing.T) {
	requireXen(t)
	d, err := Open()
	require.NoError(t, err)
	defer d.Close()
	// XENVER_version needs no buffer: it returns major<<16 | minor.
	v, err := d.Hypercall(abi.HYPERVISOR_xen_version, [5]uint64{abi.XENVER_version})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, v>>16, uint64(4))
	buf, err := d.AllocBuffer(abi.XEN_CAPABILITIES_INFO_LEN)
	require.NoError(t, err)
	defer d.FreeBuffer(buf)
	_, err = d.Hypercall(abi.HYPERVISOR_xen_version, [5]uint64{abi.XENVER_capabilities, abi.BufferPointer(buf).Addr()})
	require.NoError(t, err)
	assert.Contains(t, string(buf), "xen-3.0-")
}

func TestAllocBufferAnonymousFallback(t *testing.T) {
	d := &Device{} // no /dev/xen/hypercall
	b, err := d.AllocBuffer(100)
	if err != nil && (err == syscall.EPERM || err == syscall.EAGAIN) {
		t.Skipf("cannot lock memory here: %v", err)
	}
	require.NoError(t, err)
	assert.Len(t, b, pageSize)
	assert.Equal(t, make([]byte, pageSize), b)
	require.NoError(t, d.FreeBuffer(b))
	_, err = d.AllocBuffer(0)
	assert.ErrorIs(t, err, syscall.EINVAL)
}

// TestRetryPaged checks the ENOENT retry: only runs still at -ENOENT are
// re-issued, with their own slices of memory, frames and errors.
func TestRetryPaged(t *testing.T) {
	enoent := -int32(syscall.ENOENT)
	type req struct {
		first uint64
		n     int
	}
	var reqs []req
	pagedOut := map[uint64]int{1: 2, 2: 1, 4: 1} // gfn -> rounds it stays paged out
	d := &Device{}
	d.batch = func(dom uint16, mem []byte, gfns []uint64, errs []int32) error {
		assert.Len(t, mem, len(gfns)*pageSize)
		reqs = append(reqs, req{gfns[0], len(gfns)})
		any := false
		for i, g := range gfns {
			if pagedOut[g] > 0 {
				pagedOut[g]--
				errs[i] = enoent
				any = true
			} else {
				errs[i] = 0
			}
		}
		if any {
			return syscall.ENOENT
		}
		return nil
	}
	gfns := []uint64{0, 1, 2, 3, 4}
	errs := make([]int32, len(gfns))
	mem := make([]byte, len(gfns)*pageSize)
	require.ErrorIs(t, d.batch(0, mem, gfns, errs), syscall.ENOENT)
	require.NoError(t, d.retryPagedFor(0, mem, gfns, errs, time.Second))
	assert.Equal(t, make([]int32, 5), errs)
	assert.Equal(t, []req{{0, 5}, {1, 2}, {4, 1}, {1, 1}}, reqs)

	// A frame that never comes back keeps -ENOENT; that is not an error.
	pagedOut = map[uint64]int{3: 1 << 30}
	reqs = nil
	require.ErrorIs(t, d.batch(0, mem, gfns, errs), syscall.ENOENT)
	require.NoError(t, d.retryPagedFor(0, mem, gfns, errs, 5*time.Millisecond))
	assert.Equal(t, []int32{0, 0, 0, enoent, 0}, errs)
}

// pipeEvtchn is an Evtchn over a non-blocking pipe, to test Read's
// context handling without /dev/xen/evtchn.
func pipeEvtchn(t *testing.T) (*Evtchn, *os.File) {
	var fds [2]int
	require.NoError(t, unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
	e := &Evtchn{f: os.NewFile(uintptr(fds[0]), "pipe")}
	w := os.NewFile(uintptr(fds[1]), "pipe-w")
	t.Cleanup(func() { e.Close(); w.Close() })
	return e, w
}

func TestEvtchnReadContext(t *testing.T) {
	e, w := pipeEvtchn(t)
	var p [4]byte
	binary.LittleEndian.PutUint32(p[:], 5)
	_, err := w.Write(p[:])
	require.NoError(t, err)
	var got [4]byte
	n, err := e.Read(context.Background(), got[:])
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	assert.Equal(t, p, got)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = e.Read(ctx, got[:])
	assert.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = e.Read(ctx, got[:])
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// The deadline is cleared: a later read works.
	_, err = w.Write(p[:])
	require.NoError(t, err)
	n, err = e.Read(context.Background(), got[:])
	require.NoError(t, err)
	assert.Equal(t, 4, n)
}
