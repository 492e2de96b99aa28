//go:build !linux

package main

import "os"

// isatty reports whether f is a character device, the best guess without
// the terminal ioctls of Linux.
func isatty(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
