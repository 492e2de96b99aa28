package magic

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// MagicSize is the size of start_info.magic[] in bytes, NUL included. The
// layout test checks it against the header.
const MagicSize = 32

// StartInfo is a decoded PV start_info page (struct start_info in
// xen/include/public/xen.h). Fields narrower than 64 bits on 32-bit guests
// are zero-extended. Console fields are the domU view of the console union
// (for dom0 they hold info_off and info_size).
type StartInfo struct {
	// Magic is magic[] up to its first NUL, unvalidated: use ParseMagic to
	// interpret it. Decode never fails because of its contents.
	Magic         string
	NrPages       uint64 // total pages allocated to the guest
	SharedInfo    uint64 // MACHINE address of the shared_info page
	Flags         uint32 // SIF_* bits
	StoreMFN      uint64 // xenstore ring frame (a PFN while suspended)
	StoreEvtchn   uint32
	ConsoleMFN    uint64 // console ring frame (a PFN while suspended)
	ConsoleEvtchn uint32
	PTBase        uint64 // boot only: virtual address of the page directory
	NrPTFrames    uint64
	MFNList       uint64 // boot only: virtual address of the p2m list
	ModStart      uint64
	ModLen        uint64
	CmdLine       string // cmd_line up to its first NUL
	FirstP2MPFN   uint64
	NrP2MFrames   uint64
}

func layoutFor(width int) (*startInfoLayout, error) {
	switch width {
	case 8:
		return &layoutX86_64, nil
	case 4:
		return &layoutX86_32, nil
	}
	return nil, fmt.Errorf("start_info for width %d: %w", width, ErrBadWidth)
}

// StartInfoSize returns sizeof(struct start_info) for a PV guest of width
// bytes (8: x86_64, 4: 32-bit PV): 1168 or 1112.
func StartInfoSize(width int) (int, error) {
	l, err := layoutFor(width)
	if err != nil {
		return 0, err
	}
	return l.Size, nil
}

// DecodeStartInfo decodes a start_info struct of a PV guest whose width is
// 8 (x86_64) or 4 (32-bit PV) bytes, the value XEN_DOMCTL_get_address_size
// gives divided by 8. b may be longer (a whole 4 KiB page); bytes past the
// struct are ignored. Values are little-endian (x86).
func DecodeStartInfo(b []byte, width int) (StartInfo, error) {
	l, err := layoutFor(width)
	if err != nil {
		return StartInfo{}, err
	}
	if len(b) < l.Size {
		return StartInfo{}, fmt.Errorf("decoding %d-byte start_info from %d bytes: %w", l.Size, len(b), ErrShortBuffer)
	}
	u := func(f field) uint64 {
		if f.Size == 4 {
			return uint64(binary.LittleEndian.Uint32(b[f.Off:]))
		}
		return binary.LittleEndian.Uint64(b[f.Off:]) // TestLayoutFieldSizes: only 4 and 8 occur
	}
	return StartInfo{
		Magic:         cstring(b[l.Magic.Off : l.Magic.Off+l.Magic.Size]),
		NrPages:       u(l.NrPages),
		SharedInfo:    u(l.SharedInfo),
		Flags:         uint32(u(l.Flags)),
		StoreMFN:      u(l.StoreMFN),
		StoreEvtchn:   uint32(u(l.StoreEvtchn)),
		ConsoleMFN:    u(l.ConsoleMFN),
		ConsoleEvtchn: uint32(u(l.ConsoleEvtchn)),
		PTBase:        u(l.PTBase),
		NrPTFrames:    u(l.NrPTFrames),
		MFNList:       u(l.MFNList),
		ModStart:      u(l.ModStart),
		ModLen:        u(l.ModLen),
		CmdLine:       cstring(b[l.CmdLine.Off : l.CmdLine.Off+l.CmdLine.Size]),
		FirstP2MPFN:   u(l.FirstP2MPFN),
		NrP2MFrames:   u(l.NrP2MFrames),
	}, nil
}

// Encode returns the start_info struct for a guest of width bytes (8 or
// 4), StartInfoSize(width) bytes long, little-endian, padding zeroed. It
// fails with ErrFieldOverflow if Magic is longer than MagicSize-1 bytes or
// contains a NUL, if CmdLine is longer than MaxCmdLine-1 bytes or contains
// a NUL, or (width 4) if a value does not fit 32 bits. Encode does not
// validate Magic's grammar: build it with Magic.Format or Magic.String.
func (s StartInfo) Encode(width int) ([]byte, error) {
	l, err := layoutFor(width)
	if err != nil {
		return nil, err
	}
	b := make([]byte, l.Size)
	if err := s.EncodeTo(b, width); err != nil {
		return nil, err
	}
	return b, nil
}

// EncodeTo is Encode into b, which must hold at least StartInfoSize(width)
// bytes (a mapped start_info page, say); bytes past the struct are left
// alone.
func (s StartInfo) EncodeTo(b []byte, width int) error {
	l, err := layoutFor(width)
	if err != nil {
		return err
	}
	if len(b) < l.Size {
		return fmt.Errorf("encoding %d-byte start_info into %d bytes: %w", l.Size, len(b), ErrShortBuffer)
	}
	if err := checkCString("magic", s.Magic, l.Magic.Size); err != nil {
		return err
	}
	if err := checkCString("cmd_line", s.CmdLine, l.CmdLine.Size); err != nil {
		return err
	}
	type fv struct {
		name string
		f    field
		v    uint64
	}
	vals := []fv{
		{"nr_pages", l.NrPages, s.NrPages},
		{"shared_info", l.SharedInfo, s.SharedInfo},
		{"flags", l.Flags, uint64(s.Flags)},
		{"store_mfn", l.StoreMFN, s.StoreMFN},
		{"store_evtchn", l.StoreEvtchn, uint64(s.StoreEvtchn)},
		{"console.domU.mfn", l.ConsoleMFN, s.ConsoleMFN},
		{"console.domU.evtchn", l.ConsoleEvtchn, uint64(s.ConsoleEvtchn)},
		{"pt_base", l.PTBase, s.PTBase},
		{"nr_pt_frames", l.NrPTFrames, s.NrPTFrames},
		{"mfn_list", l.MFNList, s.MFNList},
		{"mod_start", l.ModStart, s.ModStart},
		{"mod_len", l.ModLen, s.ModLen},
		{"first_p2m_pfn", l.FirstP2MPFN, s.FirstP2MPFN},
		{"nr_p2m_frames", l.NrP2MFrames, s.NrP2MFrames},
	}
	for _, x := range vals {
		if x.f.Size == 4 && x.v > 0xFFFFFFFF {
			return fmt.Errorf("encoding start_info.%s = %#x in 4 bytes: %w", x.name, x.v, ErrFieldOverflow)
		}
	}
	clear(b[:l.Size])
	copy(b[l.Magic.Off:], s.Magic)
	copy(b[l.CmdLine.Off:], s.CmdLine)
	for _, x := range vals {
		if x.f.Size == 4 {
			binary.LittleEndian.PutUint32(b[x.f.Off:], uint32(x.v))
		} else {
			binary.LittleEndian.PutUint64(b[x.f.Off:], x.v)
		}
	}
	return nil
}

// ParseMagic parses s.Magic with the grammar in the package doc.
func (s StartInfo) ParseMagic() (Magic, error) { return ParseString(s.Magic) }

func checkCString(name, v string, size int) error {
	if len(v) > size-1 || bytes.IndexByte([]byte(v), 0) >= 0 {
		return fmt.Errorf("encoding start_info.%s (%d bytes) into char[%d] with NUL: %w", name, len(v), size, ErrFieldOverflow)
	}
	return nil
}

// cstring returns b up to its first NUL (all of b if none).
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
