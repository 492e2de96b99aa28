package xenstore

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
)

// echoDaemon answers every READ on a unix socket with the path read.
func echoDaemon(t *testing.T) string {
	sock := t.TempDir() + "/socket"
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				for {
					m, err := wire.ReadMsg(conn, wire.PayloadMax)
					if err != nil {
						return
					}
					p, _ := wire.CString(m.Payload)
					if wire.WriteMsg(conn, &wire.Msg{Type: m.Type, ReqID: m.ReqID, Payload: []byte(p)}) != nil {
						return
					}
				}
			}()
		}
	}()
	return sock
}

// countingReader counts the reader goroutine's reads: through
// Client.rwc (scheduler-aware) and Client.msrc (while several calls are
// in flight).
type countingReader struct {
	io.Reader
	reads *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Reader.Read(p)
}

// TestDirectPathTaken: a lone caller never wakes the reader goroutine;
// after calls overlapped, the next calls go through it, and the direct
// path comes back after sharedCalls lone calls.
func TestDirectPathTaken(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		// A direct read holds the only P, which the in-process daemon
		// needs: every direct read would time out.
		t.Skip("needs GOMAXPROCS >= 2 for its in-process daemon")
	}
	c, err := DialSocket(context.Background(), echoDaemon(t), nil)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	var reads atomic.Int64
	// Before any call: the reader has not run.
	c.rwc = struct {
		io.Reader
		io.WriteCloser
	}{countingReader{c.rwc, &reads}, c.rwc}
	c.msrc = countingReader{c.msrc, &reads}
	for range 10 {
		v, err := c.Read(ctx, "/lone")
		require.NoError(t, err)
		assert.Equal(t, "/lone", string(v))
	}
	if reads.Load() > 0 {
		// Only a timed-out direct read may send lone calls through the
		// reader goroutine: then the in-process daemon did not get a
		// CPU within 2 ms, which a loaded machine (and -race) can do.
		c.mu.Lock()
		slow := c.shared > 0
		c.mu.Unlock()
		require.True(t, slow, "lone calls read their replies themselves")
		t.Skip("a direct read timed out: the in-process daemon did not run within 2 ms")
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, err := c.Read(ctx, "/shared")
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	shared := c.shared
	c.mu.Unlock()
	if shared == 0 {
		t.Skip("the 8 callers never overlapped on this machine")
	}
	assert.NotZero(t, reads.Load(), "overlapping calls went through the reader goroutine")
	for range sharedCalls {
		_, err := c.Read(ctx, "/lone")
		require.NoError(t, err)
	}
	before := reads.Load()
	for range 10 {
		_, err := c.Read(ctx, "/lone")
		require.NoError(t, err)
	}
	// A call racing the reader goroutine's last yield (on another CPU)
	// may still go through it once; a timed-out direct read sends more.
	c.mu.Lock()
	slow := c.shared > 0
	c.mu.Unlock()
	if !slow {
		assert.LessOrEqual(t, reads.Load()-before, int64(2), "after sharedCalls lone calls, the direct path again")
	}
}
