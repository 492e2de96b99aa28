package checkpoint_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/xensim"
)

// lateCancelStore is a Store whose write of the suspend request reaches
// xenstored and is carried out by the guest, and only then reports ctx's
// cancellation: what a Ctrl-C during the call's wait for its reply gives.
type lateCancelStore struct {
	checkpoint.Store
	g      *xensim.Guest
	cancel context.CancelFunc
}

func (s lateCancelStore) Write(ctx context.Context, path string, v []byte) error {
	if !strings.HasSuffix(path, "/control/shutdown") || string(v) != "suspend" {
		return s.Store.Write(ctx, path, v)
	}
	bg := context.WithoutCancel(ctx)
	if err := s.Store.Write(bg, path, v); err != nil {
		return err
	}
	wctx, done := context.WithTimeout(bg, 20*time.Second)
	defer done()
	if err := s.g.WaitState(wctx, xensim.GuestSuspended); err != nil {
		return err
	}
	s.cancel()
	return ctx.Err()
}

// TestCancelDuringSuspendRequest: ctx ends while the write of the suspend
// request waits for its reply, after the guest has acted on it. The guest
// must not be left suspended: a guard resumes it.
func TestCancelDuringSuspendRequest(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{})
	require.NoError(t, g.WaitConnected(testCtx(t)))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	c := checkpoint.New(e.hv, lateCancelStore{Store: e.xs, g: g, cancel: cancel}, &e.cfg)
	_, err := c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, g.WaitState(testCtx(t), xensim.GuestRunning), "the guest was left suspended")
	e.requireRunning(t, g)
	assert.EqualValues(t, 1, g.Suspends())
	assert.EqualValues(t, 0, g.LastSuspendReturn(), "resumed with the cancel value")
}
