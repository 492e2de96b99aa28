package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// isatty reports whether f is a terminal: TCGETS succeeds only on one
// (a character device such as /dev/null is not).
func isatty(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
