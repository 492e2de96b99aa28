package xenstore_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

func embedded(t *testing.T) (*xenstoretest.Server, *xenstore.Client) {
	t.Helper()
	srv := xenstoretest.NewServer(nil)
	t.Cleanup(func() { srv.Close() })
	c, err := srv.Client(0)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return srv, c
}

// fake returns a client whose daemon side the test drives frame by frame.
func fake(t *testing.T, cfg *xenstore.Config) (*xenstore.Client, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	c := xenstore.NewClient(a, cfg)
	t.Cleanup(func() { c.Close(); b.Close() })
	return c, b
}

func readReq(t *testing.T, conn net.Conn) *wire.Msg {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	m, err := wire.ReadMsg(conn, wire.PayloadMax)
	require.NoError(t, err)
	return m
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	_, c := embedded(t)
	_, err := c.Read(ctx, "/nope")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	var oe *xenstore.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, &xenstore.OpError{Op: xenstore.OpRead, Path: "/nope", Err: syscall.ENOENT}, oe)
	assert.Equal(t, "xenstore read /nope: no such file or directory", err.Error())

	err = c.Release(ctx, 44)
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "44", oe.Path)
	assert.ErrorIs(t, err, syscall.ENOENT)
}

func TestUnknownErrorName(t *testing.T) {
	c, d := fake(t, nil)
	go func() {
		m := readReq(t, d)
		_ = wire.WriteMsg(d, &wire.Msg{Type: wire.Error, ReqID: m.ReqID, Payload: wire.Strings("EWEIRD")})
	}()
	_, err := c.Read(context.Background(), "/a")
	assert.ErrorIs(t, err, xenstore.ErrProtocol)
}

func TestPayloadLimit(t *testing.T) {
	ctx := context.Background()
	_, c := embedded(t)
	path := "/k"
	exact := make([]byte, wire.PayloadMax-len(path)-1)
	require.NoError(t, c.Write(ctx, path, exact), "4096 bytes including the NUL is allowed")
	err := c.Write(ctx, path, append(exact, 'x'))
	assert.ErrorIs(t, err, syscall.E2BIG)
	_, err = c.Read(ctx, path)
	assert.NoError(t, err, "the connection survives")
}

func TestNeverEmptyPayload(t *testing.T) {
	c, d := fake(t, nil)
	done := make(chan error, 1)
	go func() { done <- c.ResetWatches(context.Background()) }()
	m := readReq(t, d)
	assert.Equal(t, wire.ResetWatches, m.Type)
	assert.Equal(t, []byte{0}, m.Payload, "an empty request carries one NUL")
	require.NoError(t, wire.WriteMsg(d, &wire.Msg{Type: m.Type, ReqID: m.ReqID, Payload: []byte("OK\x00")}))
	require.NoError(t, <-done)
}

// TestCloseUnblocksPendingCalls closes the Client, or the daemon's end
// disconnects, while a call waits for its reply: through the reader
// goroutine (a net.Pipe) and in the direct path's raw read(2) (a unix
// socket from DialSocket).
func TestCloseUnblocksPendingCalls(t *testing.T) {
	peers := map[string]func(t *testing.T) (*xenstore.Client, net.Conn){
		"pipe":   func(t *testing.T) (*xenstore.Client, net.Conn) { return fake(t, nil) },
		"socket": socketPeer,
	}
	for name, peer := range peers {
		for _, who := range []string{"client", "daemon"} {
			t.Run(name+"/"+who, func(t *testing.T) {
				c, d := peer(t)
				errc := make(chan error, 1)
				go func() {
					_, err := c.Read(context.Background(), "/slow")
					errc <- err
				}()
				readReq(t, d) // the request is out; never answered
				if who == "client" {
					require.NoError(t, c.Close())
				} else {
					require.NoError(t, d.Close())
				}
				select {
				case err := <-errc:
					assert.ErrorIs(t, err, net.ErrClosed)
				case <-time.After(5 * time.Second):
					t.Fatal("the call was not unblocked")
				}
				_, err := c.Read(context.Background(), "/after")
				assert.ErrorIs(t, err, net.ErrClosed)
				assert.NoError(t, c.Close(), "closing (again)")
			})
		}
	}
}

func TestConnectionLost(t *testing.T) {
	ctx := context.Background()
	c, d := fake(t, nil)
	go func() {
		m := readReq(t, d)
		_ = wire.WriteMsg(d, &wire.Msg{Type: m.Type, ReqID: m.ReqID, Payload: []byte("OK\x00")})
		_ = wire.WriteMsg(d, &wire.Msg{Type: wire.WatchEvent, Payload: wire.Strings("/w", "xenckpt-1")})
		d.Close()
	}()
	w, err := c.Watch(ctx, "/w")
	require.NoError(t, err)
	_, open := <-w.Events()
	assert.True(t, open)
	_, open = <-w.Events()
	assert.False(t, open, "channel closed when the connection drops")
	assert.ErrorIs(t, w.Err(), net.ErrClosed)
	_, err = c.Read(ctx, "/x")
	assert.ErrorIs(t, err, net.ErrClosed)
}

// TestIdleReader covers the reader waiting for the next call instead of
// reading: a late reply sent while it is idle is dropped by the next
// call's reader, and a connection lost while it is idle fails the next
// call with net.ErrClosed.
func TestIdleReader(t *testing.T) {
	c, d := fake(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(ctx, "/cancelled")
		errc <- err
	}()
	first := readReq(t, d)
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	// The reader is still reading for the cancelled call: the late reply
	// makes it idle.
	require.NoError(t, wire.WriteMsg(d, &wire.Msg{Type: wire.Read, ReqID: first.ReqID, Payload: []byte("late")}))

	for i := range 3 {
		got := make(chan []byte, 1)
		go func() {
			v, err := c.Read(context.Background(), "/k")
			assert.NoError(t, err)
			got <- v
		}()
		m := readReq(t, d)
		assert.NotEqual(t, first.ReqID, m.ReqID)
		want := fmt.Sprintf("v%d", i)
		require.NoError(t, wire.WriteMsg(d, &wire.Msg{Type: wire.Read, ReqID: m.ReqID, Payload: []byte(want)}))
		select {
		case v := <-got:
			assert.Equal(t, want, string(v))
		case <-time.After(5 * time.Second):
			t.Fatal("no reply: the idle reader was not woken")
		}
	}

	require.NoError(t, d.Close()) // the daemon goes away while nobody reads
	_, err := c.Read(context.Background(), "/after")
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = c.Read(context.Background(), "/again")
	assert.ErrorIs(t, err, net.ErrClosed)
}

func TestCancelDropsLateReply(t *testing.T) {
	c, d := fake(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(ctx, "/first")
		errc <- err
	}()
	first := readReq(t, d)
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)

	got := make(chan []byte, 1)
	go func() {
		v, err := c.Read(context.Background(), "/second")
		assert.NoError(t, err)
		got <- v
	}()
	second := readReq(t, d)
	assert.NotEqual(t, first.ReqID, second.ReqID)
	require.NoError(t, wire.WriteMsg(d, &wire.Msg{Type: wire.Read, ReqID: first.ReqID, Payload: []byte("late")}))
	require.NoError(t, wire.WriteMsg(d, &wire.Msg{Type: wire.Read, ReqID: second.ReqID, Payload: []byte("right")}))
	assert.Equal(t, []byte("right"), <-got)
}

func TestRepliesOutOfOrder(t *testing.T) {
	c, d := fake(t, nil)
	type res struct {
		path string
		v    []byte
	}
	out := make(chan res, 2)
	for _, p := range []string{"/a", "/b"} {
		go func() {
			v, err := c.Read(context.Background(), p)
			assert.NoError(t, err)
			out <- res{p, v}
		}()
	}
	m1, m2 := readReq(t, d), readReq(t, d)
	for _, m := range []*wire.Msg{m2, m1} {
		p, _ := wire.CString(m.Payload)
		require.NoError(t, wire.WriteMsg(d, &wire.Msg{Type: wire.Read, ReqID: m.ReqID, Payload: []byte("v" + p)}))
	}
	for range 2 {
		r := <-out
		assert.Equal(t, "v"+r.path, string(r.v))
	}
}

func TestOversizedReplyAccepted(t *testing.T) {
	c, d := fake(t, nil)
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("c%04d", i)
	}
	go func() {
		m := readReq(t, d)
		_ = wire.WriteMsg(d, &wire.Msg{Type: wire.Directory, ReqID: m.ReqID, Payload: wire.Strings(names...)})
	}()
	got, err := c.List(context.Background(), "/big")
	require.NoError(t, err)
	assert.Equal(t, names, got, "oxenstored-style reply over 4096 bytes")
}

func TestDirectoryPartRestartsOnGenerationChange(t *testing.T) {
	c, d := fake(t, nil)
	go func() {
		m := readReq(t, d)
		_ = wire.WriteMsg(d, &wire.Msg{Type: wire.Error, ReqID: m.ReqID, Payload: wire.Strings("E2BIG")})
		replies := []string{"1\x00a\x00", "2\x00x\x00", "2\x00a\x00b\x00\x00"}
		wantOff := []string{"0", "2", "0"}
		for i, r := range replies {
			m := readReq(t, d)
			a := wire.SplitStrings(m.Payload)
			assert.Equal(t, wire.DirectoryPart, m.Type)
			assert.Equal(t, []string{"/d", wantOff[i]}, a)
			_ = wire.WriteMsg(d, &wire.Msg{Type: wire.DirectoryPart, ReqID: m.ReqID, Payload: []byte(r)})
		}
	}()
	got, err := c.List(context.Background(), "/d")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, got)
}

func TestClientRejectsBadPaths(t *testing.T) {
	_, c := embedded(t)
	ctx := context.Background()
	for _, p := range []string{"", "/a/", "/a.b", "/x//y"} {
		assert.ErrorIs(t, c.Write(ctx, p, nil), syscall.EINVAL, "%q", p)
	}
	_, err := c.Watch(ctx, "/bad.path")
	assert.ErrorIs(t, err, syscall.EINVAL)
	assert.ErrorIs(t, c.SetPerms(ctx, "/tool", nil), syscall.EINVAL)
	assert.ErrorIs(t, c.SetPerms(ctx, "/tool", []xenstore.Perm{{Access: 'x'}}), syscall.EINVAL)
}

func TestWatchSlowReaderDoesNotStall(t *testing.T) {
	ctx := context.Background()
	_, c := embedded(t)
	w, err := c.Watch(ctx, "/q")
	require.NoError(t, err)
	defer w.Close()
	const n = 500
	for i := range n {
		require.NoError(t, c.Write(ctx, fmt.Sprintf("/q/%d", i), nil))
	}
	assert.Equal(t, "/q", (<-w.Events()).Path)
	for i := range n {
		assert.Equal(t, fmt.Sprintf("/q/%d", i), (<-w.Events()).Path)
	}
}

func TestWatchEndsWithContext(t *testing.T) {
	_, c := embedded(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.Watch(ctx, "/ctx")
	require.NoError(t, err)
	<-w.Events()
	cancel()
	select {
	case _, open := <-w.Events():
		assert.False(t, open)
	case <-time.After(5 * time.Second):
		t.Fatal("watch not closed after cancel")
	}
	// The daemon no longer knows the watch: closing again is a no-op.
	assert.NoError(t, w.Close())
}

func TestTransactionAbortsOnCancel(t *testing.T) {
	_, c := embedded(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := c.Transaction(ctx, func(tx *xenstore.Tx) error {
		require.NoError(t, tx.Write(ctx, "/t", []byte("x")))
		cancel()
		return ctx.Err()
	})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = c.Read(context.Background(), "/t")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestDialOrder(t *testing.T) {
	srv := xenstoretest.NewServer(nil)
	defer srv.Close()
	dir := t.TempDir()
	l, err := net.Listen("unix", dir+"/socket")
	require.NoError(t, err)
	go srv.Serve(l)
	ctx := context.Background()

	t.Setenv("XENSTORED_PATH", "")
	t.Setenv("XENSTORED_RUNDIR", dir)
	assert.Equal(t, dir+"/socket", xenstore.SocketPath())
	c, err := xenstore.Dial(ctx, nil)
	require.NoError(t, err)
	_, err = c.Read(ctx, "/tool")
	assert.NoError(t, err)
	c.Close()

	t.Setenv("XENSTORED_PATH", dir+"/missing")
	assert.Equal(t, dir+"/missing", xenstore.SocketPath())
	_, err = xenstore.Dial(ctx, nil)
	if err != nil { // on a real Xen host /dev/xen/xenbus would answer
		assert.ErrorIs(t, err, xenstore.ErrNoDaemon)
		assert.True(t, strings.Contains(err.Error(), "missing"), err.Error())
	}
	t.Setenv("XENSTORED_PATH", "")
	t.Setenv("XENSTORED_RUNDIR", "")
	assert.Equal(t, xenstore.DefaultSocket, xenstore.SocketPath())
	_ = errors.New
}

func TestDialSocketCloseUnblocks(t *testing.T) {
	sock := t.TempDir() + "/socket"
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c // reads nothing, answers nothing
		}
	}()
	c, err := xenstore.DialSocket(context.Background(), sock, nil)
	require.NoError(t, err)
	peer := <-accepted
	defer peer.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(context.Background(), "/never")
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the call block in the daemon-less wait
	require.NoError(t, c.Close())
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a call on a blocking socket")
	}

	_, err = xenstore.DialSocket(context.Background(), sock+".missing", nil)
	var oe *xenstore.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, xenstore.OpDial, oe.Op)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestCloseLeaksNoGoroutines(t *testing.T) {
	srv := xenstoretest.NewServer(nil)
	defer srv.Close()
	before := runtime.NumGoroutine()
	ctx := context.Background()
	c, err := srv.Client(0)
	require.NoError(t, err)
	w, err := c.Watch(ctx, "/leak")
	require.NoError(t, err)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = c.Watch(wctx, "/leak2")
	require.NoError(t, err)
	for i := range 10 {
		require.NoError(t, c.Write(ctx, fmt.Sprintf("/leak/%d", i), nil))
	}
	_ = w // never read, never closed
	require.NoError(t, c.Close())
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "client, watch and server-connection goroutines all end")
}

func TestConcurrentCloseErrorsWrapErrClosed(t *testing.T) {
	srv, mem := embedded(t)
	sock := t.TempDir() + "/socket"
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	go srv.Serve(l)
	unix, err := xenstore.DialSocket(context.Background(), sock, nil)
	require.NoError(t, err)
	t.Run("in-memory", func(t *testing.T) { hammerThenClose(t, mem) })
	t.Run("unix-socket", func(t *testing.T) { hammerThenClose(t, unix) })
}

func hammerThenClose(t *testing.T, c *xenstore.Client) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			for {
				if err := c.Write(ctx, "/busy", []byte("x")); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, c.Close())
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.ErrorIs(t, err, net.ErrClosed)
	}
}
