package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Exit codes. Each failure class has its own code so that scripts can tell
// a guest that refused to suspend from a broken link or a bad image. They
// are part of the command's interface: docs/cli.md lists them, and they
// never change meaning.
const (
	exitOK          = 0   // success
	exitFailure     = 1   // a failure none of the classes below covers
	exitUsage       = 2   // bad flags or arguments
	exitNotFound    = 3   // no such domain, file or xenstore node
	exitUnsupported = 4   // the guest cannot cancel a suspend, or the host lacks a feature
	exitGuest       = 5   // the guest did not acknowledge or complete the suspend, or is busy
	exitImage       = 6   // the image or stream is malformed or of an unsupported version
	exitTransfer    = 7   // the migration or replication peer or link failed; the source was resumed
	exitPermission  = 8   // access to Xen (privcmd, xenstore) denied or absent: not a dom0, not root
	exitCancelled   = 130 // interrupted (Ctrl-C, SIGTERM); the guest was resumed
)

// exitNames name the codes in the JSON error object.
var exitNames = map[int]string{
	exitOK:          "ok",
	exitFailure:     "failure",
	exitUsage:       "usage",
	exitNotFound:    "not_found",
	exitUnsupported: "unsupported",
	exitGuest:       "guest",
	exitImage:       "image",
	exitTransfer:    "transfer",
	exitPermission:  "permission",
	exitCancelled:   "cancelled",
}

// classError gives an error an explicit exit code.
type classError struct {
	code int
	err  error
}

func (e *classError) Error() string { return e.err.Error() }
func (e *classError) Unwrap() error { return e.err }

// withCode marks err with an exit code; nil stays nil.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &classError{code: code, err: err}
}

// usageErrorf is an argument or flag error (exit code 2).
func usageErrorf(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

// classRule maps errors that match Is to an exit code. Library packages
// register their sentinels in classRules (classify_*.go), most specific
// first.
type classRule struct {
	target error
	code   int
}

// classRules is filled in by init functions of this package only; it is
// read-only once main starts.
var classRules []classRule

// exitCode classifies err.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if ce, ok := errors.AsType[*classError](err); ok {
		return ce.code
	}
	if errors.Is(err, context.Canceled) {
		return exitCancelled
	}
	if code, ok := classifyError(err); ok {
		return code
	}
	for _, r := range classRules {
		if errors.Is(err, r.target) {
			return r.code
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exitNotFound
	case errors.Is(err, fs.ErrPermission):
		return exitPermission
	case errors.Is(err, os.ErrDeadlineExceeded):
		return exitTransfer
	}
	return exitFailure
}

// printedError marks an error whose result document (with its "error"
// field) was already printed: run prints nothing more with --json, and
// only the message on stderr otherwise.
type printedError struct{ err error }

func (e *printedError) Error() string { return e.err.Error() }
func (e *printedError) Unwrap() error { return e.err }

// printed wraps err as printedError; nil stays nil.
func printed(err error) error {
	if err == nil {
		return nil
	}
	return &printedError{err}
}
