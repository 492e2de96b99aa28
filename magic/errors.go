package magic

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns wraps one of them, so
// callers test with errors.Is.
var (
	// ErrBadMagic: magic[] does not start with "xen-".
	ErrBadMagic = errors.New("magic: not a Xen guest-type string")
	// ErrNoNUL: magic[] has no NUL terminator within its 32 bytes.
	ErrNoNUL = errors.New("magic: no NUL terminator in magic[]")
	// ErrBadVersion: the <major>.<minor> part is malformed.
	ErrBadVersion = errors.New("magic: malformed interface version")
	// ErrUnknownPlatform: the platform is not one of the known guest types.
	ErrUnknownPlatform = errors.New("magic: unknown platform")
	// ErrBadToken: a capability token is malformed (bad character, empty,
	// doubled or trailing separator).
	ErrBadToken = errors.New("magic: malformed capability token")
	// ErrDuplicateToken: the same capability token appears twice.
	ErrDuplicateToken = errors.New("magic: duplicate capability token")
	// ErrTooLong: Format's output would not fit magic[32] with its NUL.
	ErrTooLong = errors.New("magic: string does not fit magic[32]")

	// ErrShortBuffer: a start_info buffer is smaller than the struct.
	ErrShortBuffer = errors.New("magic: buffer too short for start_info")
	// ErrBadWidth: guest width is not 4 or 8 (bytes).
	ErrBadWidth = errors.New("magic: guest width must be 4 or 8 bytes")
	// ErrFieldOverflow: a value does not fit its start_info field (32-bit
	// guests, or a command line longer than MaxCmdLine-1).
	ErrFieldOverflow = errors.New("magic: value does not fit start_info field")

	// ErrNotKernel: the image is neither ELF, a Linux bzImage, nor a
	// compressed ELF.
	ErrNotKernel = errors.New("magic: not a recognised kernel image")
	// ErrBadImage: the image is truncated or its headers are inconsistent.
	ErrBadImage = errors.New("magic: malformed kernel image")
	// ErrUnsupportedCompression: the payload uses a compression the package
	// cannot decompress.
	ErrUnsupportedCompression = errors.New("magic: unsupported compression")
	// ErrTooLarge: the image or its decompressed payload exceeds the limit
	// in ReadOptions (zip-bomb guard).
	ErrTooLarge = errors.New("magic: image exceeds size limit")
	// ErrBadNote: a Xen ELF note is malformed (bad sizes, bad value width).
	ErrBadNote = errors.New("magic: malformed Xen ELF note")

	// ErrConflict: the evidence given to Negotiate disagrees. The error is a
	// *ConflictError listing the claims.
	ErrConflict = errors.New("magic: conflicting suspend-cancel evidence")
	// ErrBadEvidence: a Sources field holds a value Negotiate cannot
	// interpret (for example an unknown xenstore feature value).
	ErrBadEvidence = errors.New("magic: uninterpretable suspend-cancel evidence")
)

// ParseError reports where Parse rejected a magic[] string.
type ParseError struct {
	Offset int    // byte offset into magic[] of the offending part
	Input  string // the string up to its NUL (or all 32 bytes), quoted in Error
	Err    error  // a sentinel above
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parsing magic %q at byte %d: %v", e.Input, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ImageError reports a kernel-image failure and the step that hit it.
type ImageError struct {
	Op  string // a step: "reading setup header", "decompressing xz payload", ...
	Err error  // wraps a sentinel above, possibly with the decoder's error
}

func (e *ImageError) Error() string { return e.Op + ": " + e.Err.Error() }

func (e *ImageError) Unwrap() error { return e.Err }

func imageErr(op string, err error) error { return &ImageError{Op: op, Err: err} }
