package stream

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the Reader and Writer return for a bad
// stream is a *FormatError whose Err wraps one of these, so callers test
// with errors.Is.
var (
	// ErrBadMagic: a header's magic, marker, identifier or byte-order word
	// is wrong.
	ErrBadMagic = errors.New("bad magic")
	// ErrBadVersion: a header names a version this package does not read
	// (libxc 2..3, libxl 2).
	ErrBadVersion = errors.New("unsupported version")
	// ErrBigEndian: the stream says it is big-endian; libxc restore refuses
	// those and so does this package.
	ErrBigEndian = errors.New("big-endian stream")
	// ErrReserved: a reserved field or bit is not zero.
	ErrReserved = errors.New("reserved field not zero")
	// ErrBadDomainType: the domain header's type is neither PV nor HVM.
	ErrBadDomainType = errors.New("unknown domain type")
	// ErrBadPageShift: the domain header's page shift is not 12.
	ErrBadPageShift = errors.New("unsupported page shift")
	// ErrRecordTooLarge: a record length exceeds MaxRecordLength.
	ErrRecordTooLarge = errors.New("record too large")
	// ErrBadLength: a record length does not match its content.
	ErrBadLength = errors.New("bad record length")
	// ErrBadPadding: a record's padding is not zero.
	ErrBadPadding = errors.New("non-zero padding")
	// ErrOrder: a record or header appears where the format does not allow
	// it (also returned by the Writer for calls in the wrong order).
	ErrOrder = errors.New("record out of order")
	// ErrUnknownRecord: a mandatory record of an unknown type.
	ErrUnknownRecord = errors.New("unknown mandatory record")
	// ErrUnexpectedRecord: a known record that does not belong in this
	// stream (PV records in an HVM stream, TOOLSTACK, a COLO back-channel
	// record, emulator records for a PV guest).
	ErrUnexpectedRecord = errors.New("unexpected record")
	// ErrBadPFN: a pfn is above the Reader's MaxPFN, or reserved bits of a
	// pfn entry are set.
	ErrBadPFN = errors.New("pfn out of range")
	// ErrBadPageType: a PAGE_DATA entry carries an unknown page type.
	ErrBadPageType = errors.New("unknown page type")
	// ErrBadValue: a field holds a value the format does not allow.
	ErrBadValue = errors.New("invalid field value")
	// ErrMissing: a record restore needs is absent when the stream (or a
	// checkpoint) ends: vCPU0's X86_PV_VCPU_BASIC for PV, HVM_CONTEXT for
	// HVM.
	ErrMissing = errors.New("required record missing")
	// ErrTruncated: the stream ended before its END record. The error also
	// matches io.ErrUnexpectedEOF.
	ErrTruncated = errors.New("stream truncated")
	// ErrIncompleteCheckpoint: in CheckpointsBuffered mode, the stream
	// broke inside a checkpoint; every record returned before is part of a
	// complete checkpoint. Matches the underlying cause too.
	ErrIncompleteCheckpoint = errors.New("incomplete checkpoint")
	// ErrCheckpointTooLarge: a buffered checkpoint exceeds
	// ReaderOptions.MaxCheckpointBytes.
	ErrCheckpointTooLarge = errors.New("checkpoint too large")
	// ErrUnsupported: a valid feature this package does not implement
	// (xl headers of legacy v1 streams, unknown xl mandatory flags).
	ErrUnsupported = errors.New("unsupported stream feature")
)

// FormatError describes a bad stream (from the Reader) or a request that
// would write one (from the Writer).
type FormatError struct {
	// Layer is where the problem is.
	Layer Layer
	// Record names the header or record, e.g. "image header" or
	// "PAGE_DATA".
	Record string
	// Offset is the stream offset of the header or record header.
	Offset int64
	// Err wraps one of the Err* sentinels, with detail.
	Err error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("stream: %s %s at offset %d: %v", e.Layer, e.Record, e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// errf wraps a sentinel with detail text.
func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
