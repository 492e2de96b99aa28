package magic

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// String returns the header name, such as "XEN_ELFNOTE_SUSPEND_CANCEL", or
// "XEN_ELFNOTE_<n>" for a number the headers do not define.
func (t NoteType) String() string {
	if s, ok := noteNames[t]; ok {
		return s
	}
	return fmt.Sprintf("XEN_ELFNOTE_%d", uint32(t))
}

// Note is one raw ELF note named "Xen".
type Note struct {
	Type NoteType
	Desc []byte // the descriptor, without padding
}

// Compression is how a kernel payload was compressed.
type Compression string

// The compressions ReadNotes recognises and decodes: Linux's set
// (CONFIG_KERNEL_*). LZO means the lzop container Linux's build writes.
const (
	CompressionNone  Compression = ""
	CompressionGzip  Compression = "gzip"
	CompressionBzip2 Compression = "bzip2"
	CompressionXZ    Compression = "xz"
	CompressionLZMA  Compression = "lzma"
	CompressionLZO   Compression = "lzo"
	CompressionLZ4   Compression = "lz4"
	CompressionZstd  Compression = "zstd"
)

// ImageKind is the container a kernel image came in.
type ImageKind string

// Image kinds.
const (
	ImageELF           ImageKind = "elf"            // plain ELF (vmlinux)
	ImageCompressedELF ImageKind = "compressed-elf" // e.g. vmlinux.gz, what XENLAB uses for domUs
	ImageBzImage       ImageKind = "bzimage"        // Linux x86 boot image with a compressed ELF payload
)

// Notes are the Xen ELF notes of a guest kernel. Decoded fields are zero
// when their note is absent; use Has to tell absent from zero. Where a note
// appears twice the last one wins, as in Xen's libelf.
type Notes struct {
	Kind        ImageKind
	Compression Compression // of the ELF payload, CompressionNone for a plain ELF
	Class       elf.Class   // ELFCLASS32 or ELFCLASS64
	// FromSections is true when the notes came from SHT_NOTE sections
	// because no PT_NOTE segment held any (libelf's fallback order).
	FromSections bool
	Raw          []Note // every "Xen" note, in file order

	// Numeric notes.
	Entry, HypercallPage, VirtBase, PaddrOffset, HVStartLow, InitP2M, ModStartPFN, Phys32Entry uint64
	// SuspendCancel is XEN_ELFNOTE_SUSPEND_CANCEL: non-zero means the kernel
	// implements upstream suspend-cancel (the toolstack cancels by writing 1).
	SuspendCancel uint64
	// String notes (the descriptor up to its NUL).
	XenVersion, GuestOS, GuestVersion, Loader, PAEMode, Features, BSDSymtab string
	// SupportedFeatures is XEN_ELFNOTE_SUPPORTED_FEATURES: XENFEAT_* bitmap
	// words (bit i of word i/32).
	SupportedFeatures []uint32
	// L1MFNValid is XEN_ELFNOTE_L1_MFN_VALID: (mask, value) pairs of
	// ELF-class-sized words, flattened.
	L1MFNValid []uint64
	// Info is XEN_ELFNOTE_INFO, the legacy "__xen_guest" string.
	Info string
}

// Has reports whether a note of type t was present.
func (n *Notes) Has(t NoteType) bool {
	for _, r := range n.Raw {
		if r.Type == t {
			return true
		}
	}
	return false
}

var numericNotes = map[NoteType]func(n *Notes) *uint64{
	NoteEntry:         func(n *Notes) *uint64 { return &n.Entry },
	NoteHypercallPage: func(n *Notes) *uint64 { return &n.HypercallPage },
	NoteVirtBase:      func(n *Notes) *uint64 { return &n.VirtBase },
	NotePaddrOffset:   func(n *Notes) *uint64 { return &n.PaddrOffset },
	NoteHVStartLow:    func(n *Notes) *uint64 { return &n.HVStartLow },
	NoteSuspendCancel: func(n *Notes) *uint64 { return &n.SuspendCancel },
	NoteInitP2M:       func(n *Notes) *uint64 { return &n.InitP2M },
	NoteModStartPFN:   func(n *Notes) *uint64 { return &n.ModStartPFN },
	NotePhys32Entry:   func(n *Notes) *uint64 { return &n.Phys32Entry },
}

var stringNotes = map[NoteType]func(n *Notes) *string{
	NoteXenVersion:   func(n *Notes) *string { return &n.XenVersion },
	NoteGuestOS:      func(n *Notes) *string { return &n.GuestOS },
	NoteGuestVersion: func(n *Notes) *string { return &n.GuestVersion },
	NoteLoader:       func(n *Notes) *string { return &n.Loader },
	NotePAEMode:      func(n *Notes) *string { return &n.PAEMode },
	NoteFeatures:     func(n *Notes) *string { return &n.Features },
	NoteBSDSymtab:    func(n *Notes) *string { return &n.BSDSymtab },
	NoteInfo:         func(n *Notes) *string { return &n.Info },
}

// decode fills the typed fields from Raw.
func (n *Notes) decode(order binary.ByteOrder) error {
	for _, r := range n.Raw {
		if f, ok := numericNotes[r.Type]; ok {
			d := r.Desc
			var v uint64
			switch len(d) {
			case 1:
				v = uint64(d[0])
			case 2:
				v = uint64(order.Uint16(d))
			case 4:
				v = uint64(order.Uint32(d))
			case 8:
				v = order.Uint64(d)
			default:
				return fmt.Errorf("%v has a %d-byte value: %w", r.Type, len(d), ErrBadNote)
			}
			*f(n) = v
			continue
		}
		if f, ok := stringNotes[r.Type]; ok {
			*f(n) = cstring(r.Desc)
			continue
		}
		if r.Type == NoteL1MFNValid {
			w := 8
			if n.Class == elf.ELFCLASS32 {
				w = 4
			}
			if len(r.Desc)%(2*w) != 0 {
				return fmt.Errorf("%v has %d bytes, not (mask, value) pairs of %d-byte words: %w", r.Type, len(r.Desc), w, ErrBadNote)
			}
			n.L1MFNValid = n.L1MFNValid[:0]
			for i := 0; i < len(r.Desc); i += w {
				if w == 4 {
					n.L1MFNValid = append(n.L1MFNValid, uint64(order.Uint32(r.Desc[i:])))
				} else {
					n.L1MFNValid = append(n.L1MFNValid, order.Uint64(r.Desc[i:]))
				}
			}
		}
		if r.Type == NoteSupportedFeatures {
			if len(r.Desc)%4 != 0 {
				return fmt.Errorf("%v has %d bytes, not a multiple of 4: %w", r.Type, len(r.Desc), ErrBadNote)
			}
			n.SupportedFeatures = n.SupportedFeatures[:0]
			for i := 0; i < len(r.Desc); i += 4 {
				n.SupportedFeatures = append(n.SupportedFeatures, order.Uint32(r.Desc[i:]))
			}
		}
	}
	return nil
}

// maxNoteBytes caps one note segment or section; real ones are a few
// hundred bytes.
const maxNoteBytes = 1 << 20

// appendXenNotes parses an ELF note area and appends the notes named
// "Xen". align is 4 or 8 (the segment's alignment).
func appendXenNotes(dst []Note, b []byte, order binary.ByteOrder, align uint64) ([]Note, error) {
	pad := func(n uint64) uint64 { return (n + align - 1) &^ (align - 1) }
	for len(b) > 0 {
		if len(b) < 12 {
			return dst, fmt.Errorf("note header of %d bytes: %w", len(b), ErrBadNote)
		}
		namesz := uint64(order.Uint32(b[0:]))
		descsz := uint64(order.Uint32(b[4:]))
		typ := order.Uint32(b[8:])
		rest := uint64(len(b) - 12)
		if pad(namesz) > rest || pad(namesz)+descsz > rest {
			return dst, fmt.Errorf("note sizes name %d desc %d exceed the %d bytes left: %w", namesz, descsz, rest, ErrBadNote)
		}
		name := b[12 : 12+namesz]
		desc := b[12+pad(namesz) : 12+pad(namesz)+descsz]
		if cstring(name) == "Xen" {
			dst = append(dst, Note{Type: NoteType(typ), Desc: bytes.Clone(desc)})
		}
		next := 12 + pad(namesz) + pad(descsz)
		if next > uint64(len(b)) {
			next = uint64(len(b)) // unpadded last note
		}
		b = b[next:]
	}
	return dst, nil
}

func readCapped(r io.Reader, size uint64, what string) ([]byte, error) {
	if size > maxNoteBytes {
		return nil, fmt.Errorf("%s of %d bytes: %w", what, size, ErrBadNote)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("reading %s: %w: %w", what, ErrBadImage, err)
	}
	return b, nil
}

func noteAlign(a uint64) uint64 {
	if a == 8 {
		return 8
	}
	return 4
}

// elfNotes reads the Xen notes of an ELF file: PT_NOTE segments first,
// found through the program headers alone so that a lazily decompressed
// image is read only up to its notes; SHT_NOTE sections, through
// debug/elf, only if no segment held a Xen note (libelf's order).
func elfNotes(r io.ReaderAt) (*Notes, error) {
	var id [64]byte
	if _, err := r.ReadAt(id[:], 0); err != nil {
		return nil, fmt.Errorf("reading ELF header: %w: %w", ErrBadImage, err)
	}
	if string(id[:4]) != elfMagic {
		return nil, fmt.Errorf("no ELF magic: %w", ErrNotKernel)
	}
	var order binary.ByteOrder
	switch elf.Data(id[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("ELF data encoding %d: %w", id[elf.EI_DATA], ErrBadImage)
	}
	class := elf.Class(id[elf.EI_CLASS])
	var phoff, phentsize, phnum, minEnt uint64
	switch class {
	case elf.ELFCLASS64:
		phoff, phentsize, phnum, minEnt = order.Uint64(id[32:]), uint64(order.Uint16(id[54:])), uint64(order.Uint16(id[56:])), 56
	case elf.ELFCLASS32:
		phoff, phentsize, phnum, minEnt = uint64(order.Uint32(id[28:])), uint64(order.Uint16(id[42:])), uint64(order.Uint16(id[44:])), 32
	default:
		return nil, fmt.Errorf("ELF class %d: %w", id[elf.EI_CLASS], ErrBadImage)
	}
	n := &Notes{Kind: ImageELF, Class: class}
	if phnum > 0 && phnum != 0xffff { // PN_XNUM: the count is elsewhere; use the sections
		if phentsize < minEnt || phnum*phentsize > maxNoteBytes || phoff > math.MaxInt64-phnum*phentsize {
			return nil, fmt.Errorf("program headers (%d x %d at %d): %w", phnum, phentsize, phoff, ErrBadImage)
		}
		ph, err := readCapped(io.NewSectionReader(r, int64(phoff), int64(phnum*phentsize)), phnum*phentsize, "program headers")
		if err != nil {
			return nil, err
		}
		for i := range phnum {
			p := ph[i*phentsize:]
			if elf.ProgType(order.Uint32(p)) != elf.PT_NOTE {
				continue
			}
			var off, size, align uint64
			if class == elf.ELFCLASS64 {
				off, size, align = order.Uint64(p[8:]), order.Uint64(p[32:]), order.Uint64(p[48:])
			} else {
				off, size, align = uint64(order.Uint32(p[4:])), uint64(order.Uint32(p[16:])), uint64(order.Uint32(p[28:]))
			}
			what := fmt.Sprintf("PT_NOTE segment %d", i)
			if off > math.MaxInt64-maxNoteBytes {
				return nil, fmt.Errorf("%s at offset %d: %w", what, off, ErrBadImage)
			}
			b, err := readCapped(io.NewSectionReader(r, int64(off), int64(min(size, maxNoteBytes+1))), size, what)
			if err != nil {
				return nil, err
			}
			if n.Raw, err = appendXenNotes(n.Raw, b, order, noteAlign(align)); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	if len(n.Raw) == 0 {
		raw, err := sectionNotes(r)
		if err != nil {
			return nil, err
		}
		n.Raw, n.FromSections = raw, len(raw) > 0
	}
	if err := n.decode(order); err != nil {
		return nil, err
	}
	return n, nil
}

// sectionNotes collects the Xen notes of SHT_NOTE sections.
func sectionNotes(r io.ReaderAt) (raw []Note, err error) {
	defer func() {
		// debug/elf is fuzzed upstream, but this input is hostile by
		// contract: turn any residual panic into a typed error.
		if p := recover(); p != nil {
			raw, err = nil, fmt.Errorf("parsing ELF sections: %w: %v", ErrBadImage, p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("parsing ELF: %w: %w", ErrBadImage, err)
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		b, err := readCapped(s.Open(), s.Size, "section "+s.Name)
		if err != nil {
			return nil, err
		}
		if raw, err = appendXenNotes(raw, b, f.ByteOrder, noteAlign(s.Addralign)); err != nil {
			return nil, fmt.Errorf("section %s: %w", s.Name, err)
		}
	}
	return raw, nil
}
