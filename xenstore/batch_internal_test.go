//go:build linux

package xenstore

import (
	"context"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xenckpt/xenckpt/internal/testutil"
)

// halfWriter makes every batched write partial: the socket takes half,
// so the rest goes through the writing goroutine of flushQueued.
type halfWriter struct {
	directConn
	batches, partial *atomic.Int64
}

func (h halfWriter) writeNow(p []byte) (int, error) {
	h.batches.Add(1)
	n, err := h.directConn.writeNow(p[:len(p)/2])
	if n < len(p) {
		h.partial.Add(1)
	}
	return n, err
}

// TestBatchedWrites: calls made while the reader goroutine hands out
// replies are written in batches; a batch the socket takes only in part
// is finished by a goroutine of its own, and every call gets its own
// reply, with either kind of wait for replies.
func TestBatchedWrites(t *testing.T) {
	for _, cfg := range []*Config{nil, {PreemptingWaits: true}} {
		name := "batch-wait"
		if cfg != nil {
			name = "preempting-wait"
		}
		t.Run(name, func(t *testing.T) {
			c, err := DialSocket(context.Background(), echoDaemon(t), cfg)
			require.NoError(t, err)
			defer c.Close()
			var batches, partial atomic.Int64
			c.direct = halfWriter{c.direct, &batches, &partial} // before any call
			_, many := c.msrc.(manyReader)
			assert.Equal(t, cfg == nil, many, "several calls in flight wait with readMany")
			ctx := context.Background()
			long := "/" + strings.Repeat("x", 1000) // several frames fill a batch
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 100 {
						p := long + "/" + string(rune('a'+g)) + "/" + string(rune('a'+i%26))
						v, err := c.Read(ctx, p)
						if !assert.NoError(t, err) || !assert.Equal(t, p, string(v)) {
							return
						}
					}
				})
			}
			wg.Wait()
			if batches.Load() == 0 {
				t.Skip("the callers never queued requests behind the reader on this machine")
			}
			assert.NotZero(t, partial.Load(), "partial batches were finished")
		})
	}
}

// socketPair returns a blockingConn and its peer.
func socketPair(t *testing.T) (*blockingConn, *os.File) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	b, err := newBlockingConn(os.NewFile(uintptr(fds[0]), "client"), fds[0])
	require.NoError(t, err)
	peer := os.NewFile(uintptr(fds[1]), "daemon")
	t.Cleanup(func() { b.Close(); peer.Close() })
	return b, peer
}

func threadPolicy(t *testing.T, tid int) int {
	pol, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	require.Zero(t, e)
	return int(pol)
}

func setThreadPolicy(policy int) error {
	var prm int32
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, uintptr(policy), uintptr(unsafe.Pointer(&prm)))
	if e != 0 {
		return e
	}
	return nil
}

// TestReadManyThreadPolicy: readMany waits as SCHED_BATCH and restores
// SCHED_OTHER afterwards; a thread with another policy is left alone.
func TestReadManyThreadPolicy(t *testing.T) {
	for _, start := range []int{unix.SCHED_NORMAL, unix.SCHED_BATCH} {
		t.Run(map[int]string{unix.SCHED_NORMAL: "other", unix.SCHED_BATCH: "batch"}[start], func(t *testing.T) {
			b, peer := socketPair(t)
			type result struct {
				n, after int
				err      error
			}
			tids := make(chan int, 1)
			done := make(chan result, 1)
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				if err := setThreadPolicy(start); err != nil {
					tids <- -1
					return
				}
				defer setThreadPolicy(unix.SCHED_NORMAL) //nolint:errcheck // best effort, the thread is released anyway
				tids <- unix.Gettid()
				p := make([]byte, 16)
				n, err := b.readMany(p)
				pol, _, _ := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, 0, 0, 0)
				done <- result{n, int(pol), err}
			}()
			tid := <-tids
			if tid < 0 {
				testutil.SkipOrFail(t, "sched_setscheduler(2) is not permitted here", "run as root, or allow sched_setscheduler(2) in the seccomp profile")
			}
			// Wait until the reader waits as SCHED_BATCH.
			deadline := time.Now().Add(10 * time.Second)
			for threadPolicy(t, tid) != unix.SCHED_BATCH && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			assert.Equal(t, unix.SCHED_BATCH, threadPolicy(t, tid), "waiting as SCHED_BATCH")
			time.Sleep(5 * time.Millisecond) // past the socket timeout: the wait in poll(2)
			_, err := peer.Write([]byte("reply"))
			require.NoError(t, err)
			r := <-done
			require.NoError(t, r.err)
			assert.Equal(t, 5, r.n)
			assert.Equal(t, start, r.after, "policy after the wait")

			// Data already there: returned without waiting.
			_, err = peer.Write([]byte("more"))
			require.NoError(t, err)
			p := make([]byte, 16)
			n, err := b.readMany(p)
			require.NoError(t, err)
			assert.Equal(t, "more", string(p[:n]))
		})
	}
}
