package main

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/magic"
)

// xenNote is one "Xen" ELF note.
type xenNote struct {
	typ  uint32
	desc []byte
}

// buildKernel writes a minimal x86-64 ELF executable whose only program
// header is a PT_NOTE segment holding notes.
func buildKernel(notes ...xenNote) []byte {
	le := binary.LittleEndian
	var body []byte
	for _, n := range notes {
		body = le.AppendUint32(body, 4)
		body = le.AppendUint32(body, uint32(len(n.desc)))
		body = le.AppendUint32(body, n.typ)
		body = append(body, "Xen\x00"...)
		body = append(body, n.desc...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
	}
	const ehsize, phsize = 64, 56
	b := []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	b = le.AppendUint16(b, 2)  // ET_EXEC
	b = le.AppendUint16(b, 62) // EM_X86_64
	b = le.AppendUint32(b, 1)
	b = le.AppendUint64(b, 0)      // entry
	b = le.AppendUint64(b, ehsize) // phoff
	b = le.AppendUint64(b, 0)      // shoff
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, ehsize)
	b = le.AppendUint16(b, phsize)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 64)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 4) // PT_NOTE
	b = le.AppendUint32(b, 4) // PF_R
	b = le.AppendUint64(b, ehsize+phsize)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint64(b, uint64(len(body)))
	b = le.AppendUint64(b, uint64(len(body)))
	b = le.AppendUint64(b, 4)
	return append(b, body...)
}

func TestCapsKernel(t *testing.T) {
	linux := writeFile(t, "vmlinux", buildKernel(
		xenNote{6, []byte("linux\x00")},                           // GUEST_OS
		xenNote{5, []byte("xen-3.0\x00")},                         // XEN_VERSION
		xenNote{14, []byte{1, 0, 0, 0}},                           // SUSPEND_CANCEL
		xenNote{1, []byte{0, 0, 0, 0x81, 0xff, 0xff, 0xff, 0xff}}, // ENTRY
	))
	r := xenckpt(t, t.Context(), "caps", "--json", linux)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	m := jsonOf(t, r)
	assert.Equal(t, linux, m["kernel"])
	assert.Equal(t, "elf", m["kind"])
	assert.Equal(t, true, m["suspend_cancel"])
	assert.Equal(t, "upstream", m["convention"])
	assert.Equal(t, "elf-note", m["convention_source"])
	assert.Equal(t, "linux", m["guest_os"])
	assert.Len(t, m["notes"], 4)

	r = xenckpt(t, t.Context(), "caps", linux)
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "suspend-cancel: yes (XEN_ELFNOTE_SUSPEND_CANCEL) -> upstream convention, cancel writes 1")

	// A kernel without the note: nothing is guessed.
	old := writeFile(t, "old", buildKernel(xenNote{6, []byte("linux\x00")}))
	r = xenckpt(t, t.Context(), "caps", "--json", old)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	m = jsonOf(t, r)
	assert.Equal(t, false, m["suspend_cancel"])
	assert.Equal(t, "unknown", m["convention"])

	// Not a kernel at all: an image error.
	r = xenckpt(t, t.Context(), "caps", "--json", writeFile(t, "junk", []byte("#!/bin/sh\necho hello\n")))
	assert.Equal(t, exitImage, r.code, r.stdout)
}

func TestCheckpointWithKernelNote(t *testing.T) {
	// --kernel tells the toolstack the guest is a Linux-convention guest.
	k := writeFile(t, "vmlinux", buildKernel(xenNote{14, []byte{1, 0, 0, 0}}))
	r := xenckpt(t, t.Context(), "caps", "--sim", "--guest-type", "pv", "--guest-convention", "legacy", "--guest-mem", "1",
		"--kernel", k, "--json")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	m := jsonOf(t, r)
	assert.Equal(t, "upstream", m["convention"])
	assert.Equal(t, "elf-note", m["convention_source"])
	assert.Equal(t, true, m["elf_note_suspend_cancel"])
}

// (The installed Debian kernel, a bzImage with an xz payload, is read by
// magic's own tests; decompressing it under -race takes half a minute, too
// long to repeat here.)

func TestNoteValue(t *testing.T) {
	for _, tc := range []struct {
		desc []byte
		want string
	}{
		{[]byte("linux\x00"), "linux"},
		{[]byte("!writable_page_tables|pae_pgdir_above_4gb"), "!writable_page_tables|pae_pgdir_above_4gb"},
		{[]byte{1, 0, 0, 0}, "0x1"},
		{[]byte{0xc0, 0x91, 0x07, 0x83, 0xff, 0xff, 0xff, 0xff}, "0xffffffff830791c0"},
		{[]byte("yes\x00"), "yes"},
		{[]byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, "01000000000000000100000000000000"},
	} {
		assert.Equal(t, tc.want, noteValue(magic.Note{Desc: tc.desc}))
	}
}
