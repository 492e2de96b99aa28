package magic

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/notes64.elf (then run testdata/make.sh)")

// fixtureELF is the ELF every compressed fixture in testdata holds.
func fixtureELF() []byte {
	return buildTestELF(standardTestNotes(false), testELFOptions{CodeBytes: 16 << 10})
}

// TestFixtureELFCurrent keeps testdata/notes64.elf equal to what the
// builder makes, so the compressed fixtures stay meaningful.
func TestFixtureELFCurrent(t *testing.T) {
	if *update {
		require.NoError(t, os.WriteFile("testdata/notes64.elf", fixtureELF(), 0o644))
	}
	b, err := os.ReadFile("testdata/notes64.elf")
	require.NoError(t, err)
	require.True(t, bytes.Equal(fixtureELF(), b), "testdata/notes64.elf is stale: go test -run TestFixtureELFCurrent -update, then testdata/make.sh")
}
