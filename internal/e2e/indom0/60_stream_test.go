//go:build xenckpt_dom0

package indom0

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
)

// xlImage returns the path of an xl image of a guest of type typ: the one
// TestXLBaseline left, or a fresh `xl save -c` if it is missing.
func xlImage(t *testing.T, typ, name string) string {
	t.Helper()
	p := filepath.Join(imageDir, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	require.NoError(t, os.MkdirAll(imageDir, 0o755))
	g := ensureGuest(t, typ)
	mustXL(t, 3*time.Minute, "save", "-c", g.Name, p)
	return p
}

// TestStreamReadsXLImages has the project's stream reader validate and walk
// every record of the images xl wrote in this run, page data included.
func TestStreamReadsXLImages(t *testing.T) {
	requireDom0(t)
	for _, typ := range guestTypes {
		for _, kind := range []string{"xl-ckpt-", "xl-save-"} {
			t.Run(kind+typ, func(t *testing.T) {
				if kind == "xl-save-" && testing.Short() {
					t.Skip("short mode reads the checkpoint images only")
				}
				if kind == "xl-save-" {
					if _, err := os.Stat(filepath.Join(imageDir, kind+typ)); err != nil {
						t.Skip("no xl save image: TestXLBaseline did not run")
					}
				}
				readImage(t, xlImage(t, typ, kind+typ), typ, true)
			})
		}
	}
}

// readImage has the stream reader walk every record of the image at path,
// page data included; wantXL requires xl's header with the domain config.
func readImage(t *testing.T, path, typ string, wantXL bool) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	start := time.Now()
	r := stream.NewReader(bufio.NewReaderSize(f, 1<<20), nil)
	var (
		kinds     = map[stream.Kind]int{}
		types     = map[stream.RecordType]int{}
		pages     int
		nonZero   int
		sawConfig bool
	)
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "stream reader on %s after %d records", path, len(kinds)+len(types))
		kinds[rec.Kind]++
		if rec.Kind == stream.KindXLHeader {
			sawConfig = len(rec.XL.Config) > 0
		}
		if rec.Kind != stream.KindLibxc {
			continue
		}
		types[rec.Type]++
		if rec.Type == stream.RecPageData && rec.DataPages > 0 {
			data, err := r.Pages()
			require.NoError(t, err)
			require.Len(t, data, rec.DataPages*4096)
			pages += rec.DataPages
			for i := 0; i < len(data); i += 4096 {
				for _, b := range data[i : i+4096] {
					if b != 0 {
						nonZero++
						break
					}
				}
			}
		}
	}
	st, _ := f.Stat()
	t.Logf("%s: %d bytes, %d pages (%d non-zero), records %v, read in %.2fs",
		filepath.Base(path), st.Size(), pages, nonZero, types, time.Since(start).Seconds())
	recordTiming(t, "xenckpt", "stream read "+strings.TrimSuffix(filepath.Base(path), "-"+typ), typ, time.Since(start))
	if wantXL {
		assert.True(t, sawConfig, "xl header carries the domain config")
	}
	want := stream.DomainTypePV
	if typ == "pvh" {
		want = stream.DomainTypeHVM
	}
	assert.Equal(t, want, r.DomainType())
	// A 128 MiB guest: about 32768 populated pages.
	assert.Greater(t, pages, 30000, "page count of a 128 MiB guest")
	assert.Greater(t, nonZero, 1000, "non-zero pages")
	assert.Equal(t, 1, types[stream.RecEnd], "one libxc END")
}
