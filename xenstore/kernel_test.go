package xenstore

import (
	"context"
	"encoding/binary"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
)

// fakeXenbus behaves like /dev/xen/xenbus towards the Client: it fails
// the write(2) of a WATCH frame, as Linux does when the daemon refuses
// the kernel's watch, and passes every other frame on.
type fakeXenbus struct{ net.Conn }

func (fakeXenbus) maxPayload() int { return wire.PayloadMax - wire.HeaderSize }

func (f fakeXenbus) Write(p []byte) (int, error) {
	if wire.Type(binary.NativeEndian.Uint32(p)) == wire.Watch {
		return 0, syscall.ENOSPC
	}
	return f.Conn.Write(p)
}

// TestKernelDeviceRefusals: over the xenbus device, a request over 4080
// payload bytes is refused before sending, and a write(2) the kernel
// refuses is that call's error; the connection stays usable.
func TestKernelDeviceRefusals(t *testing.T) {
	a, d := net.Pipe()
	c := NewClient(fakeXenbus{a}, nil)
	t.Cleanup(func() { c.Close(); d.Close() })
	ctx := context.Background()

	err := c.Write(ctx, "/x", make([]byte, wire.PayloadMax-wire.HeaderSize-2))
	assert.ErrorIs(t, err, syscall.E2BIG)
	_, err = c.Watch(ctx, "/w")
	assert.ErrorIs(t, err, syscall.ENOSPC)

	go func() {
		_ = d.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := wire.ReadMsg(d, wire.PayloadMax)
		if err == nil {
			_ = wire.WriteMsg(d, &wire.Msg{Type: wire.Write, ReqID: m.ReqID, Payload: []byte("OK\x00")})
		}
	}()
	require.NoError(t, c.Write(ctx, "/x", make([]byte, wire.PayloadMax-wire.HeaderSize-3)), "4080 bytes go through; the connection is usable")
}

// TestKernelDeviceOneRequestInFlight: through the xenbus device a
// request is written only after the previous one is answered, even when
// its caller gave up waiting.
func TestKernelDeviceOneRequestInFlight(t *testing.T) {
	a, d := net.Pipe()
	c := NewClient(fakeXenbus{a}, nil)
	t.Cleanup(func() { c.Close(); d.Close() })
	read := func() (*wire.Msg, error) {
		_ = d.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		return wire.ReadMsg(d, wire.PayloadMax)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() {
		_, err := c.Read(ctx, "/a")
		errA <- err
	}()
	first, err := read()
	require.NoError(t, err)
	cancel()
	assert.ErrorIs(t, <-errA, context.Canceled)

	gotB := make(chan []byte, 1)
	go func() {
		v, err := c.Read(context.Background(), "/b")
		assert.NoError(t, err)
		gotB <- v
	}()
	_, err = read()
	require.Error(t, err, "the second request waits for the first reply")
	require.NoError(t, wire.WriteMsg(d, &wire.Msg{Type: wire.Read, ReqID: first.ReqID, Payload: []byte("late")}))
	_ = d.SetReadDeadline(time.Now().Add(5 * time.Second))
	second, err := wire.ReadMsg(d, wire.PayloadMax)
	require.NoError(t, err)
	require.NoError(t, wire.WriteMsg(d, &wire.Msg{Type: wire.Read, ReqID: second.ReqID, Payload: []byte("b")}))
	assert.Equal(t, "b", string(<-gotB))
}
