package checkpoint_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/xensim"
)

// TestResultCountsDataPages: Result.Pages counts every pfn entry of the
// PAGE_DATA records, holes included; DataPages and Bytes only the pages
// that carried data, which are exactly the image's data pages.
func TestResultCountsDataPages(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			e := newEnv(t, nil)
			g := e.guest(t, xensim.GuestConfig{Kind: k, Convention: xensim.ConventionLinux, Pages: 64})
			var img bytes.Buffer
			res, err := e.c.Checkpoint(testCtx(t), g.Domain(), &img, &checkpoint.SaveOptions{Resume: optsFor(k, xensim.ConventionLinux)})
			require.NoError(t, err)
			pages := imagePages(t, img.Bytes())
			assert.EqualValues(t, len(pages), res.DataPages)
			assert.Equal(t, res.DataPages*4096, res.Bytes)
			assert.GreaterOrEqual(t, res.Pages, res.DataPages)
		})
	}
}
