package xenstore_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

// socketPeer returns a Client made by DialSocket (so its calls take the
// direct path) and the daemon's end of its connection, driven by the
// test.
func socketPeer(t *testing.T) (*xenstore.Client, net.Conn) {
	t.Helper()
	sock := t.TempDir() + "/socket"
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := xenstore.DialSocket(context.Background(), sock, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	peer := <-accepted
	t.Cleanup(func() { peer.Close() })
	return c, peer
}

func frame(t *testing.T, m *wire.Msg) []byte {
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	return b
}

// TestDirectReplyInPieces sends a reply as header, then (after the
// direct path's 2 ms bound, so the reader goroutine takes over the
// half-read frame) the payload, then two replies in one write.
func TestDirectReplyInPieces(t *testing.T) {
	c, d := socketPeer(t)
	go func() {
		m := readReq(t, d)
		b := frame(t, &wire.Msg{Type: wire.Read, ReqID: m.ReqID, Payload: []byte("slow value")})
		_, _ = d.Write(b[:7])
		time.Sleep(5 * time.Millisecond)
		_, _ = d.Write(b[7:20])
		time.Sleep(5 * time.Millisecond)
		_, _ = d.Write(b[20:])
	}()
	v, err := c.Read(context.Background(), "/slow")
	require.NoError(t, err)
	assert.Equal(t, "slow value", string(v))

	for i := range 20 { // direct again, replies arriving at once
		go func() {
			m := readReq(t, d)
			_, _ = d.Write(frame(t, &wire.Msg{Type: wire.Read, ReqID: m.ReqID, Payload: fmt.Appendf(nil, "v%d", i)}))
		}()
		v, err := c.Read(context.Background(), "/k")
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("v%d", i), string(v))
	}
}

// TestDirectCancelAndLateReply cancels a call whose reply never comes in
// time: the call returns within a few milliseconds, and its late reply
// is dropped by the next call.
func TestDirectCancelAndLateReply(t *testing.T) {
	c, d := socketPeer(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(ctx, "/never")
		errc <- err
	}()
	first := readReq(t, d)
	cancel()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not end the call")
	}
	go func() {
		m := readReq(t, d)
		_, _ = d.Write(frame(t, &wire.Msg{Type: wire.Read, ReqID: first.ReqID, Payload: []byte("late")}))
		_, _ = d.Write(frame(t, &wire.Msg{Type: wire.Read, ReqID: m.ReqID, Payload: []byte("mine")}))
	}()
	v, err := c.Read(context.Background(), "/next")
	require.NoError(t, err)
	assert.Equal(t, "mine", string(v))
}

// TestDirectMixedWithWatchesAndCallers has calls alternate between the
// direct path and the reader goroutine on a unix socket to the embedded
// server: synchronous calls, bursts of concurrent ones, and a watch
// registered meanwhile, whose events must all arrive.
func TestDirectMixedWithWatchesAndCallers(t *testing.T) {
	srv := xenstoretest.NewServer(nil)
	t.Cleanup(func() { srv.Close() })
	sock := t.TempDir() + "/socket"
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	go srv.Serve(l)
	ctx := context.Background()
	c, err := xenstore.DialSocket(ctx, sock, nil)
	require.NoError(t, err)
	defer c.Close()

	for round := range 5 {
		for i := range 20 {
			p := fmt.Sprintf("/mixed/%d/%d", round, i)
			require.NoError(t, c.Write(ctx, p, []byte(p)))
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 20 {
					p := fmt.Sprintf("/mixed/%d/%d", round, (i+g)%20)
					v, err := c.Read(ctx, p)
					if !assert.NoError(t, err) || !assert.Equal(t, p, string(v)) {
						return
					}
				}
			})
		}
		w, err := c.Watch(ctx, fmt.Sprintf("/mixed/%d", round))
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("/mixed/%d", round), nextEvent(t, w).Path, "initial event")
		wg.Wait()
		require.NoError(t, c.Write(ctx, fmt.Sprintf("/mixed/%d/new", round), nil))
		assert.Equal(t, fmt.Sprintf("/mixed/%d/new", round), nextEvent(t, w).Path)
		require.NoError(t, w.Close())
	}
}

func nextEvent(t *testing.T, w *xenstore.Watch) xenstore.Event {
	t.Helper()
	select {
	case e, ok := <-w.Events():
		require.True(t, ok, "watch closed: %v", w.Err())
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return xenstore.Event{}
}
