package stream

import (
	"encoding/binary"
	"fmt"
)

// Sizes and limits of the format.
const (
	// PageShift is the only page size the x86 stream carries (2^12).
	PageShift = 12
	// PageSize is the size of one page of PAGE_DATA.
	PageSize = 1 << PageShift
	// MaxRecordLength is the largest record body libxc restore accepts
	// (REC_LENGTH_MAX, 128 MiB). The Reader checks it before allocating.
	MaxRecordLength = 128 << 20
	// MaxPagesPerRecord is how many pfn entries the Writer puts in one
	// PAGE_DATA record at most, as libxc's batches do (MAX_BATCH_SIZE).
	MaxPagesPerRecord = 1024
	// MaxPFN is the largest pfn the 52-bit pfn field of a PAGE_DATA entry
	// can hold.
	MaxPFN = 1<<52 - 1

	// XLHeaderSize is the size of xl's save-file header, before its
	// optional data (the JSON config).
	XLHeaderSize = 48
	// LibxlHeaderSize is the size of the libxl stream header.
	LibxlHeaderSize = 16
	// ImageHeaderSize is the size of the libxc image header.
	ImageHeaderSize = 24
	// DomainHeaderSize is the size of the libxc domain header.
	DomainHeaderSize = 16
	// RecordHeaderSize is the size of a record header (type, length).
	RecordHeaderSize = 8

	// VCPUContextSize64 and VCPUContextSize32 are the sizes of
	// vcpu_guest_context for 64-bit and 32-bit PV guests, the exact body
	// (after the 8-byte vCPU header) of a non-empty X86_PV_VCPU_BASIC record.
	VCPUContextSize64 = 5168
	VCPUContextSize32 = 2800
)

// Magic numbers of the three headers.
const (
	imageMarker = 0xFFFFFFFFFFFFFFFF
	imageID     = 0x58454E46 // "XENF"
	libxlIdent  = 0x4c6962786c466d74
	xlByteOrder = 0x01020304

	// XLMandatoryJSON says the xl header's optional data holds the domain
	// config as JSON (XL_MANDATORY_FLAG_JSON).
	XLMandatoryJSON = 1 << 0
	// XLMandatoryStreamV2 says a libxl v2 stream follows the xl header
	// (XL_MANDATORY_FLAG_STREAMv2).
	XLMandatoryStreamV2 = 1 << 1

	// LibxlOptionLegacy marks a libxl stream converted from the legacy
	// format.
	LibxlOptionLegacy = 1 << 1
)

// xlMagic is xl's 32-byte save-file magic, embedded NULs included.
var xlMagic = [32]byte{'X', 'e', 'n', ' ', 's', 'a', 'v', 'e', 'd', ' ', 'd', 'o', 'm', 'a', 'i', 'n', ',', ' ',
	'x', 'l', ' ', 'f', 'o', 'r', 'm', 'a', 't', '\n', ' ', 0, ' ', '\r'}

// le is the byte order of everything after the image header: the Reader
// refuses big-endian streams, as libxc restore does.
var le = binary.LittleEndian

// Layer names one of the three nested formats of a saved image.
type Layer uint8

// Layers, outermost first. LayerAuto (zero) asks the Reader to detect the
// outermost layer from the first bytes.
const (
	LayerAuto Layer = iota
	LayerXL
	LayerLibxl
	LayerLibxc
	// LayerBackChannel is COLO's secondary-to-primary channel: no
	// headers, only libxl CHECKPOINT_STATE and libxc
	// CHECKPOINT_DIRTY_PFN_LIST records, until the channel closes. The
	// Reader never detects it; ask for it in ReaderOptions.Layer or
	// WriterOptions.BackChannel.
	LayerBackChannel
)

func (l Layer) String() string {
	switch l {
	case LayerAuto:
		return "auto"
	case LayerXL:
		return "xl"
	case LayerLibxl:
		return "libxl"
	case LayerLibxc:
		return "libxc"
	case LayerBackChannel:
		return "back channel"
	}
	return fmt.Sprintf("Layer(%d)", uint8(l))
}

// RecordType is the type of a libxc record.
type RecordType uint32

// libxc record types (docs/specs/libxc-migration-stream.pandoc).
const (
	RecEnd                    RecordType = 0x00
	RecPageData               RecordType = 0x01
	RecX86PVInfo              RecordType = 0x02
	RecX86PVP2MFrames         RecordType = 0x03
	RecX86PVVCPUBasic         RecordType = 0x04
	RecX86PVVCPUExtended      RecordType = 0x05
	RecX86PVVCPUXSave         RecordType = 0x06
	RecSharedInfo             RecordType = 0x07
	RecX86TSCInfo             RecordType = 0x08
	RecHVMContext             RecordType = 0x09
	RecHVMParams              RecordType = 0x0A
	RecToolstack              RecordType = 0x0B // obsolete; refused
	RecX86PVVCPUMSRs          RecordType = 0x0C
	RecVerify                 RecordType = 0x0D
	RecCheckpoint             RecordType = 0x0E
	RecCheckpointDirtyPFNList RecordType = 0x0F // COLO back channel only
	RecStaticDataEnd          RecordType = 0x10
	RecX86CPUIDPolicy         RecordType = 0x11
	RecX86MSRPolicy           RecordType = 0x12

	// RecOptional is the bit that marks a record a receiver may ignore
	// when it does not know the type.
	RecOptional RecordType = 0x80000000
)

var recNames = [...]string{
	"END", "PAGE_DATA", "X86_PV_INFO", "X86_PV_P2M_FRAMES", "X86_PV_VCPU_BASIC",
	"X86_PV_VCPU_EXTENDED", "X86_PV_VCPU_XSAVE", "SHARED_INFO", "X86_TSC_INFO",
	"HVM_CONTEXT", "HVM_PARAMS", "TOOLSTACK", "X86_PV_VCPU_MSRS", "VERIFY",
	"CHECKPOINT", "CHECKPOINT_DIRTY_PFN_LIST", "STATIC_DATA_END",
	"X86_CPUID_POLICY", "X86_MSR_POLICY",
}

func (t RecordType) String() string {
	if int(t) < len(recNames) {
		return recNames[t]
	}
	if t&RecOptional != 0 {
		return fmt.Sprintf("OPTIONAL_%#x", uint32(t))
	}
	return fmt.Sprintf("RecordType(%#x)", uint32(t))
}

// Optional reports whether the optional bit is set.
func (t RecordType) Optional() bool { return t&RecOptional != 0 }

// LibxlRecordType is the type of a libxl record.
type LibxlRecordType uint32

// libxl record types (docs/specs/libxl-migration-stream.pandoc).
const (
	LibxlEnd                  LibxlRecordType = 0
	LibxlLibxcContext         LibxlRecordType = 1
	LibxlEmulatorXenstoreData LibxlRecordType = 2
	LibxlEmulatorContext      LibxlRecordType = 3
	LibxlCheckpointEnd        LibxlRecordType = 4
	LibxlCheckpointState      LibxlRecordType = 5
)

var libxlNames = [...]string{"END", "LIBXC_CONTEXT", "EMULATOR_XENSTORE_DATA",
	"EMULATOR_CONTEXT", "CHECKPOINT_END", "CHECKPOINT_STATE"}

func (t LibxlRecordType) String() string {
	if int(t) < len(libxlNames) {
		return libxlNames[t]
	}
	return fmt.Sprintf("LibxlRecordType(%#x)", uint32(t))
}

// DomainType is the domain header's guest type.
type DomainType uint32

// Domain types. PVH guests are saved as DomainTypeHVM.
const (
	DomainTypePV  DomainType = 1
	DomainTypeHVM DomainType = 2
)

func (t DomainType) String() string {
	switch t {
	case DomainTypePV:
		return "x86 PV"
	case DomainTypeHVM:
		return "x86 HVM"
	}
	return fmt.Sprintf("DomainType(%d)", uint32(t))
}

// PageType is the XEN_DOMCTL_PFINFO_* type of a page, as the nibble kept in
// bits 63-60 of a PAGE_DATA pfn entry (the domctl value >> 28).
type PageType uint8

// Page types.
const (
	PageNoTab    PageType = 0x0
	PageL1Tab    PageType = 0x1
	PageL2Tab    PageType = 0x2
	PageL3Tab    PageType = 0x3
	PageL4Tab    PageType = 0x4
	PageL1TabPin PageType = 0x9
	PageL2TabPin PageType = 0xA
	PageL3TabPin PageType = 0xB
	PageL4TabPin PageType = 0xC
	PageBroken   PageType = 0xD // no data in the stream
	PageXAlloc   PageType = 0xE // allocate only; no data
	PageXTab     PageType = 0xF // invalid/hole; no data

	// PagePinned is the bit that marks a pinned page table (LPINTAB).
	PagePinned PageType = 0x8
)

// Valid reports whether t is a type libxc knows (0-4, 9-15).
func (t PageType) Valid() bool { return t <= PageL4Tab || (t >= PageL1TabPin && t <= PageXTab) }

// HasData reports whether an entry of type t is followed by a page of data.
func (t PageType) HasData() bool { return t <= PageL4Tab || (t >= PageL1TabPin && t <= PageL4TabPin) }

// Bit layout of a PAGE_DATA pfn entry.
const (
	entryTypeShift = 60
	entryPFNMask   = 1<<52 - 1
	entryResMask   = (1<<60 - 1) &^ entryPFNMask
)

// PFNEntry makes a PAGE_DATA pfn entry from a pfn and its type.
func PFNEntry(pfn uint64, t PageType) uint64 { return uint64(t)<<entryTypeShift | pfn&entryPFNMask }

// EntryPFN returns the pfn of a PAGE_DATA pfn entry.
func EntryPFN(e uint64) uint64 { return e & entryPFNMask }

// EntryType returns the page type of a PAGE_DATA pfn entry.
func EntryType(e uint64) PageType { return PageType(e >> entryTypeShift) }

// EmulatorID names the device model an emulator record belongs to.
type EmulatorID uint32

// Emulators.
const (
	EmulatorUnknown         EmulatorID = 0
	EmulatorQEMUTraditional EmulatorID = 1
	EmulatorQEMUUpstream    EmulatorID = 2
)

// CheckpointState is the control id of a CHECKPOINT_STATE record (COLO).
type CheckpointState uint32

// COLO checkpoint states.
const (
	CheckpointStateNew          CheckpointState = 0
	CheckpointStateSVMSuspended CheckpointState = 1
	CheckpointStateSVMReady     CheckpointState = 2
	CheckpointStateSVMResumed   CheckpointState = 3
)

// XLHeader is xl's save-file header.
type XLHeader struct {
	// MandatoryFlags holds XLMandatory* bits; the Writer sets
	// XLMandatoryStreamV2, plus XLMandatoryJSON when there is a config.
	MandatoryFlags uint32
	// OptionalFlags is zero in every xl that exists.
	OptionalFlags uint32
	// Config is the libxl_domain_config JSON, without the NUL terminator
	// the file carries. Nil when the file has no optional data.
	Config []byte
}

// LibxlHeader is the libxl stream header.
type LibxlHeader struct {
	Version uint32 // always 2
	Options uint32 // LibxlOptionLegacy or 0
}

// ImageHeader is the libxc image header.
type ImageHeader struct {
	Version uint32 // 2 or 3
}

// DomainHeader is the libxc domain header.
type DomainHeader struct {
	Type DomainType
	// PageShift must be 12; zero means 12 to the Writer.
	PageShift uint16
	// XenMajor and XenMinor are the sender's Xen version; major 0 marks a
	// stream converted from the legacy format.
	XenMajor uint32
	XenMinor uint32
}

// X86PVInfo is the body of X86_PV_INFO.
type X86PVInfo struct {
	GuestWidth uint8 // bytes per guest word: 8 (64-bit) or 4 (32-bit)
	PTLevels   uint8 // 4 with width 8, 3 with width 4
}

// P2MFrames is the body of X86_PV_P2M_FRAMES: the pfns of the frames that
// hold the guest's p2m entries for pfns StartPFN..EndPFN.
type P2MFrames struct {
	StartPFN uint32
	EndPFN   uint32
	Frames   []uint64
}

// VCPU is the body of an X86_PV_VCPU_{BASIC,EXTENDED,XSAVE,MSRS} record.
type VCPU struct {
	ID      uint32
	Context []byte // the hypercall's blob; may be empty
}

// TSCInfo is the body of X86_TSC_INFO.
type TSCInfo struct {
	Mode        uint32
	KHz         uint32
	Nsec        uint64
	Incarnation uint32
}

// HVMParam is one HVM_PARAMS entry.
type HVMParam struct {
	Index uint64
	Value uint64
}

// CPUIDLeaf is one X86_CPUID_POLICY entry (xen_cpuid_leaf_t, 24 bytes).
type CPUIDLeaf struct {
	Leaf, Subleaf uint32
	A, B, C, D    uint32
}

// MSREntry is one X86_MSR_POLICY entry (xen_msr_entry_t, 16 bytes).
type MSREntry struct {
	Index uint32
	Flags uint32
	Value uint64
}

// Emulator is the body of a libxl EMULATOR_XENSTORE_DATA or
// EMULATOR_CONTEXT record.
type Emulator struct {
	ID    EmulatorID
	Index uint32
	Data  []byte
}

// padLen returns the padding after a body of n bytes.
func padLen(n uint32) uint32 { return (8 - n%8) % 8 }
