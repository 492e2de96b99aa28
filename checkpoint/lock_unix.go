//go:build unix

package checkpoint

import (
	"errors"
	"os"
	"syscall"
)

var errLockHeld = errors.New("lock held")

// fcntlLock takes the same lock as libxenguest: F_SETLK, F_WRLCK on byte 0,
// so the two interoperate (flock locks would not conflict with fcntl ones).
func fcntlLock(f *os.File) error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
		return errLockHeld
	}
	return err
}
