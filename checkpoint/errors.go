package checkpoint

import (
	"errors"
	"fmt"

	"github.com/xenckpt/xenckpt/domctl"
)

// Sentinel errors. Every error the Controller returns wraps at most one of
// them (plus the underlying cause), so callers branch with errors.Is.
var (
	// ErrNotAcknowledged: the guest did not acknowledge the suspend request
	// within Config.AckTimeout; the request was withdrawn and the guest
	// keeps running.
	ErrNotAcknowledged = errors.New("guest did not acknowledge the suspend request")
	// ErrNotSuspended: the guest acknowledged but never reached
	// SHUTDOWN_suspend within Config.SuspendTimeout (typically a failed
	// freeze inside the guest), or a resume found the domain not suspended.
	ErrNotSuspended = errors.New("domain did not suspend")
	// ErrDomainGone: the domain was destroyed while the operation waited.
	ErrDomainGone = errors.New("domain is gone")
	// ErrBusy: another operation on the same domain is in progress in this
	// Controller, or the suspend event channel is locked by another process.
	ErrBusy = errors.New("domain is busy with another operation")
	// ErrNotCancellable: the guest supports no cancel convention and the
	// caller did not allow a slow resume.
	ErrNotCancellable = errors.New("guest cannot cancel a suspend")
	// ErrSuspendUnsupported: the guest advertises control/feature-suspend
	// other than "1" (or, with Config.RequireFeatureSuspend, not at all).
	ErrSuspendUnsupported = errors.New("guest does not support suspend")
	// ErrAlreadySuspended: the domain is already shut down for suspend
	// before this Controller asked it to suspend.
	ErrAlreadySuspended = errors.New("domain is already suspended")
	// ErrRemote: the other end of a migration reported a failure; the
	// message it sent is part of the error text.
	ErrRemote = errors.New("remote side failed")
	// ErrProtocol: the other end of a migration sent something unexpected.
	ErrProtocol = errors.New("migration protocol violation")
	// ErrUnsupportedGuest: the guest uses something this package cannot
	// image (a PV page table mapping a superpage, which libxc refuses
	// too). The guest keeps running.
	ErrUnsupportedGuest = errors.New("guest not supported")
	// ErrBadConfig: SaveOptions.XLConfig is not a JSON domain config.
	ErrBadConfig = errors.New("bad domain config")
	// ErrNoCheckpoint: a Remus backup lost its primary before receiving one
	// complete checkpoint, so there is nothing to fail over to.
	ErrNoCheckpoint = errors.New("no complete checkpoint received")
)

// ShutdownError reports a domain that shut down for a reason other than
// suspend (for example it crashed) while the Controller waited for it to
// suspend.
type ShutdownError struct {
	Domain domctl.DomID
	Reason domctl.ShutdownReason
}

func (e *ShutdownError) Error() string {
	return fmt.Sprintf("domain %d shut down with reason %s instead of suspending", e.Domain, e.Reason)
}

// Operation names used in OpError.Op.
const (
	OpSuspend    = "suspend"
	OpResume     = "resume"
	OpCheckpoint = "checkpoint"
	OpSave       = "save"
	OpRestore    = "restore"
	OpMigrate    = "migrate"
	OpReceive    = "receive"
	OpRemus      = "remus"
	OpBackup     = "remus-backup"
)

// OpError is the error type of every Controller operation: it names the
// operation and the domain, and wraps the cause (which may itself be a
// multierror holding the cause and cleanup failures).
type OpError struct {
	Op     string
	Domain domctl.DomID
	Err    error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("%s domain %d: %v", e.Op, e.Domain, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// newOpError wraps err; it returns nil for a nil err.
func newOpError(op string, dom domctl.DomID, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Domain: dom, Err: err}
}
