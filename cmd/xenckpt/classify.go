package main

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xenstore"
)

// The library's sentinels by failure class, in the order they are tested:
// transfer failures first, because a cut link also truncates the stream the
// receiver was reading.
func init() {
	add := func(code int, targets ...error) {
		for _, t := range targets {
			classRules = append(classRules, classRule{target: t, code: code})
		}
	}
	add(exitTransfer, checkpoint.ErrRemote, checkpoint.ErrProtocol,
		syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN)
	add(exitGuest, checkpoint.ErrNotAcknowledged, checkpoint.ErrNotSuspended,
		checkpoint.ErrBusy, checkpoint.ErrAlreadySuspended)
	add(exitNotFound, checkpoint.ErrDomainGone, domctl.ErrNoDomain, syscall.ESRCH)
	add(exitUnsupported, checkpoint.ErrNotCancellable, checkpoint.ErrSuspendUnsupported,
		domctl.ErrInterfaceVersion, domctl.ErrNotSupported, checkpoint.ErrNoCheckpoint,
		magic.ErrConflict, magic.ErrBadEvidence)
	add(exitPermission, xenstore.ErrNoDaemon, syscall.EPERM, syscall.EACCES)
	add(exitImage, stream.ErrBadMagic, stream.ErrBadVersion, stream.ErrBigEndian, stream.ErrReserved,
		stream.ErrBadDomainType, stream.ErrBadPageShift, stream.ErrRecordTooLarge, stream.ErrBadLength,
		stream.ErrBadPadding, stream.ErrOrder, stream.ErrUnknownRecord, stream.ErrUnexpectedRecord,
		stream.ErrBadPFN, stream.ErrBadPageType, stream.ErrBadValue, stream.ErrMissing,
		stream.ErrTruncated, stream.ErrIncompleteCheckpoint, stream.ErrCheckpointTooLarge,
		stream.ErrUnsupported, magic.ErrNotKernel, magic.ErrBadImage, magic.ErrBadNote,
		magic.ErrUnsupportedCompression, magic.ErrTooLarge)
}

// classifyError adds what errors.Is cannot express: a *checkpoint.ShutdownError
// is the guest's doing, and a network timeout is the link's.
func classifyError(err error) (int, bool) {
	if _, ok := errors.AsType[*checkpoint.ShutdownError](err); ok {
		return exitGuest, true
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return exitTransfer, true
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && (oe.Op == "dial" || oe.Op == "read" || oe.Op == "write") {
		return exitTransfer, true
	}
	return 0, false
}

// transferError classifies an error of a migration or replication: past
// the guest's and the caller's own failure classes, a broken stream is the
// link's fault, not the image's.
func transferError(err error) error {
	if err == nil {
		return nil
	}
	switch exitCode(err) {
	case exitGuest, exitUnsupported, exitCancelled, exitUsage, exitPermission, exitNotFound:
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || exitCode(err) == exitImage || exitCode(err) == exitFailure {
		return withCode(exitTransfer, err)
	}
	return err
}
