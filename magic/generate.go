package magic

//go:generate go run ./internal/mkabi -o zabi.go

// field is one start_info member: offset and size in bytes.
type field struct{ Off, Size int }

// startInfoLayout is one struct start_info layout, generated into zabi.go
// from the Xen headers.
type startInfoLayout struct {
	Size int
	Magic, NrPages, SharedInfo, Flags, StoreMFN, StoreEvtchn,
	ConsoleMFN, ConsoleEvtchn, PTBase, NrPTFrames, MFNList, ModStart, ModLen,
	CmdLine, FirstP2MPFN, NrP2MFrames field
}

// NoteType is a Xen ELF note type (XEN_ELFNOTE_*).
type NoteType uint32
