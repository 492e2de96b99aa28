package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// stepWriter collects a command's stderr and calls fn once, when a log
// record containing step is written (slog writes a record in one Write).
type stepWriter struct {
	lockedBuffer
	step string
	once sync.Once
	fn   func()
}

func (w *stepWriter) Write(p []byte) (int, error) {
	n, err := w.lockedBuffer.Write(p)
	if strings.Contains(string(p), w.step) {
		w.once.Do(w.fn)
	}
	return n, err
}

// xenckptAtStep runs the command line in-process like xenckpt, and calls
// fn when its log (ask for it with -vv) reports step: tests act at an
// exact point of an operation instead of after a guessed delay, which a
// loaded CI machine under -race overruns.
func xenckptAtStep(t *testing.T, ctx context.Context, step string, fn func(), args ...string) result {
	t.Helper()
	var stdout lockedBuffer
	stderr := &stepWriter{step: step, fn: fn}
	code := run(ctx, args, strings.NewReader(""), &stdout, stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// receiverCtx bounds an in-process receiver: if the sender fails before
// connecting, the test fails after a minute instead of waiting in accept
// until the go test timeout.
func receiverCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startReceiver runs "xenckpt -v receive ARGS..." in-process under
// receiverCtx and returns once its log says it listens; the result arrives
// on the channel. (Probing the port by binding it could make the
// receiver's own listen fail with EADDRINUSE.)
func startReceiver(t *testing.T, args ...string) <-chan result {
	t.Helper()
	listening := make(chan struct{})
	done := make(chan result, 1)
	ctx := receiverCtx(t)
	go func() {
		done <- xenckptAtStep(t, ctx, `"msg":"listening"`, func() { close(listening) }, append([]string{"-v", "receive"}, args...)...)
	}()
	select {
	case <-listening:
	case r := <-done:
		t.Fatalf("receiver ended before listening: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return done
}
