package checkpoint_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/xensim"
)

// FuzzRestore feeds mutated images to Restore: it must never panic, and a
// failed restore must leave no domain behind.
func FuzzRestore(f *testing.F) {
	e := newEnv(f, nil)
	for _, k := range kinds {
		g := e.guest(f, xensim.GuestConfig{Kind: k, Pages: 8})
		var img bytes.Buffer
		_, err := e.c.Checkpoint(testCtx(f), g.Domain(), &img, &checkpoint.SaveOptions{Resume: optsFor(k, xensim.ConventionSeed)})
		require.NoError(f, err)
		f.Add(img.Bytes())
		require.NoError(f, e.hv.DestroyDomain(testCtx(f), g.Domain()))
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dom, err := e.c.Restore(ctx, bytes.NewReader(img), &checkpoint.RestoreOptions{Paused: true})
		if err == nil {
			require.NotZero(t, dom)
			require.NoError(t, e.hv.DestroyDomain(ctx, dom))
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(e.domains()) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("restore left domains %v (err %v)", e.domains(), err)
			}
			time.Sleep(time.Millisecond)
		}
	})
}
