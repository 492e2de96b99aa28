package xenstore

import (
	"errors"
	"fmt"
)

// Op names used in *OpError. They are the xs_wire.h message names.
const (
	OpRead               = "read"
	OpWrite              = "write"
	OpMkdir              = "mkdir"
	OpRemove             = "rm"
	OpList               = "directory"
	OpGetPerms           = "get_perms"
	OpSetPerms           = "set_perms"
	OpWatch              = "watch"
	OpUnwatch            = "unwatch"
	OpTransactionStart   = "transaction_start"
	OpTransactionEnd     = "transaction_end"
	OpIntroduce          = "introduce"
	OpRelease            = "release"
	OpGetDomainPath      = "get_domain_path"
	OpIsDomainIntroduced = "is_domain_introduced"
	OpResume             = "resume"
	OpSetTarget          = "set_target"
	OpResetWatches       = "reset_watches"
	OpControl            = "control"
	OpDial               = "dial"
)

// Sentinel errors.
var (
	// ErrProtocol means the daemon sent a reply this client cannot parse,
	// or an XS_ERROR name outside the xsd_errors table.
	ErrProtocol = errors.New("xenstore protocol error")
	// ErrNoDaemon is returned by Dial when no transport could be opened.
	ErrNoDaemon = errors.New("no xenstored reachable")
	// ErrTooManyRetries is returned by Transaction when every attempt
	// ended in EAGAIN; it wraps syscall.EAGAIN too.
	ErrTooManyRetries = errors.New("transaction conflicted on every attempt")
)

// OpError describes a failed operation. Err is a syscall.Errno for XS_ERROR
// replies (so errors.Is(err, fs.ErrNotExist) works), an error wrapping
// net.ErrClosed after Close, a context error, or ErrProtocol.
type OpError struct {
	// Op is one of the Op* constants.
	Op string
	// Path is the node or watch path; for domain operations it is the
	// domain id in decimal; empty when the operation has neither.
	Path string
	Err  error
}

func (e *OpError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("xenstore %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("xenstore %s %s: %v", e.Op, e.Path, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// newOpError returns nil when err is nil.
func newOpError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Path: path, Err: err}
}

// errDirectSlow reports that a direct syscall hit the socket timeout
// (dial_linux.go); client.go handles it on every platform.
var errDirectSlow = errors.New("xenstore: direct syscall timed out")
