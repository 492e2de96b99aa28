package xenhdr

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAndRender(t *testing.T) {
	out := "size start_info_x86_64 1168\n" +
		"field start_info_x86_64 magic 0 32\n" +
		"field start_info_x86_64 nr_pages 32 8\n" +
		"size start_info_x86_32 1112\n" +
		"field start_info_x86_32 magic 0 32\n" +
		"sif SIF_PRIVILEGED 1\n" +
		"note XEN_ELFNOTE_SUSPEND_CANCEL 14\n" +
		"max MAX_GUEST_CMDLINE 1024\n"
	v, err := parse([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, uint64(1168), v.Layouts[0].Size)
	assert.Equal(t, []Field{{"magic", 0, 32}, {"nr_pages", 32, 8}}, v.Layouts[0].Fields)
	assert.Equal(t, []Const{{"XEN_ELFNOTE_SUSPEND_CANCEL", 14}}, v.ElfNotes)
	assert.Equal(t, uint64(1024), v.MaxCmdLen)
	src, err := Render(v)
	require.NoError(t, err)
	assert.Contains(t, string(src), "NoteSuspendCancel NoteType = 14")
	assert.Contains(t, string(src), "NrPages: field{32, 8}")
	assert.True(t, strings.HasPrefix(string(src), "// Code generated"))
}

func TestParseRejectsGarbage(t *testing.T) {
	_, err := parse([]byte("size start_info_x86_64 notanumber\n"))
	assert.Error(t, err)
	_, err = parse([]byte("what is this\n"))
	assert.Error(t, err)
	_, err = parse([]byte("field unknown_struct magic 0 32\n"))
	assert.Error(t, err)
}

func TestCSourceCoversEveryField(t *testing.T) {
	src := CSource()
	for _, f := range fields {
		assert.Contains(t, src, "F(start_info_x86_32, "+f+")")
		assert.Contains(t, src, "F(start_info_x86_64, "+f+")")
	}
	for _, n := range noteNames {
		assert.Contains(t, src, n)
	}
}
