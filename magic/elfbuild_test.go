package magic

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
)

// testNote is one note for buildTestELF.
type testNote struct {
	Name string
	Type uint32
	Desc []byte
}

// testELFOptions shapes buildTestELF's output.
type testELFOptions struct {
	Class32   bool // ELFCLASS32 (i386) instead of ELFCLASS64 (x86_64)
	NoPTNote  bool // put the notes only in a SHT_NOTE section
	CodeBytes int  // size of a pseudo-random .text full of E8/E9 candidates
}

// buildTestELF writes a small little-endian ELF executable with notes in a
// PT_NOTE segment (unless NoPTNote) and a SHT_NOTE section.
func buildTestELF(notes []testNote, o testELFOptions) []byte {
	le := binary.LittleEndian
	var nb bytes.Buffer
	for _, n := range notes {
		name := append([]byte(n.Name), 0)
		var h [12]byte
		le.PutUint32(h[0:], uint32(len(name)))
		le.PutUint32(h[4:], uint32(len(n.Desc)))
		le.PutUint32(h[8:], n.Type)
		nb.Write(h[:])
		nb.Write(name)
		nb.Write(make([]byte, (4-len(name)%4)%4))
		nb.Write(n.Desc)
		nb.Write(make([]byte, (4-len(n.Desc)%4)%4))
	}
	code := make([]byte, o.CodeBytes)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range code {
		switch r := rng.IntN(16); {
		case r < 3:
			code[i] = 0xE8
		case r < 4:
			code[i] = 0xE9
		case r < 8:
			code[i] = 0x00
		case r < 11:
			code[i] = 0xFF
		default:
			code[i] = byte(rng.IntN(256))
		}
	}
	shstr := []byte("\x00.note.Xen\x00.text\x00.shstrtab\x00")

	ehsize, phent, shent := 64, 56, 64
	if o.Class32 {
		ehsize, phent, shent = 52, 32, 40
	}
	phnum := 2
	if o.NoPTNote {
		phnum = 1
	}
	noteOff := ehsize + phnum*phent
	codeOff := noteOff + nb.Len()
	strOff := codeOff + len(code)
	shOff := (strOff + len(shstr) + 7) &^ 7
	const base = 0x400000

	var b bytes.Buffer
	w := func(size int, v uint64) {
		switch size {
		case 1:
			b.WriteByte(byte(v))
		case 2:
			b.Write(le.AppendUint16(nil, uint16(v)))
		case 4:
			b.Write(le.AppendUint32(nil, uint32(v)))
		case 8:
			b.Write(le.AppendUint64(nil, v))
		}
	}
	word := 8
	class, machine := byte(2), uint64(62)
	if o.Class32 {
		word, class, machine = 4, 1, 3
	}
	b.Write([]byte{0x7f, 'E', 'L', 'F', class, 1, 1, 0})
	b.Write(make([]byte, 8))
	w(2, 2)       // ET_EXEC
	w(2, machine) // e_machine
	w(4, 1)       // e_version
	w(word, base+uint64(codeOff))
	w(word, uint64(ehsize)) // e_phoff
	w(word, uint64(shOff))  // e_shoff
	w(4, 0)
	w(2, uint64(ehsize))
	w(2, uint64(phent))
	w(2, uint64(phnum))
	w(2, uint64(shent))
	w(2, 4) // e_shnum
	w(2, 3) // e_shstrndx

	phdr := func(typ, flags uint32, off, size, align uint64) {
		if o.Class32 {
			w(4, uint64(typ))
			w(4, off)
			w(4, base+off)
			w(4, base+off)
			w(4, size)
			w(4, size)
			w(4, uint64(flags))
			w(4, align)
			return
		}
		w(4, uint64(typ))
		w(4, uint64(flags))
		w(8, off)
		w(8, base+off)
		w(8, base+off)
		w(8, size)
		w(8, size)
		w(8, align)
	}
	phdr(1, 5, 0, uint64(strOff), 0x1000) // PT_LOAD
	if !o.NoPTNote {
		phdr(4, 4, uint64(noteOff), uint64(nb.Len()), 4) // PT_NOTE
	}
	b.Write(nb.Bytes())
	b.Write(code)
	b.Write(shstr)
	b.Write(make([]byte, shOff-b.Len()))

	shdr := func(name, typ uint32, flags, off, size, align uint64) {
		w(4, uint64(name))
		w(4, uint64(typ))
		addr := uint64(0)
		if flags != 0 {
			addr = base + off
		}
		w(word, flags)
		w(word, addr)
		w(word, off)
		w(word, size)
		w(4, 0)
		w(4, 0)
		w(word, align)
		w(word, 0)
	}
	shdr(0, 0, 0, 0, 0, 0)
	shdr(1, 7, 2, uint64(noteOff), uint64(nb.Len()), 4)    // .note.Xen SHT_NOTE, SHF_ALLOC
	shdr(11, 1, 6, uint64(codeOff), uint64(len(code)), 16) // .text
	shdr(17, 3, 0, uint64(strOff), uint64(len(shstr)), 1)  // .shstrtab
	return b.Bytes()
}

// standardTestNotes mimic what Linux's arch/x86/xen/xen-head.S emits.
func standardTestNotes(class32 bool) []testNote {
	le := binary.LittleEndian
	word := func(v uint64) []byte {
		if class32 {
			return le.AppendUint32(nil, uint32(v))
		}
		return le.AppendUint64(nil, v)
	}
	return []testNote{
		{"Xen", uint32(NoteGuestOS), []byte("linux\x00")},
		{"GNU", 3, []byte{1, 2, 3, 4, 5, 6, 7, 8}}, // build-id: not Xen's
		{"Xen", uint32(NoteXenVersion), []byte("xen-3.0\x00")},
		{"Xen", uint32(NoteEntry), word(0xffffffff83079c00)},
		{"Xen", uint32(NoteFeatures), []byte("!writable_page_tables\x00")},
		{"Xen", uint32(NoteSupportedFeatures), le.AppendUint32(nil, 0x8801)},
		{"Xen", uint32(NoteSuspendCancel), le.AppendUint32(nil, 1)},
		{"Xen", uint32(NoteHVStartLow), []byte{0x80, 0xff}}, // a 2-byte numeric value
		{"Xen", uint32(NoteL1MFNValid), append(word(1), word(1)...)},
	}
}
