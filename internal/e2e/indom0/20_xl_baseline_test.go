//go:build xenckpt_dom0

package indom0

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestXLBaseline runs xl's own checkpoint, save, restore and (PVH) live
// migration on PV and PVH guests and records their timings: these are the
// numbers the project's operations are compared with. It also proves the
// lab's guests survive each operation with their in-memory counter intact.
func TestXLBaseline(t *testing.T) {
	requireDom0(t)
	require.NoError(t, os.MkdirAll(imageDir, 0o755))
	for _, typ := range guestTypes {
		t.Run(typ, func(t *testing.T) { xlBaseline(t, typ) })
	}
}

func xlBaseline(t *testing.T, typ string) {
	g := ensureGuest(t, typ)
	ckpt := filepath.Join(imageDir, "xl-ckpt-"+typ)
	img := filepath.Join(imageDir, "xl-save-"+typ)

	// 1. xl save -c: the guest keeps running.
	t0, m := g.freshTick(t)
	_, d := mustXL(t, 3*time.Minute, "save", "-c", g.Name, ckpt)
	recordTiming(t, "xl", "save -c", typ, d)
	require.True(t, g.exists(t.Context()), "step save -c: %s is gone after a checkpoint", g.Name)
	after := g.waitTick(t, m, tickWait)
	assert.Greater(t, after, t0, "step save -c: counter went backwards")
	ckptEnd := g.ticks()

	// 2. xl save: the domain goes; xl restore: it resumes at last+1.
	_, _ = g.freshTick(t)
	_, d = mustXL(t, 3*time.Minute, "save", g.Name, img)
	recordTiming(t, "xl", "save", typ, d)
	require.False(t, g.exists(t.Context()), "step save: %s still exists after xl save", g.Name)
	if st, err := os.Stat(img); assert.NoError(t, err) {
		t.Logf("xl save image of %s: %d bytes", typ, st.Size())
	}
	ticks := g.ticks()
	last := ticks[len(ticks)-1]
	m = len(ticks)
	_, d = mustXL(t, 3*time.Minute, "restore", img)
	recordTiming(t, "xl", "restore", typ, d)
	first := g.waitTick(t, m, tickWait)
	assert.Equal(t, last+1, first, "step restore: first tick after restore")

	// 3. xl migrate to localhost. Debian's Xen has no shadow paging, so
	// PV log-dirty (and thus PV live migration) is refused; the guest must
	// survive the refusal (checked in full mode; TestDomctlGuests checks the
	// refusal itself every time).
	if typ == "pv" && testing.Short() {
		return
	}
	_, m = g.freshTick(t)
	before := g.ticks()[m-1]
	start := time.Now()
	_, err := xl(t.Context(), 5*time.Minute, "migrate", "-s", "", g.Name, "xl migrate-receive")
	d = time.Since(start)
	if typ == "pv" {
		if err == nil {
			t.Logf("PV live migration unexpectedly worked (%.2fs)", d.Seconds())
			recordTiming(t, "xl", "migrate", typ, d)
		} else {
			t.Logf("PV live migration refused as expected on this Xen build (%.2fs): %v", d.Seconds(), firstLine(err.Error()))
		}
	} else {
		require.NoError(t, err, "step migrate")
		recordTiming(t, "xl", "migrate", typ, d)
	}
	require.True(t, g.exists(t.Context()), "step migrate: %s is gone", g.Name)
	next := g.waitTick(t, m, tickWait)
	assert.Equal(t, before+1, next, "step migrate: counter after migrate")

	// 4. Roll back to the checkpoint: destroy, restore the checkpoint image;
	// the counter resumes inside the checkpoint window.
	if !fullMode() {
		return
	}
	_, m = g.freshTick(t)
	destroyed := g.ticks()[m-1]
	mustXL(t, time.Minute, "destroy", g.Name)
	m = g.mark()
	_, d = mustXL(t, 3*time.Minute, "restore", ckpt)
	recordTiming(t, "xl", "restore checkpoint", typ, d)
	resumed := g.waitTick(t, m, tickWait)
	assert.GreaterOrEqual(t, resumed, t0, "step rollback: resumed before the checkpoint")
	assert.LessOrEqual(t, resumed, ckptEnd[len(ckptEnd)-1]+1, "step rollback: resumed after the checkpoint window")
	assert.Less(t, resumed, destroyed, "step rollback: did not go back")
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
