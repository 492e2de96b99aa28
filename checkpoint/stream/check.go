package stream

import (
	"bytes"
)

// state is where a stream is in its layer nesting. The Reader and the
// Writer share one checker, so everything the Writer emits passes the
// Reader's rules.
type state uint8

const (
	stStart     state = iota // nothing yet
	stXLDone                 // xl header seen; libxl header next
	stLibxl                  // libxl records, outside the libxc stream
	stImage                  // image header next
	stDomain                 // domain header next
	stLibxc                  // libxc records
	stLibxlCkpt              // libxl records inside a checkpoint (after libxc CHECKPOINT)
	stDone                   // the outermost END has been seen
	stBack                   // COLO back channel: records only
)

// checker holds the order and content rules of §3.4-3.5 of the notes: what
// verify-stream-v2 checks plus what libxc/libxl restore additionally need.
type checker struct {
	st          state
	outer       Layer
	checkpoints bool   // CHECKPOINT records allowed
	maxPFN      uint64 // largest pfn accepted

	wantDom   DomainType // required domain type, or 0
	libxcDone bool       // the (single) libxc stream inside libxl has ended
	version   uint32
	dom       DomainType
	width     uint8

	seenSDE, seenPVInfo, seenVCPU0, seenHVMContext bool
}

func newChecker(maxPFN uint64, checkpoints bool) checker {
	if maxPFN == 0 || maxPFN > MaxPFN {
		maxPFN = MaxPFN
	}
	return checker{maxPFN: maxPFN, checkpoints: checkpoints}
}

func (c *checker) xlHeader(h *XLHeader) error {
	if c.st != stStart {
		return errf(ErrOrder, "xl header must come first")
	}
	if h.MandatoryFlags&^(XLMandatoryJSON|XLMandatoryStreamV2) != 0 {
		return errf(ErrUnsupported, "unknown mandatory flags %#x", h.MandatoryFlags)
	}
	if h.MandatoryFlags&XLMandatoryStreamV2 == 0 {
		return errf(ErrUnsupported, "legacy (v1) stream after xl header")
	}
	c.outer, c.st = LayerXL, stXLDone
	return nil
}

func (c *checker) libxlHeader(h *LibxlHeader) error {
	switch c.st {
	case stStart:
		c.outer = LayerLibxl
	case stXLDone:
	default:
		return errf(ErrOrder, "libxl header not at the start of the libxl stream")
	}
	if h.Version != 2 {
		return errf(ErrBadVersion, "libxl version %d, want 2", h.Version)
	}
	if h.Options&1 != 0 {
		return ErrBigEndian
	}
	if h.Options&^LibxlOptionLegacy != 0 {
		return errf(ErrReserved, "libxl options %#x", h.Options)
	}
	c.st = stLibxl
	return nil
}

func (c *checker) imageHeader(h *ImageHeader) error {
	switch c.st {
	case stStart:
		c.outer = LayerLibxc
	case stImage:
	default:
		return errf(ErrOrder, "image header not at the start of the libxc stream")
	}
	if h.Version < 2 || h.Version > 3 {
		return errf(ErrBadVersion, "libxc version %d, want 2 or 3", h.Version)
	}
	c.version, c.st = h.Version, stDomain
	return nil
}

func (c *checker) domainHeader(h *DomainHeader) error {
	if c.st != stDomain {
		return errf(ErrOrder, "domain header must follow the image header")
	}
	if h.Type != DomainTypePV && h.Type != DomainTypeHVM {
		return errf(ErrBadDomainType, "type %d", uint32(h.Type))
	}
	if c.wantDom != 0 && h.Type != c.wantDom {
		return errf(ErrBadDomainType, "cannot restore an %v stream into an %v domain", h.Type, c.wantDom)
	}
	if h.PageShift != PageShift {
		return errf(ErrBadPageShift, "page shift %d", h.PageShift)
	}
	c.dom, c.st = h.Type, stLibxc
	return nil
}

// libxcBefore checks a libxc record's type against the stream state, before
// its body is read.
func (c *checker) libxcBefore(t RecordType) error {
	if c.st == stBack {
		if t != RecCheckpointDirtyPFNList {
			return errf(ErrUnexpectedRecord, "%v on the back channel", t)
		}
		return nil
	}
	if c.st != stLibxc {
		return errf(ErrOrder, "libxc record outside the libxc stream")
	}
	pvOnly := func() error {
		if c.dom != DomainTypePV {
			return errf(ErrUnexpectedRecord, "%v record in an %v stream", t, c.dom)
		}
		return nil
	}
	needPVInfo := func() error {
		if err := pvOnly(); err != nil {
			return err
		}
		if !c.seenPVInfo {
			return errf(ErrOrder, "%v before X86_PV_INFO", t)
		}
		return nil
	}
	// needSDE: v3 streams must have STATIC_DATA_END before memory; v2
	// streams infer it here, as libxc does.
	needSDE := func() error {
		if !c.seenSDE {
			if c.version >= 3 {
				return errf(ErrOrder, "%v before STATIC_DATA_END", t)
			}
			c.seenSDE = true
		}
		return nil
	}
	switch t {
	case RecEnd, RecVerify, RecX86TSCInfo:
		return nil
	case RecPageData:
		return needSDE()
	case RecX86PVInfo:
		if err := pvOnly(); err != nil {
			return err
		}
		if c.seenPVInfo {
			return errf(ErrOrder, "second X86_PV_INFO")
		}
		return nil
	case RecX86PVP2MFrames:
		if err := needPVInfo(); err != nil {
			return err
		}
		return needSDE()
	case RecX86PVVCPUBasic, RecX86PVVCPUExtended, RecX86PVVCPUXSave, RecX86PVVCPUMSRs, RecSharedInfo:
		return needPVInfo()
	case RecHVMContext, RecHVMParams:
		if c.dom != DomainTypeHVM {
			return errf(ErrUnexpectedRecord, "%v record in an %v stream", t, c.dom)
		}
		return nil
	case RecToolstack:
		return errf(ErrUnexpectedRecord, "obsolete TOOLSTACK record")
	case RecCheckpointDirtyPFNList:
		return errf(ErrUnexpectedRecord, "COLO back-channel record in the forward stream")
	case RecCheckpoint:
		if !c.checkpoints {
			return errf(ErrUnexpectedRecord, "CHECKPOINT in a plain (non-checkpointed) stream")
		}
		return nil
	case RecStaticDataEnd:
		if c.version < 3 {
			return errf(ErrUnexpectedRecord, "STATIC_DATA_END in a v%d stream", c.version)
		}
		if c.seenSDE {
			return errf(ErrOrder, "second STATIC_DATA_END")
		}
		return nil
	case RecX86CPUIDPolicy, RecX86MSRPolicy:
		if c.version < 3 {
			return errf(ErrUnexpectedRecord, "%v in a v%d stream", t, c.version)
		}
		if c.seenSDE {
			return errf(ErrOrder, "%v after STATIC_DATA_END", t)
		}
		return nil
	}
	if t.Optional() {
		return nil
	}
	return errf(ErrUnknownRecord, "type %#x", uint32(t))
}

// libxcBody checks a complete (non-PAGE_DATA) libxc record body and updates
// the state.
func (c *checker) libxcBody(t RecordType, b []byte) error {
	n := len(b)
	switch t {
	case RecEnd, RecVerify, RecCheckpoint, RecStaticDataEnd:
		if n != 0 {
			return errf(ErrBadLength, "%v with length %d", t, n)
		}
	case RecX86PVInfo:
		if n != 8 {
			return errf(ErrBadLength, "length %d, want 8", n)
		}
		if !(b[0] == 8 && b[1] == 4) && !(b[0] == 4 && b[1] == 3) {
			return errf(ErrBadValue, "guest width %d with %d page-table levels", b[0], b[1])
		}
		c.seenPVInfo, c.width = true, b[0]
	case RecX86PVP2MFrames:
		if n < 8 || n%8 != 0 {
			return errf(ErrBadLength, "length %d", n)
		}
		start, end := le.Uint32(b), le.Uint32(b[4:])
		if start > end {
			return errf(ErrBadValue, "start pfn %#x above end pfn %#x", start, end)
		}
		fpp := uint64(PageSize / uint32(c.width))
		want := 8 + (uint64(end)/fpp+1-uint64(start)/fpp)*8
		if uint64(n) != want {
			return errf(ErrBadLength, "length %d for pfns %#x..%#x, want %d", n, start, end, want)
		}
		for i := 8; i < n; i += 8 {
			if pfn := le.Uint64(b[i:]); pfn > c.maxPFN {
				return errf(ErrBadPFN, "p2m frame pfn %#x above %#x", pfn, c.maxPFN)
			}
		}
	case RecX86PVVCPUBasic, RecX86PVVCPUExtended, RecX86PVVCPUXSave, RecX86PVVCPUMSRs:
		if n < 8 {
			return errf(ErrBadLength, "length %d, want at least 8", n)
		}
		if le.Uint32(b[4:]) != 0 {
			return errf(ErrReserved, "vCPU header")
		}
		if err := c.vcpuBlob(t, le.Uint32(b), n-8); err != nil {
			return err
		}
	case RecSharedInfo:
		if n != PageSize {
			return errf(ErrBadLength, "length %d, want %d", n, PageSize)
		}
	case RecX86TSCInfo:
		if n != 24 {
			return errf(ErrBadLength, "length %d, want 24", n)
		}
		if le.Uint32(b[20:]) != 0 {
			return errf(ErrReserved, "TSC info")
		}
	case RecHVMContext:
		if n == 0 {
			return errf(ErrBadLength, "empty HVM context")
		}
		c.seenHVMContext = true
	case RecHVMParams:
		if n < 8 {
			return errf(ErrBadLength, "length %d, want at least 8", n)
		}
		count := uint64(le.Uint32(b))
		if le.Uint32(b[4:]) != 0 {
			return errf(ErrReserved, "HVM params header")
		}
		if uint64(n) != 8+16*count {
			return errf(ErrBadLength, "length %d for %d params", n, count)
		}
	case RecX86CPUIDPolicy:
		if n%24 != 0 {
			return errf(ErrBadLength, "length %d not a multiple of 24", n)
		}
	case RecX86MSRPolicy:
		if n%16 != 0 {
			return errf(ErrBadLength, "length %d not a multiple of 16", n)
		}
	case RecCheckpointDirtyPFNList:
		if n%8 != 0 {
			return errf(ErrBadLength, "length %d not a multiple of 8", n)
		}
		for i := 0; i < n; i += 8 {
			if pfn := le.Uint64(b[i:]); pfn > c.maxPFN {
				return errf(ErrBadPFN, "dirty pfn %#x above %#x", pfn, c.maxPFN)
			}
		}
	}
	switch t {
	case RecStaticDataEnd:
		c.seenSDE = true
	case RecEnd, RecCheckpoint:
		if err := c.complete(); err != nil {
			return err
		}
		if t == RecCheckpoint {
			if c.outer != LayerLibxc {
				c.st = stLibxlCkpt
			}
			return nil
		}
		if c.outer == LayerLibxc {
			c.st = stDone
		} else {
			c.st, c.libxcDone = stLibxl, true
		}
	}
	return nil
}

// vcpuBlob checks the size of a vCPU record's blob as libxc restore does.
// Empty blobs are tolerated (older senders wrote them).
func (c *checker) vcpuBlob(t RecordType, id uint32, n int) error {
	if n == 0 {
		return nil
	}
	switch t {
	case RecX86PVVCPUBasic:
		want := VCPUContextSize64
		if c.width == 4 {
			want = VCPUContextSize32
		}
		if n != want {
			return errf(ErrBadLength, "vCPU%d context of %d bytes, want %d", id, n, want)
		}
		if id == 0 {
			c.seenVCPU0 = true
		}
	case RecX86PVVCPUExtended:
		if n > 128 {
			return errf(ErrBadLength, "vCPU%d extended context of %d bytes, max 128", id, n)
		}
	case RecX86PVVCPUXSave:
		if n < 16 {
			return errf(ErrBadLength, "vCPU%d xsave of %d bytes, min 16", id, n)
		}
	case RecX86PVVCPUMSRs:
		if n%16 != 0 {
			return errf(ErrBadLength, "vCPU%d MSRs of %d bytes, not a multiple of 16", id, n)
		}
	}
	return nil
}

// complete checks that the state restore needs is present at END or
// CHECKPOINT.
func (c *checker) complete() error {
	switch c.dom {
	case DomainTypePV:
		if !c.seenVCPU0 {
			return errf(ErrMissing, "no X86_PV_VCPU_BASIC for vCPU0")
		}
	case DomainTypeHVM:
		if !c.seenHVMContext {
			return errf(ErrMissing, "no HVM_CONTEXT")
		}
	}
	return nil
}

// pageHeader checks the fixed part of a PAGE_DATA record.
func (c *checker) pageHeader(length, count, res uint32) error {
	if length < 8 {
		return errf(ErrBadLength, "length %d, want at least 8", length)
	}
	if count == 0 {
		return errf(ErrBadValue, "PAGE_DATA with no pfns")
	}
	if res != 0 {
		return errf(ErrReserved, "PAGE_DATA header")
	}
	if uint64(length) < 8+8*uint64(count) {
		return errf(ErrBadLength, "length %d too short for %d pfns", length, count)
	}
	return nil
}

// pageEntries checks pfn entries and returns how many carry data.
func (c *checker) pageEntries(entries []uint64) (int, error) {
	ndata := 0
	for i, e := range entries {
		if e&entryResMask != 0 {
			return 0, errf(ErrReserved, "pfn entry %d is %#x", i, e)
		}
		t := EntryType(e)
		if !t.Valid() {
			return 0, errf(ErrBadPageType, "type %#x for pfn %#x (entry %d)", uint8(t), EntryPFN(e), i)
		}
		if pfn := EntryPFN(e); pfn > c.maxPFN {
			return 0, errf(ErrBadPFN, "pfn %#x (entry %d) above %#x", pfn, i, c.maxPFN)
		}
		if t.HasData() {
			ndata++
		}
	}
	return ndata, nil
}

// pageLength checks the exact length of a PAGE_DATA record.
func pageLength(length uint32, count, ndata int) error {
	want := 8 + 8*uint64(count) + PageSize*uint64(ndata)
	if uint64(length) != want {
		return errf(ErrBadLength, "length %d, want %d for %d pfns with %d data pages", length, want, count, ndata)
	}
	return nil
}

// libxlBefore checks a libxl record's type against the state.
func (c *checker) libxlBefore(t LibxlRecordType) error {
	if c.st == stBack {
		if t != LibxlCheckpointState {
			return errf(ErrUnexpectedRecord, "libxl %v on the back channel", t)
		}
		return nil
	}
	if c.st != stLibxl && c.st != stLibxlCkpt {
		return errf(ErrOrder, "libxl record outside the libxl stream")
	}
	inCkpt := c.st == stLibxlCkpt
	switch t {
	case LibxlEnd:
		if inCkpt {
			return errf(ErrOrder, "libxl END inside a checkpoint")
		}
	case LibxlLibxcContext:
		if inCkpt || c.libxcDone {
			return errf(ErrOrder, "second LIBXC_CONTEXT")
		}
	case LibxlEmulatorXenstoreData, LibxlEmulatorContext:
		if c.dom == DomainTypePV {
			return errf(ErrUnexpectedRecord, "%v for a PV guest", t)
		}
	case LibxlCheckpointEnd, LibxlCheckpointState:
		if !inCkpt {
			return errf(ErrOrder, "%v outside a checkpoint", t)
		}
	default:
		return errf(ErrUnknownRecord, "libxl type %#x", uint32(t))
	}
	return nil
}

// libxlBody checks a libxl record body and updates the state.
func (c *checker) libxlBody(t LibxlRecordType, b []byte) error {
	n := len(b)
	switch t {
	case LibxlEnd, LibxlLibxcContext, LibxlCheckpointEnd:
		if n != 0 {
			return errf(ErrBadLength, "%v with length %d", t, n)
		}
	case LibxlEmulatorXenstoreData, LibxlEmulatorContext:
		if n < 8 {
			return errf(ErrBadLength, "length %d, want at least 8", n)
		}
		if id := EmulatorID(le.Uint32(b)); id > EmulatorQEMUUpstream {
			return errf(ErrBadValue, "emulator id %d", uint32(id))
		}
		if t == LibxlEmulatorXenstoreData {
			if _, err := XenstorePairs(b[8:]); err != nil {
				return err
			}
		}
	case LibxlCheckpointState:
		if n != 4 {
			return errf(ErrBadLength, "length %d, want 4", n)
		}
		if s := le.Uint32(b); s > uint32(CheckpointStateSVMResumed) {
			return errf(ErrBadValue, "checkpoint state %d", s)
		}
	}
	switch t {
	case LibxlEnd:
		c.st = stDone
	case LibxlLibxcContext:
		c.st = stImage
	case LibxlCheckpointEnd:
		c.st = stLibxc
	}
	return nil
}

// XenstorePairs splits the data of an EMULATOR_XENSTORE_DATA record into
// alternating keys and values. The data is a sequence of NUL-terminated
// strings, an even number of them.
func XenstorePairs(data []byte) ([]string, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if data[len(data)-1] != 0 {
		return nil, errf(ErrBadValue, "xenstore data not NUL-terminated")
	}
	parts := bytes.Split(data[:len(data)-1], []byte{0})
	if len(parts)%2 != 0 {
		return nil, errf(ErrBadValue, "odd number (%d) of xenstore strings", len(parts))
	}
	kv := make([]string, len(parts))
	for i, p := range parts {
		kv[i] = string(p)
	}
	return kv, nil
}
